"""How the README demo's recipe was chosen: a small sweep on a held-out validation split.

  python experiments/demo_sweep.py --workroot runs/demo_sweep     # ~1 h on an idle 2-core CPU

Every run pre-trains on the first 50,000 Fashion-MNIST training images and is
evaluated on the last 10,000 (the config argument ``val``,
`ssljax.data.datasets.with_validation_holdout`); the test split is never read.
First the methods, each with its own config file's recipe, for 2 epochs; then
variants of the fastest learner (crop area, batch size, learning rate,
CorInfoMax's α, backbone width). The chosen row becomes the default of
``configs/fashion_mnist/corinfomax.py`` and ``ssljax.presets.fashion_mnist``.
The validation references (raw pixels and the random-init encoder, same
probes) come from one extra run with those baselines enabled.

A finished run (``results.json`` in ``<workroot>/<name>``) is reused, so the
sweep resumes; ``experiments/results/demo_sweep.md`` is rewritten from the
runs found. Images/s is measured during the run and depends on the machine's
load (the published table was measured on a shared, loaded machine: compare
accuracies, not speeds).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

_CIM = "configs/fashion_mnist/corinfomax.py"
# Overrides are relative to each file's defaults at the time of the sweep: ConvNet 64-128-256,
# batch 256, crop area (0.2, 1); `OLD` pins those for the rows run before the preset changed.
OLD = ["--config.data.batch_size=256", "--config.data.crop_scale=(0.2,1.0)"]
_NEW = ["--config.data.batch_size=128"]


def _row(name, method, epochs, *overrides, base=OLD):
  """``(name, config string, overrides)`` of one sweep run on the validation split."""
  return (name, f"configs/fashion_mnist/{method}.py:val,epochs={epochs}", [*base, *overrides])


_CROP05 = "--config.data.crop_scale=(0.5,1.0)"
VARIANTS = (
    *(_row(f"{short}2", method, 2) for short, method in (
        ("vic", "vicreg"), ("cim", "corinfomax"), ("sim", "simclr"), ("byol", "byol"),
        ("bt", "barlow_twins"))),
    _row("cim2_c05", "corinfomax", 2, _CROP05),
    _row("cim2_c035", "corinfomax", 2, "--config.data.crop_scale=(0.35,1.0)"),
    _row("cim2_b128", "corinfomax", 2, "--config.data.batch_size=128"),
    _row("cim4_w32", "corinfomax", 4, "--config.model.encoder_kwargs.widths=(32,64,128)"),
    _row("cim2_c05_b128", "corinfomax", 2, _CROP05, base=_NEW),
    _row("cim2_c07_b128", "corinfomax", 2, "--config.data.crop_scale=(0.7,1.0)", base=_NEW),
    _row("cim2_c05_b128_lr1", "corinfomax", 2, _CROP05, "--config.optim.base_lr=1.0", base=_NEW),
    _row("cim2_c05_b128_a500", "corinfomax", 2, _CROP05,
         "--config.loss.terms.corinfomax.alpha=500.0", base=_NEW),
    _row("cim4_w32_c05_b128", "corinfomax", 4, _CROP05,
         "--config.model.encoder_kwargs.widths=(32,64,128)", base=_NEW),
    _row("cim3_w48_c05_b128", "corinfomax", 3, _CROP05,
         "--config.model.encoder_kwargs.widths=(48,96,192)", base=_NEW),
)
COMMON = ["--config.eval.pixel_baseline=False", "--config.eval.random_init_baseline=False",
          "--config.checkpoint.every_steps=100000", "--no_progress"]
REFERENCE = ("references", f"{_CIM}:val,epochs=1",
             ["--config.total_steps=1", "--config.eval.pixel_baseline=True",
              "--config.eval.random_init_baseline=True", "--config.checkpoint.every_steps=100000",
              "--no_progress"])


def run(workroot: str, name: str, config: str, overrides: list[str]) -> dict | None:
  workdir = os.path.join(workroot, name)
  path = os.path.join(workdir, "results.json")
  if not os.path.exists(path):
    cmd = [sys.executable, "-m", "ssljax.main", f"--config={config}", f"--workdir={workdir}",
           *overrides]
    print("$", " ".join(cmd), flush=True)
    if subprocess.run(cmd, cwd=ROOT, check=False).returncode != 0:
      return None
  with open(path, encoding="utf-8") as f:
    results = json.load(f)
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    speeds = [r["images_per_second"] for r in map(json.loads, f) if "images_per_second" in r]
  results["images_per_second"] = sum(speeds[1:]) / max(len(speeds) - 1, 1)
  return results


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--workroot", default="runs/demo_sweep")
  parser.add_argument("--out", default=os.path.join(HERE, "results", "demo_sweep.md"))
  args = parser.parse_args()
  ref = run(args.workroot, *REFERENCE)
  rows = []
  for name, config, overrides in VARIANTS:
    r = run(args.workroot, name, config, COMMON + overrides)
    rows.append((name, config, overrides, r))
  pct = lambda r, k: f"{100 * r[k]:.2f}" if r and k in r else "pending"
  lines = ["# How the demo recipe was chosen (validation split, never test)", "",
           "Produced by `python experiments/demo_sweep.py`; 50,000 training images for "
           "pre-training and probes, the last 10,000 training images for evaluation.", "",
           "| run | config | overrides | val linear top-1 | val kNN top-1 | effective rank | images/s |",
           "|---|---|---|---|---|---|---|"]
  if ref:
    lines.append(f"| raw pixels | – | – | {pct(ref, 'eval/pixels_linear/top1')} | "
                 f"{pct(ref, 'eval/pixels_knn/top1')} | – | – |")
    lines.append(f"| random-init encoder (64-128-256) | – | – | "
                 f"{pct(ref, 'eval/random_init_linear/top1')} | "
                 f"{pct(ref, 'eval/random_init_knn/top1')} | – | – |")
  for name, config, overrides, r in rows:
    rank = f"{r['spectrum/embedding/effective_rank']:.1f}" if r else "–"
    ips = f"{r['images_per_second']:.0f}" if r else "–"
    shown = " ".join(o.removeprefix("--config.") for o in overrides if o not in OLD) or "–"
    lines.append(f"| {name} | `{config}` | {shown} | {pct(r, 'eval/linear/top1')} | "
                 f"{pct(r, 'eval/knn/top1')} | {rank} | {ips} |")
  done = [(r["eval/linear/top1"], r["eval/knn/top1"], name) for name, _, _, r in rows if r]
  if done:
    lin, knn, name = max(done)
    lines += ["", f"Chosen (best validation linear top-1, kNN breaks ties): **{name}** "
              f"({100 * lin:.2f} / {100 * knn:.2f})."]
  lines += ["", "Rows with no override in the batch/crop columns ran with the settings before this "
            "sweep: batch 256 and crop area U[0.2, 1]. Images/s were measured on a shared, loaded "
            "machine and are not comparable between rows."]
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
