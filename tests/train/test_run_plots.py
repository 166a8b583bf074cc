"""Per-run plots and collapse diagnostics (`ssljax.train.run_plots`)."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest

from ssljax.train import run_plots


def test_covariance_spectrum_matches_known_covariance():
  rng = np.random.default_rng(0)
  scales = np.array([3.0, 2.0, 1.0, 0.5])
  q, _ = np.linalg.qr(rng.normal(size=(4, 4)))
  x = rng.normal(size=(200_000, 4)) * scales @ q.T  # covariance Q diag(s²) Qᵀ
  lam = run_plots.covariance_spectrum(x.astype(np.float32))
  # Sample covariance of 2e5 Gaussian draws: relative error ~ sqrt(2/n) ≈ 0.3 %.
  np.testing.assert_allclose(lam, scales ** 2, rtol=0.02)
  assert np.all(np.diff(lam) <= 0)


def test_covariance_spectrum_sees_dimensional_collapse():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 16))  # rank 3 in 16 dims
  lam = run_plots.covariance_spectrum(x)
  summary = run_plots.spectrum_summary({"projection": lam})
  assert summary["spectrum/projection/rank_1e-6"] == 3
  assert summary["spectrum/projection/dim"] == 16
  assert 1.0 <= summary["spectrum/projection/effective_rank"] <= 3.0


@pytest.mark.parametrize("lam, expected", [(np.ones(7), 7.0), (np.array([5.0, 0, 0, 0]), 1.0),
                                           (np.zeros(3), 0.0)])
def test_effective_rank_analytic(lam, expected):
  assert run_plots.effective_rank(lam) == pytest.approx(expected, rel=1e-12)


def test_bad_features_give_clear_error():
  with pytest.raises(ValueError, match=r"\[N, F\]"):
    run_plots.covariance_spectrum(np.ones((1, 4)))


def test_write_run_plots_from_metrics_file(tmp_path):
  records = [{"step": s, "loss": 10.0 / s, "loss/vicreg": 10.0 / s, "loss/vicreg/variance": 1.0 / s,
              "loss/vicreg/weight": 1.0, "probe/accuracy": 0.1 * s} for s in range(1, 6)]
  records.append({"step": 5, "eval/knn/top1": 0.7, "eval/linear/top1": 0.8})
  with open(tmp_path / "metrics.jsonl", "w", encoding="utf-8") as f:
    f.write("\n".join(json.dumps(r) for r in records) + "\n")
  paths = run_plots.write_run_plots(str(tmp_path), {"embedding": np.array([2.0, 1.0, 0.1])})
  assert [os.path.basename(p) for p in paths] == ["loss.png", "accuracy.png", "spectrum.png"]
  assert all(os.path.getsize(p) > 1000 for p in paths)
  # Re-plotting a finished run reads spectrum.json back.
  assert len(run_plots.write_run_plots(str(tmp_path))) == 3
  with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
    run_plots.write_run_plots(str(tmp_path / "missing"))


def test_identical_series_are_drawn_once():
  records = [{"step": s, "loss": 3.0 / s, "loss/vicreg": 3.0 / s, "loss/koleo": 1.0 / s}
             for s in range(1, 4)]
  records.append({"step": 3, "loss": 0.9})  # a resumed run re-logs step 3: last value wins
  lines = run_plots.distinct_series(records, ["loss", "loss/koleo", "loss/vicreg"])
  assert [label for label, _, _ in lines] == ["loss", "loss/koleo", "loss/vicreg"]
  records.pop()
  lines = run_plots.distinct_series(records, ["loss", "loss/koleo", "loss/vicreg"])
  assert [label for label, _, _ in lines] == ["loss = loss/vicreg", "loss/koleo"]
  np.testing.assert_array_equal(lines[0][1], [1, 2, 3])
  np.testing.assert_array_equal(lines[0][2], [3.0, 1.5, 1.0])
  # Same values at other steps are another series.
  other = [{"step": 1, "loss": 1.0}, {"step": 2, "loss/x": 1.0}]
  assert len(run_plots.distinct_series(other, ["loss", "loss/x"])) == 2


@pytest.mark.parametrize("values, scale", [
    ([1.89054, 1.89061, 1.89058], "linear"),    # narrow range: no offset, no ×10^k
    ([-2.22872, -2.22870, -2.22875], "linear"),
    ([1234.5, 1234.7], "linear"),
    ([50.0, 1.0, 0.02], "log"),                 # positive, > 2 decades
])
def test_tick_labels_are_plain_numbers(values, scale):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from matplotlib import ticker
  fig, ax = plt.subplots()
  ax.plot(np.arange(len(values)), values)
  run_plots.readable_y_axis(ax, values)
  fig.canvas.draw()
  assert ax.get_yscale() == scale
  formatter = ax.yaxis.get_major_formatter()
  if scale == "linear":
    assert isinstance(formatter, ticker.ScalarFormatter)
    assert formatter.get_useOffset() is False and formatter.get_offset() == ""
  else:
    assert isinstance(ax.yaxis.get_minor_formatter(), ticker.NullFormatter)
  labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
  assert labels, labels
  if scale == "linear":  # every label is the number it stands for, written out
    for tick, text in zip(ax.get_yticks(), (t.get_text() for t in ax.get_yticklabels())):
      assert "×" not in text and "e" not in text.lower(), text
      assert float(text.replace("\N{MINUS SIGN}", "-")) == pytest.approx(tick, abs=1e-9)
  else:  # whole decades only: 10^k
    assert all(re.fullmatch(r"\$\\mathdefault\{10\^\{-?\d+\}\}\$", l) for l in labels), labels
  plt.close(fig)
