"""Kill -9 during checkpoint writes, N times: every rerun resumes from an intact checkpoint.

    python -m tests.reliability.kill9 --trials 10

Runs the smoke config uninterrupted once (the reference), then for each trial
starts the same run in a fresh workdir with a checkpoint every step, waits
until the checkpoint of a random step (1-10) appears, sends SIGKILL after a
further random 0-300 ms (so the kill lands inside or around the next Orbax
write), and reruns the same command until it completes. The final
evaluation metrics of every trial must equal the reference's exactly, and
metrics.jsonl must hold each step once. Not part of the default test run
(minutes); the reliability tests cover each mechanism once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import tempfile
import time

from tests.reliability import cli

FLAGS = ("--config.total_steps=12", "--config.checkpoint.every_steps=1", "--config.checkpoint.keep=2",
         "--config.eval.plots=False", "--config.eval.pixel_baseline=False")


def final_metrics(workdir):
  with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
    return {k: v for k, v in json.load(f).items() if k.startswith("eval/")}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--trials", type=int, default=10)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  rng = random.Random(args.seed)
  root = tempfile.mkdtemp(prefix="ssljax_kill9_")
  ref_dir = os.path.join(root, "reference")
  t = time.time()
  proc = cli.run(ref_dir, *FLAGS)
  assert proc.returncode == 0, proc.stderr[-3000:]
  run_seconds = time.time() - t
  reference = final_metrics(ref_dir)
  print(f"reference run: {run_seconds:.1f} s, {reference}")
  rows = []
  for trial in range(args.trials):
    workdir = os.path.join(root, f"trial{trial}")
    target = rng.randint(1, 10)
    p = cli.start(workdir, *FLAGS)
    t0 = time.time()
    ckpt = os.path.join(workdir, "checkpoints", str(target))
    while not os.path.isdir(ckpt) and p.poll() is None and time.time() - t0 < 600:
      time.sleep(0.01)
    time.sleep(rng.uniform(0.0, 0.3))
    delay = time.time() - t0
    p.send_signal(signal.SIGKILL)
    p.wait()
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints"))
                   if s.isdigit()) if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
    reruns, messages = 0, []
    while True:
      reruns += 1
      proc = cli.run(workdir, *FLAGS)
      messages += [l for l in proc.stderr.splitlines() if l.startswith("[ssljax]")]
      if proc.returncode == 0:
        break
      assert reruns < 3, proc.stderr[-3000:]
    got = final_metrics(workdir)
    records = cli.metrics(workdir)
    keys = [(r["step"], tuple(sorted(r))) for r in records]
    same = got == reference
    unique = len(keys) == len(set(keys))
    rows.append((trial, target, f"{delay:.1f}", steps, reruns, same, unique,
                 " | ".join(m.removeprefix("[ssljax] ")[:90] for m in messages)))
    print(f"trial {trial}: killed {delay:.1f} s in (after checkpoint {target} appeared), on disk {steps}, reruns {reruns}, "
          f"final metrics identical: {same}, no duplicated records: {unique}; {messages}")
    assert same, (got, reference)
    assert unique
  print(f"\n{args.trials} kills: every rerun resumed from an intact checkpoint and ended with the "
        "reference's final metrics.")


if __name__ == "__main__":
  main()
