"""Per-run plots: loss terms, evaluation accuracy and the embedding covariance spectrum.

Written into ``workdir/plots/`` at the end of `ssljax.train.loop.train_and_evaluate`
(``config.eval.plots``) and re-creatable from a finished run with
``python -m ssljax.train.run_plots <workdir>`` (metrics come from
``metrics.jsonl``, the spectrum from ``spectrum.json``).

The spectrum plot is the dimensional-collapse diagnostic of Jing et al.
(ICLR 2022, Fig. 2) and CorInfoMax (Ozsoy et al., NeurIPS 2022, Fig. 3): the
sorted eigenvalues of the covariance of the (un-augmented) eval-split
features, on a log scale. A collapsed representation shows eigenvalues that
drop to numerical zero long before the feature dimension.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Sequence

import numpy as np

_EPS = 1e-12


def covariance_spectrum(features: np.ndarray) -> np.ndarray:
  """Eigenvalues of the feature covariance, descending, float64.

  Args:
    features: ``[N, F]`` features (any float dtype).

  Returns:
    ``[F]`` eigenvalues of ``cov = (X - mean)ᵀ(X - mean) / (N - 1)``, clipped at 0.
  """
  x = np.asarray(features, np.float64)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f"features must be [N, F] with N >= 2, got shape {x.shape}")
  x = x - x.mean(axis=0)
  cov = x.T @ x / (x.shape[0] - 1)
  return np.clip(np.linalg.eigvalsh(cov)[::-1], 0.0, None)


def effective_rank(eigenvalues: np.ndarray) -> float:
  """Roy & Vetterli (2007) effective rank exp(H(p)), p = λ / Σλ (1 … F)."""
  lam = np.asarray(eigenvalues, np.float64)
  total = lam.sum()
  if total <= 0:
    return 0.0
  p = lam[lam > 0] / total
  return float(np.exp(-(p * np.log(p)).sum()))


def spectrum_summary(spectra: dict[str, np.ndarray]) -> dict[str, float]:
  """Scalar collapse diagnostics per feature kind (for ``results.json``)."""
  out = {}
  for kind, lam in spectra.items():
    out[f"spectrum/{kind}/effective_rank"] = effective_rank(lam)
    out[f"spectrum/{kind}/dim"] = float(len(lam))
    # Eigenvalues above 1e-6 of the largest: a float32-safe "numerical rank".
    out[f"spectrum/{kind}/rank_1e-6"] = float((lam > 1e-6 * max(lam[0], _EPS)).sum())
  return out


def read_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    raise FileNotFoundError(f"no metrics.jsonl in {workdir}: is it a ssljax run directory?")
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def series(records: Sequence[dict], key: str):
  """(steps, values) of ``key`` in metrics records, last value per step, sorted by step."""
  pts = [(r["step"], r[key]) for r in records if r.get(key) is not None]
  # A resumed run re-logs steps; keep the last value per step.
  last = dict(pts)
  steps = sorted(last)
  return np.array(steps), np.array([last[s] for s in steps], dtype=np.float64)


def _loss_keys(records):
  keys = sorted({k for r in records for k in r if k == "loss" or k.startswith("loss/")})
  terms = [k for k in keys if k.count("/") <= 1]
  parts = [k for k in keys if k.count("/") == 2 and not k.endswith(("/weight", "/agreement"))]
  return terms, parts


def distinct_series(records: Sequence[dict], keys: Sequence[str]):
  """``[(label, steps, values)]``, one per distinct series of ``keys``, in first-seen order.

  Keys whose series are identical (``loss`` when the objective is the single
  term ``loss/<term>``) share one entry, labelled ``'loss = loss/<term>'``, so a
  plot never draws two lines on top of each other.

  Example:
    >>> recs = [{"step": 1, "loss": 2.0, "loss/vicreg": 2.0, "loss/koleo": 0.5}]
    >>> [label for label, _, _ in distinct_series(recs, ["loss", "loss/koleo", "loss/vicreg"])]
    ['loss = loss/vicreg', 'loss/koleo']
  """
  groups = []  # [labels, steps, values]
  for key in keys:
    steps, values = series(records, key)
    same = next((g for g in groups if np.array_equal(g[1], steps) and np.array_equal(g[2], values)),
                None)
    if same is None:
      groups.append([[key], steps, values])
    else:
      same[0].append(key)
  return [(" = ".join(labels), steps, values) for labels, steps, values in groups]


def readable_y_axis(ax, values) -> None:
  """Plain y tick labels: ``1.5``, not ``1.5×10^0`` or an offset such as ``+2.1e1``.

  Positive values spanning two decades or more get a log axis (labels
  ``10^k`` at whole decades only); everything else a linear axis whose
  `~matplotlib.ticker.ScalarFormatter` writes every tick in full.
  """
  from matplotlib import ticker
  v = np.asarray(values, np.float64)
  v = v[np.isfinite(v)]
  if v.size and v.min() > 0 and v.max() / v.min() >= 100:
    ax.set_yscale("log")
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())
  else:
    ax.set_yscale("linear")
    formatter = ticker.ScalarFormatter(useOffset=False)
    formatter.set_scientific(False)
    ax.yaxis.set_major_formatter(formatter)


def plot_losses(records, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  terms, parts = _loss_keys(records)
  ncols = 2 if parts else 1
  fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
  panels = [(axes[0, 0], terms, "loss and its weighted terms", "")]
  if parts:
    panels.append((axes[0, 1], parts, "unweighted components", "loss/"))
  for ax, keys, title, prefix in panels:
    lines = distinct_series(records, keys)
    for label, steps, values in lines:
      ax.plot(steps, values, label=label.replace(prefix, "") if prefix else label)
    readable_y_axis(ax, np.concatenate([v for _, _, v in lines]) if lines else [])
    ax.set(title=title, xlabel="step")
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def plot_accuracy(records, path: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  keys = sorted({k for r in records for k in r if k.startswith("eval/") and k.endswith("/top1")})
  for key in keys:
    steps, vals = series(records, key)
    ax.plot(steps, 100 * vals, marker="o", label=key.removeprefix("eval/"))
  if any("probe/accuracy" in r for r in records):
    steps, vals = series(records, "probe/accuracy")
    ax.plot(steps, 100 * vals, alpha=0.5, label="online probe (train batch)")
  ax.set(title="top-1 accuracy (%)", xlabel="step")
  readable_y_axis(ax, [])  # percentages: linear, plain labels
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def plot_spectrum(spectra: dict[str, np.ndarray], path: str, title: str = "") -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for kind, lam in spectra.items():
    lam = np.asarray(lam, np.float64)
    ax.plot(np.arange(1, len(lam) + 1), np.log10(np.maximum(lam / max(lam[0], _EPS), _EPS)),
            label=f"{kind} (eff. rank {effective_rank(lam):.1f} / {len(lam)})")
  ax.set(title=title or "eval-feature covariance spectrum", xlabel="index (sorted)",
         ylabel="log10 eigenvalue / largest")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=90)
  plt.close(fig)


def write_run_plots(workdir: str, spectra: dict[str, np.ndarray] | None = None) -> list[str]:
  """Writes ``plots/{loss,accuracy,spectrum}.png`` (and ``spectrum.json``); returns the paths."""
  out_dir = os.path.join(workdir, "plots")
  os.makedirs(out_dir, exist_ok=True)
  spectrum_file = os.path.join(workdir, "spectrum.json")
  if spectra is not None:
    with open(spectrum_file, "w", encoding="utf-8") as f:
      json.dump({k: np.asarray(v).tolist() for k, v in spectra.items()}, f)
  elif os.path.exists(spectrum_file):
    with open(spectrum_file, encoding="utf-8") as f:
      spectra = {k: np.asarray(v) for k, v in json.load(f).items()}
  records = read_metrics(workdir)
  paths = [os.path.join(out_dir, "loss.png"), os.path.join(out_dir, "accuracy.png")]
  plot_losses(records, paths[0])
  plot_accuracy(records, paths[1])
  if spectra:
    paths.append(os.path.join(out_dir, "spectrum.png"))
    plot_spectrum(spectra, paths[-1], title=os.path.basename(os.path.normpath(workdir)))
  return paths


def main(argv=None) -> int:
  import argparse
  parser = argparse.ArgumentParser(
      prog="python -m ssljax.train.run_plots",
      description="Redraw a run's plots (loss, accuracy, covariance spectrum) into <workdir>/plots.")
  parser.add_argument("workdir", help="a run directory holding metrics.jsonl")
  args = parser.parse_args(argv)
  if not os.path.exists(os.path.join(args.workdir, "metrics.jsonl")):
    print(f"error: no metrics.jsonl in {args.workdir}. Pass the --workdir of a run.", file=sys.stderr)
    return 2
  print("\n".join(write_run_plots(args.workdir)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
