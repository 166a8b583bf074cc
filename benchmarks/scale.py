r"""What a config costs per step at scale, from the compiled program alone.

Builds the real `RunSetup` of a config on N fake CPU devices, AOT-compiles
its jitted train step at the config's shapes and GLOBAL batch from
ShapeDtypeStructs (no state is materialised), and reports per device:

* memory: argument / output / temp bytes (``compiled.memory_analysis()``);
* FLOPs and HBM bytes per step (``compiled.cost_analysis()``);
* collective bytes per step by kind, parsed from the optimised HLO
  (`benchmarks.hlo_collectives`: the result-shape bytes of each collective);

then a roofline estimate on named slices (`ACCELERATORS`)::

  step time = max(FLOPs / peak, HBM bytes / HBM bandwidth, wire bytes / ICI bandwidth)

per device, where wire bytes are the collective bytes times the ring factor
of their kind (`hlo_collectives.wire_bytes`). It assumes perfect overlap of
the three and peak rates, so it is a lower bound on the step time (an upper
bound on images/s and MFU; MFU = FLOP term / step time). A slice with a
different device count than ``--devices`` is projected: FLOPs and HBM bytes
per device scale with the per-device batch (global batch / devices), the
collective bytes are kept (gradient and parameter collectives do not depend
on the device count; nor does a gathered N×D embedding).

Run (minutes to an hour per ResNet-50 row on a 2-core machine)::

  python -m benchmarks.scale --config=configs/imagenet/byol.py --devices=64 \
      --fsdp=off,on --slice=tpu_v3-512,tpu_v5e-64,h100x64 --out=experiments/results/scale.md

``--set model.dtype=bfloat16`` (repeatable) overrides config fields; ``--config``
is repeatable. ``--out`` merges: the measurements live in a rows file beside
the page (``scale.md`` → ``scale.json``), a new row replaces the stored one
with the same (config, encoder, dtype, devices, fsdp) and keeps the others, and
the page is rendered from all rows, each command that produced them listed at
its top, and the hand-written text below `HAND_WRITTEN` kept. ``--out`` without
``--config`` re-renders the page from the stored rows (e.g. for new slices).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

from benchmarks import hlo_collectives


@dataclasses.dataclass(frozen=True)
class Accelerator:
  """Per-device peak rates; a "device" is what JAX sees (a TPU v3 core, a v4+ chip, a GPU)."""
  name: str
  peak_flops: float       # dense bf16 FLOP/s
  hbm_bw: float           # bytes/s
  ici_bw: float           # bytes/s each device can send in a collective over the slice
  devices: int
  source: str


_V3 = ("cloud.google.com/tpu/docs/v3: 123 TFLOP/s bf16 and 900 GB/s HBM per chip of 2 cores; "
       "all-reduce bandwidth 340 TB/s per 1024-chip pod (332 GB/s per chip)")
_V4 = ("cloud.google.com/tpu/docs/v4: 275 TFLOP/s, 1200 GB/s HBM; all-reduce 1.1 PB/s per "
       "4096-chip pod (269 GB/s per chip)")
_V5E = ("cloud.google.com/tpu/docs/v5e: 197 TFLOP/s, 819 GB/s HBM, ICI 1600 Gbps (200 GB/s) "
        "per chip; all-reduce 51.2 TB/s per 256-chip pod")
_V5P = "cloud.google.com/tpu/docs/v5p: 459 TFLOP/s, 2765 GB/s HBM, ICI 4800 Gbps (600 GB/s)"
_H100 = ("NVIDIA H100 SXM datasheet: 989 TFLOP/s dense bf16 (1979 with sparsity), 3.35 TB/s "
         "HBM3; NVLink 900 GB/s bidirectional within 8 GPUs; across nodes one 400 Gb/s "
         "NDR InfiniBand NIC per GPU (DGX H100), 50 GB/s")
_H200 = ("NVIDIA H200 SXM datasheet: 989 TFLOP/s dense bf16, 4.8 TB/s HBM3e; NVLink and "
         "InfiniBand as H100")

ACCELERATORS = {
    "tpu_v3-512": Accelerator("TPU v3-512 (256 chips, 512 cores)", 61.5e12, 450e9, 166e9, 512, _V3),
    "tpu_v4-64": Accelerator("TPU v4-64 (32 chips)", 275e12, 1200e9, 269e9, 32, _V4),
    "tpu_v5e-64": Accelerator("TPU v5e-64", 197e12, 819e9, 200e9, 64, _V5E),
    "tpu_v5p-128": Accelerator("TPU v5p-128 (64 chips)", 459e12, 2765e9, 600e9, 64, _V5P),
    "h100x8": Accelerator("8×H100 (one node, NVLink)", 989e12, 3.35e12, 450e9, 8, _H100),
    "h100x64": Accelerator("64×H100 (8 nodes, InfiniBand)", 989e12, 3.35e12, 50e9, 64, _H100),
    "h200x64": Accelerator("64×H200 (8 nodes, InfiniBand)", 989e12, 4.8e12, 50e9, 64, _H200),
}


def _ensure_devices(n: int, argv: list[str]) -> None:
  """Re-execs this module with ``n`` fake CPU devices unless JAX is already set up so."""
  flag = f"--xla_force_host_platform_device_count={n}"
  if flag in os.environ.get("XLA_FLAGS", "") and os.environ.get("JAX_PLATFORMS") == "cpu":
    return
  env = dict(os.environ, JAX_PLATFORMS="cpu",
             XLA_FLAGS=" ".join(f for f in os.environ.get("XLA_FLAGS", "").split()
                                if "device_count" not in f) + " " + flag)
  sys.exit(subprocess.call([sys.executable, "-m", "benchmarks.scale", *argv], env=env))


def _parse_value(text: str):
  for cast in (int, float):
    try:
      return cast(text)
    except ValueError:
      pass
  return {"true": True, "false": False}.get(text.lower(), text)


def compile_step(config_str: str, *, devices: int, fsdp: bool, overrides=()):
  """AOT-compiles the config's train step on ``devices`` CPU devices; returns (run, compiled)."""
  import jax
  import numpy as np
  from ssljax import configs_util, parallel
  from ssljax.train import setup as setup_lib

  config = configs_util.load_config(config_str)
  with config.unlocked():
    config.parallel.fsdp = fsdp
    for item in overrides:
      key, _, value = item.partition("=")
      *path, leaf = key.split(".")
      node = config
      for p in path:
        node = node[p]
      if leaf not in node:  # unlocked() would add it silently, and nothing would read it
        raise ValueError(f"--set {item!r}: the config has no field {key!r}")
      node[leaf] = _parse_value(value)
  run = setup_lib.build(config, mesh=parallel.make_data_mesh(jax.devices()[:devices]))
  data = parallel.batch_sharding(run.mesh)
  b = config.data.batch_size
  batch = {"image": jax.ShapeDtypeStruct((b, *run.dataset.image_shape), np.uint8, sharding=data),
           "label": jax.ShapeDtypeStruct((b,), np.int32, sharding=data)}
  if config.pid.enabled:
    batch["pseudo_label"] = jax.ShapeDtypeStruct((b,), np.int32, sharding=data)
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype,
                             sharding=parallel.replicated_sharding(run.mesh))
  compiled = run.jitted_step().lower(run.abstract_state(), batch, key).compile()
  return run, compiled


def measure(config_str: str, *, devices: int, fsdp: bool, overrides=()) -> dict:
  """Per-device memory, FLOPs, HBM bytes and collective bytes of one compiled step."""
  t = time.perf_counter()
  run, compiled = compile_step(config_str, devices=devices, fsdp=fsdp, overrides=overrides)
  compile_s = time.perf_counter() - t
  mem = compiled.memory_analysis()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  import jax
  import numpy as np
  n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(run.abstract_state().params))
  return {"config": config_str, "devices": devices, "fsdp": fsdp,
          "global_batch": run.config.data.batch_size, "encoder": run.config.model.encoder,
          "dtype": str(run.config.model.get("dtype", "float32")), "params": n_params,
          "compile_s": compile_s, "argument": mem.argument_size_in_bytes,
          "output": mem.output_size_in_bytes, "temp": mem.temp_size_in_bytes,
          "alias": mem.alias_size_in_bytes, "flops": float(cost.get("flops", 0.0)),
          "hbm_bytes": float(cost.get("bytes accessed", 0.0)),
          "collectives": hlo_collectives.collective_bytes(compiled.as_text())}


def roofline(m: dict, acc: Accelerator) -> dict:
  """Step-time terms (s) of measurement ``m`` on ``acc`` (projected to its device count)."""
  scale = m["devices"] / acc.devices   # per-device batch ratio
  compute = m["flops"] * scale / acc.peak_flops
  memory = m["hbm_bytes"] * scale / acc.hbm_bw
  comm = hlo_collectives.wire_bytes(m["collectives"], acc.devices) / acc.ici_bw
  step = max(compute, memory, comm)
  return {"compute": compute, "memory": memory, "comm": comm, "step": step,
          "images_s": m["global_batch"] / step, "mfu": compute / step}


# BYOL's paper: 300 epochs of ImageNet's 1,281,167 images in ~8 h on TPU v3-512.
ANCHOR_IMAGES_S = 300 * 1281167 / (8 * 3600)


ANCHOR_GAP = """Why the published time is longer than the roofline: the roofline runs every
matmul/conv at peak bf16 rate and overlaps all three terms perfectly. On TPU v3,
ResNet-50 reaches well under peak: the early layers (64-256 channels, 56×56
and 112×112 maps) fill the 128×128 MXUs poorly, BatchNorm and the other
elementwise ops are HBM-bound and run *between* the convolutions rather than
overlapped with them, sync-BN adds two small latency-bound all-reduces per BN
layer and view in each direction (~200 per step, microseconds each, which a
bandwidth model ignores), and the host input pipeline (JPEG decode and
cropping of 4096 images per step) must keep up. The float32 rows count f32
HBM bytes (TPUs run f32 matmuls at bf16 rate by default, so their compute
term is the bf16 one), and every row counts FLOPs and bytes with XLA:CPU's
cost model. Its HBM bytes come from
CPU fusion decisions (BatchNorm, ReLU and the on-device augmentation largely
unfused), so the memory term overstates TPU/GPU traffic: read the step time
as lying between the compute term and the memory term. BYOL's throughput is
also far below MLPerf-grade supervised ResNet-50 on the same hardware, which
points at its host-side augmentation (two heavily augmented views per image)
as the bottleneck, a term no device roofline contains."""


def _mib(x):
  return f"{x / 2**20:,.1f}"


HAND_WRITTEN = "<!-- Written by hand; benchmarks/scale.py --out keeps everything below. -->"


def row_key(m: dict) -> tuple:
  """The identity of a measurement in the rows file: a rerun replaces the row with this key."""
  return (m["config"], m["encoder"], m["dtype"], m["devices"], m["fsdp"])


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
  """``old`` with each row of ``new`` replacing the one of the same `row_key` (else appended).

  >>> a = {"config": "c.py", "encoder": "resnet50", "dtype": "float32", "devices": 64, "fsdp": True}
  >>> rows = merge_rows([dict(a, flops=1), dict(a, dtype="bfloat16", flops=2)], [dict(a, flops=3)])
  >>> [(r["dtype"], r["flops"]) for r in rows]
  [('float32', 3), ('bfloat16', 2)]
  """
  fresh = {row_key(m): m for m in new}
  rows = [fresh.pop(row_key(m), m) for m in old]
  return rows + list(fresh.values())


_SUPERSCRIPTS = "¹²³⁴⁵⁶⁷⁸⁹"  # marks of the rows' notes


def _label(i: int, m: dict) -> str:
  """Names row ``i`` of the measurement table (its ``#``) in the roofline and anchor lists."""
  return f"#{i + 1} {m['encoder']} {m['dtype']} fsdp {'on' if m['fsdp'] else 'off'}"


def report(rows: list[dict], slices: list[str]) -> str:
  """The page for ``rows`` (measurements, each with its ``command``) on ``slices``."""
  commands = list(dict.fromkeys(m["command"] for m in rows))
  out = ["# Scale report: compiled train step, per device", "",
         "Regenerate (each command compiles its rows and merges them into `scale.json`, "
         "keyed by config, encoder, dtype, devices and fsdp; `--out` alone re-renders "
         "this page from that file):", "", "```", *commands, "```", "",
         "Measured on fake CPU devices from the optimised, SPMD-partitioned HLO of the real",
         "jitted step (`benchmarks/scale.py`). Memory in MiB, per device; collectives are",
         "result-shape bytes per step (MiB) as parsed by `benchmarks/hlo_collectives.py`.", "",
         "| # | config | encoder | dtype | devices | global batch | fsdp | params | argument | output "
         "| temp | GFLOP/step | HBM GB/step | all-reduce | all-gather | reduce-scatter "
         "| all-to-all | coll.-permute | compile s |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  notes = list(dict.fromkeys(m["note"] for m in rows if m.get("note")))
  for i, m in enumerate(rows):
    c = m["collectives"]
    mark = _SUPERSCRIPTS[notes.index(m["note"])] if m.get("note") else ""
    out.append(
        f"| {i + 1} | {m['config']}{mark} | {m['encoder']} | {m['dtype']} | {m['devices']} "
        f"| {m['global_batch']} | {'on' if m['fsdp'] else 'off'} | {m['params'] / 1e6:.1f} M "
        f"| {_mib(m['argument'])} | {_mib(m['output'])} | {_mib(m['temp'])} "
        f"| {m['flops'] / 1e9:,.0f} | {m['hbm_bytes'] / 1e9:,.1f} | "
        + " | ".join(_mib(c[k]) for k in hlo_collectives.KINDS) + f" | {m['compile_s']:.0f} |")
  out += ["", *[f"{_SUPERSCRIPTS[i]} {n}" for i, n in enumerate(notes)]] if notes else []
  out += ["", "## Roofline on named slices", "",
          "step time = max(compute = FLOPs/peak, memory = HBM bytes/bandwidth, comm = wire "
          "bytes/interconnect), per device, projected to the slice's device count (FLOPs "
          "and HBM bytes scale with the per-device batch). Perfect overlap at peak rates: a "
          "lower bound on step time, an upper bound on images/s and MFU.", "",
          "| slice | row | compute ms | memory ms | comm ms | step ms | bound | images/s "
          "| MFU | 300 epochs ImageNet (h) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
  for name in slices:
    acc = ACCELERATORS[name]
    for i, m in enumerate(rows):
      r = roofline(m, acc)
      bound = max(("compute", "memory", "comm"), key=lambda k: r[k])
      hours = 300 * 1281167 / r["images_s"] / 3600
      out.append(f"| {acc.name} | {_label(i, m)} | {r['compute'] * 1e3:.1f} "
                 f"| {r['memory'] * 1e3:.1f} | {r['comm'] * 1e3:.1f} | {r['step'] * 1e3:.1f} "
                 f"| {bound} | {r['images_s']:,.0f} | {r['mfu']:.0%} | {hours:.1f} |")
  if "tpu_v3-512" in slices:
    out += ["", "## Published anchor: BYOL on TPU v3-512", "",
            "BYOL (Grill et al. 2020, §3.3 / App. C) reports ~8 h for 300 ImageNet epochs of "
            "ResNet-50 at batch 4096 on 512 TPU v3 cores, i.e. "
            f"{ANCHOR_IMAGES_S:,.0f} images/s. At our compiled FLOPs per image that is an "
            "achieved MFU of (ResNet-50 rows; the other rows give their FLOPs per image):", ""]
    acc = ACCELERATORS["tpu_v3-512"]
    for i, m in enumerate(rows):
      per_image = m["flops"] * m["devices"] / m["global_batch"]
      line = f"* {_label(i, m)}: {per_image / 1e9:.1f} GFLOP/image"
      if m["encoder"] == "resnet50":
        r = roofline(m, acc)
        line += (f"; published {ANCHOR_IMAGES_S * per_image / (acc.devices * acc.peak_flops):.0%}"
                 f" MFU (8 h) vs roofline {r['mfu']:.0%} "
                 f"({300 * 1281167 / r['images_s'] / 3600:.1f} h)")
      out.append(line)
    out += ["", ANCHOR_GAP]
  out += ["", "Accelerator table (per JAX device):", "",
          "| slice | devices | peak bf16 TFLOP/s | HBM GB/s | interconnect GB/s | source |",
          "|---|---|---|---|---|---|"]
  for name in slices:
    a = ACCELERATORS[name]
    out.append(f"| {name} | {a.devices} | {a.peak_flops / 1e12:g} | {a.hbm_bw / 1e9:g} "
               f"| {a.ici_bw / 1e9:g} | {a.source} |")
  return "\n".join(out) + "\n"


def write_page(path: str, rows: list[dict], slices: list[str]) -> None:
  """Writes the rows file beside ``path`` and the page, keeping the page's hand-written part."""
  with open(os.path.splitext(path)[0] + ".json", "w", encoding="utf-8") as f:
    json.dump({"slices": slices, "rows": rows}, f, indent=1)
    f.write("\n")
  text = report(rows, slices)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      _, marker, hand = f.read().partition(HAND_WRITTEN)
    text += f"\n{marker}{hand}" if marker else ""
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


def main(argv: list[str] | None = None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--config", action="append", default=[],
                 help="config file, optionally 'file.py:arg' (repeatable)")
  p.add_argument("--devices", type=int, default=8)
  p.add_argument("--fsdp", default="off", help="'off', 'on' or 'off,on'")
  p.add_argument("--slice", default="",
                 help=f"comma-separated of {sorted(ACCELERATORS)} (default: the page's, "
                      "else tpu_v5e-64)")
  p.add_argument("--set", action="append", default=[], help="config override key=value")
  p.add_argument("--out", default="", help="merge the rows into this page (and its .json)")
  args = p.parse_args(argv)
  if not args.config and not args.out:
    p.error("give --config (to measure) and/or --out (to write the page)")
  stored = {"slices": ["tpu_v5e-64"], "rows": []}
  rows_file = os.path.splitext(args.out)[0] + ".json"
  if args.out and os.path.exists(rows_file):
    with open(rows_file, encoding="utf-8") as f:
      stored = json.load(f)
  slices = args.slice.split(",") if args.slice else stored["slices"]
  for s in slices:
    if s not in ACCELERATORS:
      p.error(f"--slice={s!r}; expected one of {sorted(ACCELERATORS)}")
  if args.config:
    _ensure_devices(args.devices, argv)
  command = "python -m benchmarks.scale " + " ".join(argv)
  rows = stored["rows"]
  for config in args.config:
    for f in args.fsdp.split(","):
      m = dict(measure(config, devices=args.devices, fsdp=f == "on", overrides=args.set),
               command=command)
      print(json.dumps(m), flush=True)
      rows = merge_rows(rows, [m])
      if args.out:  # after each row: a run stopped part-way keeps what it measured
        write_page(args.out, rows, slices)
  if args.out and not args.config:
    write_page(args.out, rows, slices)
  print(report(rows, slices))


if __name__ == "__main__":
  main()
