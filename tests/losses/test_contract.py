"""The one kernel contract (docs/kernels.md), checked on every loss kernel of the term table.

The kernels are enumerated from `ssljax.train.objectives.TERMS`, so a kernel
added to the table is held to the contract without editing this file.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.train import objectives

KERNELS = {t.kernel.__name__: t for t in objectives.TERMS.values()
           if t.kernel.__module__.startswith("ssljax.losses")}


def _inputs(term, n=32, d=8, seed=0):
  keys = jax.random.split(jax.random.key(seed), len(term.inputs))
  return [jax.random.normal(k, (2, n, d)) for k in keys]


def _call(term, inputs, **kw):
  if term.needs_key:
    kw["key"] = jax.random.key(1)
  # Required array keywords (SwAV's prototypes) are the term's learnable parameters.
  required = [n for n, p in inspect.signature(term.kernel).parameters.items()
              if p.kind == p.KEYWORD_ONLY and p.default is p.empty and n not in kw]
  if required:
    params, _ = term.init(jnp.shape(inputs[0][0])[-1], term.hparams)
    kw.update({n: params[n] for n in required})
  return term.kernel(*inputs, **kw)


def test_the_table_holds_every_loss_kernel():
  assert {"nt_xent_loss", "byol_loss", "barlow_twins_loss", "vicreg_loss", "vicreg_entropy_loss",
          "corinfomax_loss", "ssl_hsic_loss", "superinfo_loss"} <= set(KERNELS)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_signature_is_views_first_with_keyword_only_hyperparameters(name):
  params = list(inspect.signature(KERNELS[name].kernel).parameters.values())
  positional = [p for p in params if p.kind == p.POSITIONAL_OR_KEYWORD]
  assert len(positional) == len(KERNELS[name].inputs), positional
  assert positional[0].name in ("views", "predictions")
  assert all(p.kind == p.KEYWORD_ONLY for p in params[len(positional):])
  assert "axis_name" in inspect.signature(KERNELS[name].kernel).parameters


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_returns_scalar_loss_and_dict_of_scalars(name):
  term = KERNELS[name]
  out = _call(term, _inputs(term))
  assert len(out) == (3 if term.stateful else 2)
  loss, aux = out[0], out[1]
  assert jnp.shape(loss) == () and np.isfinite(float(loss))
  assert isinstance(aux, dict) and aux
  for k, v in aux.items():
    assert jnp.shape(v) == (), (k, jnp.shape(v))


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_sequence_of_views_equals_stacked_views(name):
  term = KERNELS[name]
  inputs = _inputs(term)
  stacked = _call(term, inputs)
  listed = _call(term, [tuple(x) for x in inputs])
  np.testing.assert_allclose(float(listed[0]), float(stacked[0]), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_examples_first_and_wrong_rank_raise(name):
  term = KERNELS[name]
  inputs = _inputs(term, n=32)
  with pytest.raises(ValueError, match=r"\[V"):
    _call(term, [jnp.swapaxes(x, 0, 1) for x in inputs])     # [N, V, D]
  with pytest.raises(ValueError, match=r"\[V"):
    _call(term, [x[0] for x in inputs])                        # [N, D]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_jit_and_grad(name):
  term = KERNELS[name]
  inputs = _inputs(term)
  value, grads = jax.jit(jax.value_and_grad(lambda xs: _call(term, xs)[0]))(inputs)
  np.testing.assert_allclose(float(value), float(_call(term, inputs)[0]), rtol=1e-5)
  assert all(np.all(np.isfinite(g)) for g in grads)
