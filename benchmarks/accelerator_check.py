"""Accelerator check: images/s, step time and MFU of the full SSL train step, float32 vs bf16.

Called by ``benchmarks/accelerator_check.sh``. For each model (ResNet-18 at
32×32, ResNet-50 at 224, ViT-S/16 at 224) and dtype (``config.model.dtype``
float32 / bfloat16) it times the jitted VICReg train step (on-device
augmentation of 2 views, network on both, loss, probe, LARS) on synthetic
uint8 batches, then the Fashion-MNIST demo (``python -m ssljax.main``) end
to end, and writes a markdown table.

MFU = (FLOPs of one step from XLA's ``compiled.cost_analysis()``) / step
time / peak dense bf16 FLOP/s of the chip (`PEAK_BF16_TFLOPS`), for the
float32 rows too (their peak is lower; the column says how far from the
chip's bf16 peak a row is). XLA's count includes the augmentation and the
optimiser; it counts a multiply-add as 2 FLOPs.

``--quick`` (CPU, for the test): batch 4, 2 steps, 32×32 inputs without
augmentation, models shrunk to width 8 and one block per stage / two ViT
blocks, the demo's ``:runlocal`` variant, and
(set by the shell script) ``JAX_DISABLE_MOST_OPTIMIZATIONS=1``, without which
one train step compiles for minutes on a loaded 2-core CPU; its numbers only
show that the script runs.

  python benchmarks/accelerator_check.py --quick --out /tmp/accelerator_check.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import subprocess
import sys
import time

import jax
import numpy as np

from ssljax import config as config_lib
from ssljax import parallel
from ssljax.data import datasets
from ssljax.train import setup as setup_lib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Peak dense bf16 tensor throughput per chip, TFLOP/s (without 2:4 sparsity).
# H100 SXM: NVIDIA H100 datasheet ("BF16 Tensor Core 1,979 teraFLOPS" with
# sparsity, i.e. 989 dense); H200 SXM: NVIDIA H200 datasheet, same compute
# (1,979 with sparsity); TPU v4: cloud.google.com/tpu/docs/v4 (275); v5e:
# cloud.google.com/tpu/docs/v5e (197); v5p: cloud.google.com/tpu/docs/v5p (459).
PEAK_BF16_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "TPU v4": 275.0,
    "TPU v5 lite": 197.0,   # JAX's device_kind of a v5e chip
    "TPU v5e": 197.0,
    "TPU v5p": 459.0,
    "TPU v5": 459.0,
}

# name: (encoder, kwargs, host image HxWxC, view size, batch); quick: kwargs, view size.
MODELS = {
    "ResNet-18 32px": ("resnet18", {"stem": "cifar"}, (32, 32, 3), 32, 256,
                       {"stem": "cifar", "width": 8, "stage_sizes": (1, 1, 1, 1)}),
    "ResNet-50 224px": ("resnet50", {"stem": "imagenet"}, (256, 256, 3), 224, 128,
                        {"stem": "imagenet", "width": 8, "stage_sizes": (1, 1, 1, 1)}),
    "ViT-S/16 224px": ("vit_small", {"patch_size": 16}, (256, 256, 3), 224, 128,
                       {"patch_size": 8, "embed_dim": 32, "depth": 2, "num_heads": 2}),
}
DTYPES = ("float32", "bfloat16")


def peak_tflops(device) -> float | None:
  """Peak dense bf16 TFLOP/s of ``device`` from `PEAK_BF16_TFLOPS`, None if unknown (CPU)."""
  kind = getattr(device, "device_kind", "")
  for key in sorted(PEAK_BF16_TFLOPS, key=len, reverse=True):
    if key.lower() in kind.lower():
      return PEAK_BF16_TFLOPS[key]
  return None


def step_flops(compiled) -> float | None:
  """FLOPs of one call of ``compiled`` (XLA's estimate), None if the backend gives none."""
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  flops = (cost or {}).get("flops")
  return float(flops) if flops and flops > 0 else None


def bench(name: str, dtype: str, *, quick: bool, steps: int) -> dict:
  encoder, kwargs, in_shape, size, batch, quick_kwargs = MODELS[name]
  if quick:
    kwargs, in_shape, size, batch = quick_kwargs, (36, 36, 3), 32, 4
  c = config_lib.base_config()
  c.data.batch_size = batch
  c.data.image_size = size
  # quick: no augmentation ops, the smallest program that is still the train step.
  c.data.augmentation = "none" if quick else "byol"
  c.model.encoder = encoder
  c.model.encoder_kwargs = kwargs
  c.model.projector_hidden = (64,) if quick else (2048,)
  c.model.projector_dim = 32 if quick else 256
  c.model.dtype = dtype
  c.loss.terms = {"vicreg": {}}
  config_lib.finalize(c)
  synthetic = datasets.DatasetInfo(
      name="synthetic", tfds_name=None, num_classes=10, image_shape=in_shape,
      mean=(0.5,) * 3, std=(0.25,) * 3, train_split="train", eval_split="test",
      num_train=100 * batch, num_eval=0, labeled_split="train", num_labeled=100 * batch,
      view_size=size)
  run = setup_lib.build(c, dataset=synthetic, total_steps=1000)
  state = run.init_state(jax.random.key(0))
  rng = np.random.default_rng(0)
  b = {"image": rng.integers(0, 256, (batch, *in_shape), dtype=np.uint8),
       "label": rng.integers(0, 10, (batch,)).astype(np.int32)}
  b = jax.device_put(b, parallel.batch_sharding(run.mesh))
  key = jax.random.key(1)
  t = time.perf_counter()
  compiled = run.jitted_step().lower(state, b, key).compile()
  compile_s = time.perf_counter() - t
  flops = step_flops(compiled)
  state, m = compiled(state, b, key)  # warm-up
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, m = compiled(state, b, key)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  step_s = statistics.median(times)
  peak = peak_tflops(jax.devices()[0])
  n_dev = len(jax.devices())
  mfu = flops / step_s / (peak * 1e12 * n_dev) if flops and peak else None
  return {"model": name, "dtype": dtype, "batch": batch, "compile_s": compile_s,
          "step_s": step_s, "images_per_s": batch / step_s, "tflop_per_step": (flops or 0) / 1e12,
          "mfu": mfu, "loss": float(np.asarray(m["loss"]))}


def demo_wall_time(quick: bool, workdir: str) -> tuple[float, int]:
  """Wall time (s) and exit status of the Fashion-MNIST VICReg demo (``:runlocal`` if quick)."""
  config = "configs/fashion_mnist/vicreg.py" + (":runlocal" if quick else "")
  cmd = [sys.executable, "-m", "ssljax.main", f"--config={config}", f"--workdir={workdir}",
         "--no_progress"]
  t = time.perf_counter()
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
  wall = time.perf_counter() - t
  if proc.returncode:
    print(proc.stderr[-2000:], file=sys.stderr)
  return wall, proc.returncode


def report(rows: list[dict], demo: tuple[float, int] | None, *, quick: bool) -> str:
  dev = jax.devices()[0]
  peak = peak_tflops(dev)
  when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  lines = [
      "# Accelerator check", "",
      f"Generated by `bash benchmarks/accelerator_check.sh{' --quick' if quick else ''}` on "
      f"{when}: JAX {jax.__version__}, backend `{jax.default_backend()}`, "
      f"{len(jax.devices())} × `{getattr(dev, 'device_kind', '?')}`.", ""]
  if jax.default_backend() == "cpu":
    lines += ["**No accelerator was available for this run (CPU only).** The numbers below "
              "are CPU timings" + (" of the reduced `--quick` shapes (batch 4, 32×32, models "
                                   "shrunk); they only show that the check runs" if quick else "")
              + ". MFU needs a GPU/TPU with a known peak (`PEAK_BF16_TFLOPS`).", ""]
  lines += [f"Full VICReg train step (2 views, augmentation, network, loss, probe, LARS) on "
            f"synthetic batches; median of the timed steps after one warm-up step. MFU = XLA "
            f"FLOPs / step time / ({peak or 'n/a'} TFLOP/s dense bf16 per chip × devices).", "",
            "| model | dtype | batch | compile (s) | step (ms) | images/s | TFLOP/step | MFU |",
            "|---|---|---|---|---|---|---|---|"]
  for r in rows:
    mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
    lines.append(f"| {r['model']} | {r['dtype']} | {r['batch']} | {r['compile_s']:.1f} | "
                 f"{1e3 * r['step_s']:.1f} | {r['images_per_s']:.1f} | "
                 f"{r['tflop_per_step']:.4f} | {mfu} |")
  if demo is not None:
    wall, rc = demo
    variant = ":runlocal" if quick else ""
    lines += ["", f"Fashion-MNIST demo (`python -m ssljax.main --config=configs/fashion_mnist/"
              f"vicreg.py{variant}`, fresh workdir, pretraining + evaluation): "
              f"{wall:.1f} s wall{'' if rc == 0 else f' (exit status {rc})'}."]
  return "\n".join(lines) + "\n"


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--quick", action="store_true", help="CPU smoke mode (tiny shapes, 2 steps)")
  ap.add_argument("--models", default=",".join(MODELS))
  ap.add_argument("--steps", type=int, default=0, help="timed steps (default 20; quick 2)")
  ap.add_argument("--no_demo", action="store_true", help="skip the Fashion-MNIST demo")
  ap.add_argument("--out", default="", help="markdown file (default: $OUT/accelerator_check.md "
                  "if $OUT is set, else experiments/results/accelerator_check.md)")
  a = ap.parse_args(argv)
  steps = a.steps or (2 if a.quick else 20)
  out = a.out or (os.path.join(os.environ["OUT"], "accelerator_check.md") if os.environ.get("OUT")
                  else os.path.join(REPO, "experiments", "results", "accelerator_check.md"))
  rows = []
  for name in a.models.split(","):
    for dtype in DTYPES:
      rows.append(bench(name, dtype, quick=a.quick, steps=steps))
      print(rows[-1], flush=True)
  demo = None
  if not a.no_demo:
    import tempfile  # pylint: disable=g-import-not-at-top
    with tempfile.TemporaryDirectory() as tmp:
      demo = demo_wall_time(a.quick, os.path.join(tmp, "demo"))
  text = report(rows, demo, quick=a.quick)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "w", encoding="utf-8") as f:
    f.write(text)
  print(text)
  print(f"written: {out}")


if __name__ == "__main__":
  main()
