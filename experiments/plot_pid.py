"""Plots the PID-monitor curves (redundancy, unique, synergy) of several runs side by side.

  python experiments/plot_pid.py --out pid.png RUN_DIR [RUN_DIR ...]
  python experiments/plot_pid.py --out pid.png --label simclr=runs/a --label simclr+pid=runs/b

Reads ``metrics.jsonl`` of each run (written when ``config.pid_monitor.every_steps``
> 0). Runs sharing a label (``--label NAME=DIR`` repeated, e.g. several seeds)
are drawn as mean ± std.
"""

from __future__ import annotations

import argparse
import collections
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ATOMS = ("redundancy", "unique1", "unique2", "synergy", "joint_mi")


def read_curves(workdir: str, estimator: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{atom: (steps, values)} of one run."""
  curves = collections.defaultdict(list)
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    for line in f:
      rec = json.loads(line)
      for atom in ATOMS:
        key = f"pid/{estimator}/{atom}"
        if rec.get(key) is not None:
          curves[atom].append((rec["step"], rec[key]))
  return {a: (np.array([s for s, _ in v]), np.array([x for _, x in v])) for a, v in curves.items()}


def plot(groups: dict[str, list[str]], out: str, estimator: str = "gauss") -> None:
  unit = "nats" if estimator == "gauss" else "bits"
  fig, axes = plt.subplots(1, len(ATOMS), figsize=(4 * len(ATOMS), 3.4), sharex=True)
  for label, dirs in groups.items():
    runs = [read_curves(d, estimator) for d in dirs]
    for ax, atom in zip(axes, ATOMS):
      series = [r[atom] for r in runs if atom in r]
      if not series:
        continue
      n = min(len(s[0]) for s in series)
      steps = series[0][0][:n]
      vals = np.stack([s[1][:n] for s in series])
      mean, std = vals.mean(0), vals.std(0)
      ax.plot(steps, mean, label=label)
      if len(series) > 1:
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
  for ax, atom in zip(axes, ATOMS):
    ax.set_title(f"{atom} ({unit})")
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.suptitle(f"PID of I(label; h(view1), h(view2)), {estimator} estimator")
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  plt.close(fig)


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("runs", nargs="*")
  ap.add_argument("--label", action="append", default=[], help="NAME=RUN_DIR (repeatable)")
  ap.add_argument("--estimator", default="gauss", choices=["gauss", "disc"])
  ap.add_argument("--out", required=True)
  a = ap.parse_args()
  groups = collections.OrderedDict()
  for spec in a.label:
    name, _, path = spec.partition("=")
    groups.setdefault(name, []).append(path)
  for path in a.runs:
    groups.setdefault(os.path.basename(os.path.normpath(path)), []).append(path)
  if not groups:
    ap.error("give run directories or --label NAME=DIR")
  plot(groups, a.out, a.estimator)
  print(f"wrote {a.out}")


if __name__ == "__main__":
  main()
