"""Every registered objective trains a tiny model through the one train-step factory."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ssljax.testing import run_train_steps, synthetic_batches, tiny_train_config
from ssljax.train import objectives

PREDICTOR = dict(predictor_hidden=(16,), predictor_dim=8, use_target=True)
CASES = {
    # term config, model overrides
    "simclr": ({"simclr": {"temperature": 0.2}}, {}),
    "byol": ({"byol": {}}, PREDICTOR),
    "barlow_twins": ({"barlow_twins": {}}, {}),
    "vicreg": ({"vicreg": {}}, {}),
    "vicreg_logdet": ({"vicreg_entropy": {"estimator": "logdet"}}, {}),
    "vicreg_pairwise": ({"vicreg_entropy": {"estimator": "pairwise_kl"}}, {}),
    "corinfomax": ({"corinfomax": {"alpha": 250.0}}, {"projector_bn": False}),
    "ssl_hsic": ({"ssl_hsic": {"num_rff_features": 64, "scale_num_samples": 64}}, PREDICTOR),
    "ssl_hsic_no_target": ({"ssl_hsic": {"num_rff_features": 64, "scale_num_samples": 64}}, {}),
    "superinfo": ({"superinfo": {"temperature": 0.2}}, {"variance_head": True}),
    "byol+logdet": ({"byol": {}, "vicreg_entropy": {"weight": 0.05, "use_prediction": True}},
                    PREDICTOR),
    # PID-SSL's unique-information term on top of SimCLR (pseudo-labels = labels here).
    "simclr+pid": ({"simclr": {"temperature": 0.2}, "pid_unique": {}}, {}),
    # The supervised reference row of experiments/fashion_mnist_table.py.
    "supervised": ({"supervised": {}}, {}),
}


def test_every_registered_term_is_exercised():
  objectives.get_term("vicreg")  # registers the built-ins
  used = {name for terms, _ in CASES.values() for name in terms}
  assert set(objectives.REGISTRY) <= used, set(objectives.REGISTRY) - used


@pytest.mark.parametrize("case", sorted(CASES))
def test_objective_decreases_on_a_fixed_batch(case):
  terms, model = CASES[case]
  config = tiny_train_config(terms, **model)
  with config.unlocked():
    config.optim.name = "adam"
    config.optim.base_lr = 3e-3
    config.pid.enabled = "pid_unique" in terms
  batch = synthetic_batches(1, 16, seed=3)[0]
  if config.pid.enabled:
    batch["pseudo_label"] = batch["label"]
  _, losses = run_train_steps(config, jax.devices()[:1], [batch] * 16, total_steps=16)
  assert np.all(np.isfinite(losses)), losses
  first, last = np.mean(losses[:3]), np.mean(losses[-3:])
  assert last < first, f"{case}: loss did not decrease: {losses}"
