"""glibc malloc tunables vs the default, side by side on the real CPU train step.

XLA:CPU allocates its per-step scratch buffer (~151 MiB for the default
Fashion-MNIST VICReg step) with ``malloc``; above glibc's mmap threshold
(at most 32 MiB) every step maps it, faults it in page by page (the kernel
zeroes each page) and unmaps it. ``ssljax.main`` therefore re-execs itself
with ``GLIBC_TUNABLES`` (`ssljax.allocator`). This driver measures that
choice: it runs each arm in a fresh subprocess (glibc reads the variable only
at process start), alternating the arms (A B A B ...) so that the load of a
shared machine falls on both alike, and reports per arm the median over its
runs of

* images/s of the train step (after warm-up, the step's compile included in
  the warm-up);
* images per CPU-second (user + system time of the child over the timed
  steps): on a shared, loaded machine far steadier than images/s;
* minor page faults and system (kernel) CPU time per step, from
  ``getrusage(RUSAGE_SELF)`` deltas around the timed steps in the child;

and checks that the final loss and a SHA-256 of the whole train state are the
same in every run of every arm (the allocator must not change results).

Each child builds ``configs/fashion_mnist/vicreg.py`` (one CPU device, as
``python -m ssljax.main`` runs it), reads the first ``warmup + steps``
batches of the real training loader into memory, then runs the jitted step on
them, so the input pipeline is not timed. Run::

  python benchmarks/allocator.py                  # 3 rounds: 6 runs of 1-3 min on 2 cores
  python benchmarks/allocator.py --arms 'hugetlb=glibc.malloc.hugetlb=1' --rounds 3 \
      --out experiments/results/allocator.md

The arms are the unset default, ``ssljax.allocator.TUNABLES`` and any
``--arms`` (``name=GLIBC_TUNABLES`` pairs separated by ``;``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "fashion_mnist", "vicreg.py")
DEFAULT = "default"


def _state_digest(state) -> str:
  """SHA-256 over every leaf of the train state (PRNG keys as their raw data)."""
  import jax
  import numpy as np
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(state):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()


def child(warmup: int, steps: int) -> dict:
  """Runs the real train step in this process; returns its measurements."""
  import jax
  from ssljax import configs_util
  from ssljax import main as main_lib
  from ssljax.train import evaluation
  from ssljax.train import loop
  from ssljax.train import setup as setup_lib

  main_lib.enable_compilation_cache()
  config = configs_util.load_config(CONFIG)
  run = setup_lib.build(config)
  data_it = loop.make_train_loader(run)
  batches = []
  for _ in range(warmup + steps):
    b = next(data_it)
    b.pop("index")
    batches.append({k: evaluation.to_global(run.mesh, v) for k, v in b.items()})
  del data_it
  state = run.init_state(jax.random.key(config.seed))
  jitted = run.jitted_step()
  rng = jax.random.key(config.seed + 1)
  for b in batches[:warmup]:
    state, metrics = jitted(state, b, rng)
  jax.block_until_ready((state, metrics))
  r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
  for b in batches[warmup:]:
    state, metrics = jitted(state, b, rng)
  jax.block_until_ready((state, metrics))
  wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
  cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
  return {"images_per_s": steps * config.data.batch_size / wall,
          "images_per_cpu_s": steps * config.data.batch_size / cpu,
          "step_s": wall / steps,
          "minflt_per_step": (r1.ru_minflt - r0.ru_minflt) / steps,
          "sys_s_per_step": (r1.ru_stime - r0.ru_stime) / steps,
          "user_s_per_step": (r1.ru_utime - r0.ru_utime) / steps,
          # Waits (futex: a lock, the thread pool) and preemptions by other processes.
          "vcsw_per_step": (r1.ru_nvcsw - r0.ru_nvcsw) / steps,
          "ivcsw_per_step": (r1.ru_nivcsw - r0.ru_nivcsw) / steps,
          "load1": os.getloadavg()[0],
          "loss": float(metrics["loss"]),
          "state_sha256": _state_digest(state),
          "devices": jax.device_count(), "backend": jax.default_backend()}


def run_child(tunables: str | None, warmup: int, steps: int) -> dict:
  env = dict(os.environ)
  env.pop("GLIBC_TUNABLES", None)
  if tunables is not None:
    env["GLIBC_TUNABLES"] = tunables
  proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                         f"--warmup={warmup}", f"--steps={steps}"],
                        env=env, cwd=ROOT, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f"child failed ({tunables}):\n{proc.stderr[-4000:]}")
  return json.loads(proc.stdout.strip().splitlines()[-1])


def table(arms: list[tuple[str, str | None]], results: dict[str, list[dict]],
          args) -> tuple[str, bool]:
  """The markdown table of medians, and whether every run ended in the same state."""
  keys = ("images_per_s", "images_per_cpu_s", "minflt_per_step", "sys_s_per_step",
          "user_s_per_step", "step_s", "vcsw_per_step", "ivcsw_per_step")
  base = {k: statistics.median(r[k] for r in results[DEFAULT]) for k in keys}
  lines = ["| arm | GLIBC_TUNABLES | images/s (median; runs) | × default | step (ms) | "
           "images / CPU-s | × default | minor faults / step | × default | "
           "system CPU / step (ms) | user CPU / step (ms) | voluntary / involuntary context "
           "switches per step | load average (1 min) at each run's end |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for name, tunables in arms:
    rs = results[name]
    med = {k: statistics.median(r[k] for r in rs) for k in keys}
    runs = ", ".join(f"{r['images_per_s']:.0f}" for r in rs)
    loads = ", ".join(f"{r['load1']:.1f}" for r in rs)
    lines.append(
        f"| {name} | `{tunables or '(unset)'}` | {med['images_per_s']:.0f} ({runs}) | "
        f"{med['images_per_s'] / base['images_per_s']:.2f} | {1e3 * med['step_s']:.0f} | "
        f"{med['images_per_cpu_s']:.0f} | "
        f"{med['images_per_cpu_s'] / base['images_per_cpu_s']:.2f} | "
        f"{med['minflt_per_step']:.0f} | "
        f"{med['minflt_per_step'] / max(base['minflt_per_step'], 1e-9):.3f} | "
        f"{1e3 * med['sys_s_per_step']:.1f} | {1e3 * med['user_s_per_step']:.0f} | "
        f"{med['vcsw_per_step']:.0f} / {med['ivcsw_per_step']:.0f} | "
        f"{loads} |")
  digests = {(r["loss"], r["state_sha256"]) for rs in results.values() for r in rs}
  same = len(digests) == 1
  loss, digest = next(iter(digests))
  lines.append("")
  lines.append(f"Final loss and train-state SHA-256 after {args.warmup + args.steps} steps: "
               + (f"identical in all {sum(map(len, results.values()))} runs "
                  f"(loss {loss!r}, sha256 {digest[:16]}…)." if same else
                  f"DIFFERENT: {sorted(digests)}"))
  return "\n".join(lines), same


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--warmup", type=int, default=5, help="untimed steps (the first compiles)")
  ap.add_argument("--steps", type=int, default=40, help="timed steps per run")
  ap.add_argument("--rounds", type=int, default=3, help="runs per arm, interleaved")
  ap.add_argument("--arms", default="", help="more arms to compare, 'name=TUNABLES;...'")
  ap.add_argument("--out", default="", help="also write the markdown report here")
  args = ap.parse_args()
  if args.child:
    print(json.dumps(child(args.warmup, args.steps)))
    return
  sys.path.insert(0, ROOT)
  from ssljax import allocator
  extra = [tuple(a.split("=", 1)) for a in args.arms.split(";") if a]
  arms = [(DEFAULT, None), ("ssljax", allocator.TUNABLES), *extra]
  results: dict[str, list[dict]] = {name: [] for name, _ in arms}
  load0, t0 = os.getloadavg(), time.time()
  for i in range(args.rounds):
    for name, tunables in arms:
      r = run_child(tunables, args.warmup, args.steps)
      results[name].append(r)
      print(f"round {i + 1} {name}: {r['images_per_s']:.0f} images/s, "
            f"{r['minflt_per_step']:.0f} faults/step, {1e3 * r['sys_s_per_step']:.1f} ms sys/step",
            file=sys.stderr, flush=True)
  load1 = os.getloadavg()
  text, same = table(arms, results, args)
  r0 = results[DEFAULT][0]
  cmd = " ".join(["python", *map(shlex.quote, sys.argv)])
  libc = " ".join(platform.libc_ver())
  header = (f"`{cmd}`\n\n"
            f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {libc}, "
            f"{r0['backend']} × {r0['devices']}; {args.rounds} runs per arm, alternating; "
            f"{args.warmup} warm-up + {args.steps} timed steps of batch 256 per run; "
            f"{(time.time() - t0) / 60:.1f} min; load average (1 min) {load0[0]:.2f} at the "
            f"start, {load1[0]:.2f} at the end (shared machine).\n")
  report = header + "\n" + text + "\n"
  print(report)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(report)
  if not same:
    sys.exit(1)


if __name__ == "__main__":
  main()
