"""Cost of the PID estimators in ``ssljax.pid``: discrete vs alphabet size, batch vs N.

Section 1 (discrete): I_min, MMI and BROJA (dual interior-point 'newton' and
'alternating' solvers) on a random full-support pmf of shape n×n×n, for
n = 2 … 64. Section 2 (batch): `gaussian_batch_pid` (PCA to 16 dims,
class-conditional) and `discrete_batch_pid` (k-means to K = 10 symbols per
view, BROJA) on two [N, 128] views with 10 classes, for N = 256 … 16384.

Every case is jitted; compile time (lower + compile) is reported separately
from the run time, which is the median of ``--repeats`` calls after one
warm-up (``block_until_ready``). BROJA rows also report the solver's iteration
count and certified gap (nats). A case whose predicted time (from the previous
size and the estimator's complexity) exceeds ``--max-case-seconds`` is skipped
and marked. Float64 by default (the solvers' tolerances assume it). Numbers on
a shared CPU are noisy: the load average is printed in the header. On a loaded
machine pin the process to one core (``taskset -c 0``): unpinned, XLA's
runtime threads contend with other processes and single calls of a ~10 ms
program stalled for 0.6–1.9 s (measured), which ruins medians of few repeats.

  taskset -c 0 python benchmarks/pid.py --quick
  python benchmarks/pid.py --sizes 2,4,8,16,32,64 --batches 256,1024,4096,16384
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from ssljax import pid


def _time(fn, args, repeats):
  """(compile seconds, median run seconds, output) of jax.jit(fn)(*args)."""
  jitted = jax.jit(fn)
  t0 = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  t_compile = time.perf_counter() - t0
  out = jax.block_until_ready(compiled(*args))
  runs = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    runs.append(time.perf_counter() - t0)
  return t_compile, statistics.median(runs), out


def _fmt(sec):
  if sec is None:
    return "-"
  return f"{sec * 1e3:.2f} ms" if sec < 1 else f"{sec:.2f} s"


# Cost exponent in the alphabet size n (n×n×n pmf) used to predict and skip.
DISCRETE = {
    "imin": (lambda p: pid.pid_imin(p), 3),
    "mmi": (lambda p: pid.pid_mmi(p), 3),
    "broja-newton": (lambda p: pid.broja_coupling(p, method="newton"), 6),
    "broja-alternating": (lambda p: pid.broja_coupling(p, method="alternating"), 3),
}


def discrete_section(sizes, repeats, max_case, dtype):
  print("\n## Discrete estimators vs alphabet size (pmf n×n×n, random Dirichlet(1), "
        f"{jnp.dtype(dtype).name})\n")
  print("| estimator | n | compile | run (median) | iterations | gap (nats) |")
  print("|---|---|---|---|---|---|")
  for name, (fn, expo) in DISCRETE.items():
    last = None
    for n in sizes:
      if last is not None:
        n0, t0 = last
        predicted = t0 * (n / n0) ** expo
        if predicted > max_case:
          print(f"| {name} | {n} | skipped | predicted {_fmt(predicted)} > "
                f"{max_case:.0f} s | | |")
          continue
      # The same pmf for every estimator at a given n.
      p = jnp.asarray(np.random.default_rng(n).dirichlet(np.ones(n ** 3)).reshape(n, n, n), dtype)
      tc, tr, out = _time(fn, (p,), repeats)
      last = (n, tr)
      its = gap = ""
      if name.startswith("broja"):
        its, gap = int(out.iterations), f"{float(out.gap):.1e}"
      print(f"| {name} | {n} | {_fmt(tc)} | {_fmt(tr)} | {its} | {gap} |", flush=True)


def batch_section(batches, repeats, max_case, dtype, width=128, classes=10, k=10, dim=16):
  print(f"\n## Batch estimators vs batch size (two [N, {width}] views, {classes} classes, "
        f"{jnp.dtype(dtype).name})\n")
  print("| estimator | N | compile | run (median) |")
  print("|---|---|---|---|")
  key = jax.random.key(0)
  cases = {
      f"gaussian (PCA→{dim}, class-cond.)": (
          lambda z1, z2, t: pid.gaussian_batch_pid(z1, z2, t, num_classes=classes, dim=dim), 1),
      f"discrete (k-means K={k}, BROJA)": (
          lambda z1, z2, t: pid.discrete_batch_pid(z1, z2, t, key=key, num_clusters=k,
                                                   num_classes=classes).atoms, 1),
  }
  for name, (fn, expo) in cases.items():
    last = None
    for n in batches:
      if last is not None and last[1] * (n / last[0]) ** expo > max_case:
        print(f"| {name} | {n} | skipped | > {max_case:.0f} s predicted |")
        continue
      kz = jax.random.split(jax.random.key(n), 3)
      t = jax.random.randint(kz[0], (n,), 0, classes)
      means = jax.random.normal(kz[1], (classes, width), dtype)
      z1 = means[t] + jax.random.normal(kz[1], (n, width), dtype)
      z2 = means[t] + jax.random.normal(kz[2], (n, width), dtype)
      tc, tr, _ = _time(fn, (z1, z2, t), repeats)
      last = (n, tr)
      print(f"| {name} | {n} | {_fmt(tc)} | {_fmt(tr)} |", flush=True)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--quick", action="store_true",
                  help="sizes 2..64 capped at 20 s a case, batches 256..4096, 5 repeats")
  ap.add_argument("--sizes", default="2,4,8,16,32,64")
  ap.add_argument("--batches", default="256,1024,4096,16384")
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--max-case-seconds", type=float, default=120.0)
  ap.add_argument("--float32", action="store_true", help="benchmark in float32 instead")
  args = ap.parse_args()
  if args.quick:
    args.batches, args.repeats, args.max_case_seconds = "256,1024,4096", 5, 20.0
  if not args.float32:
    jax.config.update("jax_enable_x64", True)
  dtype = jnp.float32 if args.float32 else jnp.float64
  load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
  print(f"# ssljax.pid benchmark\n\njax {jax.__version__}, device {jax.devices()[0].device_kind}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load[0]}")
  discrete_section([int(s) for s in args.sizes.split(",")], args.repeats, args.max_case_seconds,
                   dtype)
  batch_section([int(s) for s in args.batches.split(",")], args.repeats, args.max_case_seconds,
                dtype)


if __name__ == "__main__":
  main()
