"""Every term of the table trains a tiny model through the one train-step factory.

The cases are generated from `objectives.TERMS`, so a new term is exercised
without editing this file; the network heads a term needs are read off its
inputs. Combinations and non-default estimators are listed explicitly.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ssljax.testing import run_train_steps, synthetic_batches, tiny_train_config
from ssljax.train import objectives

PREDICTOR = dict(predictor_hidden=(16,), predictor_dim=8, use_target=True)
# Smaller estimators than the defaults, for speed only.
FAST = {"simclr": {"temperature": 0.2}, "superinfo": {"temperature": 0.2},
        "ssl_hsic": {"num_rff_features": 64, "scale_num_samples": 64},
        # On this fixed batch the queue holds last step's keys of the same images, so a queue
        # of half a batch keeps MoCo's objective stationary after the first step.
        "moco": {"queue_size": 8}, "nnclr": {"queue_size": 64},
        # W-MSE whitens 16 rows of 8 dims of random-noise views here: with ε ≤ 0.1 the
        # whitened views stay uncorrelated (loss ≈ 2 ± 0.3) for 16 steps; shrink Σ.
        "wmse": {"eps": 0.5}}
# Terms that cannot stand alone: PID-SSL's term is added to a baseline below.
NOT_ALONE = {"pid_unique"}


def _model_for(terms) -> dict:
  model = {}
  for name in terms:
    term = objectives.TERMS[name]
    if {"prediction", "target_projection"} & set(term.inputs):
      model.update(PREDICTOR)
    if "logvar" in term.optional_inputs.values():
      model["variance_head"] = True
  return model


CASES = {name: {name: FAST.get(name, {})} for name in objectives.TERMS if name not in NOT_ALONE}
CASES.update({
    "vicreg_entropy_pairwise": {"vicreg_entropy": {"estimator": "pairwise_kl"}},
    "ssl_hsic_no_target": {"ssl_hsic": FAST["ssl_hsic"]},
    "byol+logdet": {"byol": {}, "vicreg_entropy": {"weight": 0.05, "use_prediction": True}},
    # PID-SSL's unique-information term on top of SimCLR (pseudo-labels = labels here).
    "simclr+pid": {"simclr": FAST["simclr"], "pid_unique": {}},
})
MODEL_OVERRIDES = {"ssl_hsic_no_target": {}, "corinfomax": {"projector_bn": False}}


def test_every_term_is_exercised():
  used = {name for terms in CASES.values() for name in terms}
  assert set(objectives.TERMS) <= used, set(objectives.TERMS) - used


@pytest.mark.slow  # one train-step compile per term (~12 s each); CI runs the slow set
@pytest.mark.parametrize("case", sorted(CASES))
def test_objective_decreases_on_a_fixed_batch(case):
  terms = CASES[case]
  config = tiny_train_config(terms, **MODEL_OVERRIDES.get(case, _model_for(terms)))
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


def test_term_hparams_come_from_the_kernel_signature():
  weight, hp = objectives.split_hparams("vicreg", {"weight": 2.0, "sim_coeff": 5.0})
  assert weight == 2.0 and hp == {"sim_coeff": 5.0, "std_coeff": 25.0, "cov_coeff": 1.0,
                                  "eps": 1e-4}
  with pytest.raises(ValueError, match=r"unknown keys \['temp'\]"):
    objectives.split_hparams("simclr", {"temp": 0.1})
