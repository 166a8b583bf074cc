"""Independent runs on a small CPU: one process on every core, or one pinned process per core?

The Fashion-MNIST table (`experiments/fashion_mnist_table.py --jobs`) trains
many independent runs. This driver measures whether splitting the machine
pays: per round it runs

* arm ``one``: one process on all of this process's CPUs, then
* arm ``pinned``: ``--jobs`` processes at once, each pinned to its share of
  the CPUs (``os.sched_setaffinity`` before JAX starts, so XLA:CPU sizes its
  thread pool to it),

alternating the arms round after round so a shared machine's load falls on
both alike. Every process builds the README demo's run
(``configs/fashion_mnist/corinfomax.py``; ``--row`` takes a table row's
recipe instead, with the table's shared encoder and batch: the real input
pipeline and jitted train step, with the CLI's allocator setting), warms up (compiling),
waits until every process of its arm is ready, then times ``--steps`` steps,
the loader included, as a run of the table does. It reports steps/s per arm
(summed over the arm's processes), the ratio ``pinned / one``, and whether
the processes ended with the same loss (a pinned process uses fewer XLA
threads, which may reorder a reduction). Run::

  python benchmarks/parallel_runs.py                          # 2 rounds, ~4 min on 2 cores
  python benchmarks/parallel_runs.py --out experiments/results/parallel_runs.md
  python benchmarks/parallel_runs.py --row simclr             # a table row's step

The gain depends on the step: a step that already uses both cores well
gains less from splitting the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist", "corinfomax.py")


def load_row_config(row: str):
  """The README demo's config, or table row ``row``'s (`fashion_mnist_table.recipe_config`)."""
  from ssljax import configs_util
  if not row:
    return configs_util.load_config(CONFIG)
  sys.path.insert(0, os.path.join(ROOT, "experiments"))
  try:
    import fashion_mnist_table as table  # pylint: disable=import-outside-toplevel
  finally:
    sys.path.pop(0)
  if row not in table.ROWS:
    sys.exit(f"--row {row}: not a row of experiments/fashion_mnist_table.py; valid: "
             + ", ".join(table.ROWS))
  return table.recipe_config(row, val=False, quick=False)


def child(cpus: str, warmup: int, steps: int, row: str) -> None:
  """Runs the step; prints 'ready', waits for a line on stdin, prints its timing."""
  os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})  # before XLA sizes its thread pool
  import jax
  from ssljax.train import evaluation
  from ssljax.train import loop
  from ssljax.train import setup as setup_lib

  config = load_row_config(row)
  run = setup_lib.build(config)
  data_it = loop.make_train_loader(run)
  state = run.init_state(jax.random.key(config.seed))
  jitted, rng = run.jitted_step(), jax.random.key(config.seed + 1)

  def step(state):
    batch = next(data_it)
    batch.pop("index")
    return jitted(state, {k: evaluation.to_global(run.mesh, v) for k, v in batch.items()}, rng)

  for _ in range(warmup):
    state, metrics = step(state)
  jax.block_until_ready((state, metrics))
  print("ready", flush=True)
  sys.stdin.readline()  # every process of the arm starts its timed steps together
  t0 = time.perf_counter()
  for _ in range(steps):
    state, metrics = step(state)
  jax.block_until_ready((state, metrics))
  wall = time.perf_counter() - t0
  print(json.dumps({"steps_per_s": steps / wall, "loss": float(metrics["loss"]),
                    "cpus": len(os.sched_getaffinity(0)), "load1": os.getloadavg()[0]}),
        flush=True)


def run_arm(cpu_sets: list[set[int]], warmup: int, steps: int, row: str) -> list[dict]:
  """Starts one child per CPU set, releases them together once all are warm; their results."""
  from ssljax import allocator

  env = dict(os.environ, GLIBC_TUNABLES=allocator.TUNABLES)  # as `python -m ssljax.main` runs
  env.pop("XLA_FLAGS", None)
  procs = [subprocess.Popen([sys.executable, os.path.abspath(__file__),
                             "--child=" + ",".join(map(str, sorted(cpus))),
                             f"--warmup={warmup}", f"--steps={steps}", f"--row={row}"],
                            cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
           for cpus in cpu_sets]
  for p in procs:
    line = p.stdout.readline()
    if line.strip() != "ready":
      raise RuntimeError(f"child failed before its timed steps (exit {p.wait()})")
  for p in procs:
    p.stdin.write("go\n")
    p.stdin.flush()
  out = []
  for p in procs:
    line = p.stdout.readline()
    if p.wait() != 0 or not line:
      raise RuntimeError(f"child failed during its timed steps (exit {p.returncode})")
    out.append(json.loads(line))
  return out


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--child", default="", help=argparse.SUPPRESS)  # its CPUs, e.g. '0' or '0,1'
  ap.add_argument("--jobs", type=int, default=0, help="pinned processes (default: one per CPU)")
  ap.add_argument("--warmup", type=int, default=10, help="untimed steps (the first compiles)")
  ap.add_argument("--steps", type=int, default=150, help="timed steps per process")
  ap.add_argument("--rounds", type=int, default=2, help="rounds of (one, pinned)")
  ap.add_argument("--row", default="", help="time this row of experiments/fashion_mnist_table.py"
                  " (default: the README demo's step)")
  ap.add_argument("--out", default="", help="also write the markdown report here")
  args = ap.parse_args()
  sys.path.insert(0, ROOT)
  if args.child:
    child(args.child, args.warmup, args.steps, args.row)
    return
  config = load_row_config(args.row)  # a bad --row fails here, before any child starts
  what = (f"table row `{args.row}`'s step" if args.row else "README demo step") + (
      f" (ConvNet {'-'.join(map(str, config.model.encoder_kwargs.widths))},"
      f" batch {config.data.batch_size}, loss {'+'.join(config.loss.terms)})")
  cpus = sorted(os.sched_getaffinity(0))
  jobs = args.jobs or len(cpus)
  if not 2 <= jobs <= len(cpus):
    sys.exit(f"--jobs {jobs}: needs 2 to {len(cpus)} (this process's CPUs)")
  arms = {"one": [set(cpus)], "pinned": [set(cpus[j::jobs]) for j in range(jobs)]}
  results = {name: [] for name in arms}
  load0, t0 = os.getloadavg(), time.time()
  for i in range(args.rounds):
    for name, cpu_sets in arms.items():
      rs = run_arm(cpu_sets, args.warmup, args.steps, args.row)
      results[name].append(rs)
      print(f"round {i + 1} {name}: " + " + ".join(f"{r['steps_per_s']:.2f}" for r in rs)
            + " steps/s", file=sys.stderr, flush=True)
  total = {name: [sum(r["steps_per_s"] for r in rs) for rs in runs]
           for name, runs in results.items()}
  med = {name: statistics.median(v) for name, v in total.items()}
  losses = {name: sorted({r["loss"] for rs in runs for r in rs}) for name, runs in results.items()}
  cmd = " ".join(["python", *map(shlex.quote, sys.argv)])
  lines = [
      f"`{cmd}`", "",
      f"{platform.processor() or platform.machine()}, {len(cpus)} CPUs; {what}"
      f" with its input pipeline; {args.warmup} warm-up +"
      f" {args.steps} timed steps per process; {args.rounds} rounds, arms alternating;"
      f" {(time.time() - t0) / 60:.1f} min; load average (1 min) {load0[0]:.2f} at the start,"
      f" {os.getloadavg()[0]:.2f} at the end.", "",
      "| arm | processes × CPUs | steps/s, all processes (per round) | median | × one |",
      "|---|---|---|---:|---:|"]
  for name, cpu_sets in arms.items():
    lines.append(f"| {name} | {len(cpu_sets)} × {len(cpu_sets[0])} | "
                 + ", ".join(f"{v:.2f}" for v in total[name])
                 + f" | {med[name]:.2f} | {med[name] / med['one']:.2f} |")
  lines += ["", f"Final loss after {args.warmup + args.steps} steps (same seed and batches in"
            " every process), distinct values per arm: "
            + "; ".join(f"{name} {', '.join(f'{v:.6f}' for v in vs)}" for name, vs in losses.items())
            + ".", ""]
  report = "\n".join(lines)
  print(report)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(report)


if __name__ == "__main__":
  main()
