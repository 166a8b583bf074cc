"""Mixed precision (``config.model.dtype='bfloat16'``): every loss term against float32.

Tolerances (``docs/mixed_precision.md``): bfloat16 keeps 8 significant bits,
so one rounding has relative error up to u = 2^-8 ≈ 3.9e-3.

* Kernels: given bf16 network outputs, every term computes in float32 (the
  inputs are promoted by `ssljax.losses.views.upcast`), so its value equals the
  float32 computation on the same (bf16-representable) numbers to float32
  rounding (rtol 1e-5), and the gradient differs only by its final rounding
  back to the bf16 input (rtol u). A kernel that computed a statistic in bf16
  would miss the value check by ~1e-3.
* Train step: the network runs in bf16 (float32 parameters and BN statistics).
  Every activation is rounded (relative u each), so the loss moves by a few u
  (measured ≤ 3.8e-3 relative, bound 1e-2) and the parameter gradient, whose
  backward pass is rounded too and goes through BatchNorm's normalisation,
  by 2-11% in relative L2 norm (measured on this batch; bound 0.2).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ssljax import config as config_lib
from ssljax.testing import run_train_steps, synthetic_batches, tiny_train_config
from ssljax.train import network as network_lib
from ssljax.train import objectives
import pytest

# Whole train-step compiles (10-40 s each): in the slow set, which CI runs.
pytestmark = pytest.mark.slow

U_BF16 = 2.0 ** -8
NAMES = sorted(objectives.TERMS)
K = 4            # classes of the cluster / supervised head
N, D = 32, 16
_OBJ = objectives.make_objective({name: {} for name in NAMES})
_LOSS_PARAMS, _LOSS_STATE = _OBJ.init(D)
_LABELS = jnp.asarray(np.random.default_rng(0).integers(0, K, N), jnp.int32)


def _term_values(outs_fn, params):
  """``(values [T], per-term grads of params)`` for every term of TERMS, in one trace."""
  outs, vjp = jax.vjp(outs_fn, params)
  values, cotangents = [], []
  for name in NAMES:
    def f(o, name=name):
      o = dict(o, target_projection=jax.lax.stop_gradient(o["projection"][::-1]),
               labels=_LABELS, pseudo_labels=_LABELS)
      return objectives.TERMS[name](o, _LOSS_PARAMS.get(name), _LOSS_STATE.get(name),
                                    jax.random.key(3), _OBJ.terms[name][1], None,
                                    step=jnp.int32(1000))[0]  # past SwAV's prototype freeze
    v, ct = jax.value_and_grad(f)(outs)
    values.append(v)
    cotangents.append(ct)
  grads = jax.vmap(vjp)(jax.tree.map(lambda *a: jnp.stack(a), *cotangents))[0]
  return jnp.stack(values), grads


def _per_term(tree, i):
  return np.concatenate([np.asarray(a[i], np.float64).ravel() for a in jax.tree.leaves(tree)])


def test_every_kernel_computes_in_float32():
  keys = jax.random.split(jax.random.key(0), 5)
  shapes = {"projection": (2, N, D), "prediction": (2, N, D), "embedding": (2, N, 8),
            "logvar": (2, N, D), "cluster_logits": (2, N, K)}
  # The network's embedding and small linear heads (logvar, cluster logits) are
  # float32 (`ssljax.train.network`); the MLP heads hand bf16 to the loss.
  f32_heads = ("embedding", "logvar", "cluster_logits")
  outs16 = {k: jax.random.normal(key, s).astype(jnp.float32 if k in f32_heads else jnp.bfloat16)
            for key, (k, s) in zip(keys, sorted(shapes.items()))}
  outs32 = jax.tree.map(lambda a: a.astype(jnp.float32), outs16)
  run = jax.jit(lambda o: _term_values(lambda x: x, o))
  v16, g16 = run(outs16)
  v32, g32 = run(outs32)
  assert v16.dtype == jnp.float32
  for i, name in enumerate(NAMES):
    np.testing.assert_allclose(v16[i], v32[i], rtol=1e-5, atol=1e-6, err_msg=name)
    a, b = _per_term(g16, i), _per_term(g32, i)
    np.testing.assert_allclose(a, b, rtol=U_BF16, atol=1e-6 * np.abs(b).max(), err_msg=name)


def _model_config(dtype):
  c = config_lib.base_config()
  c.model.encoder_kwargs = {"widths": (8, 16)}
  c.model.projector_hidden = (32,)
  c.model.projector_dim = D
  c.model.predictor_hidden = (32,)
  c.model.predictor_dim = D
  c.model.variance_head = True
  c.model.dtype = dtype
  return c.model


def test_bf16_step_loss_and_gradients_close_to_float32():
  x = jnp.asarray(np.random.default_rng(1).normal(size=(2, N, 12, 12, 1)), jnp.float32)
  net32 = network_lib.build_network(_model_config("float32"), cluster_classes=K)
  variables = net32.init(jax.random.key(0), x[0], train=True)
  results = {}
  for dtype in ("float32", "bfloat16"):
    net = network_lib.build_network(_model_config(dtype), cluster_classes=K)

    def outs_fn(params, net=net):
      o = [net.apply({"params": params, "batch_stats": variables["batch_stats"]}, v, train=True,
                     mutable=["batch_stats"])[0] for v in x]
      return {k: jnp.stack([oo[k] for oo in o]) for k in o[0]}

    results[dtype] = jax.jit(lambda p, f=outs_fn: _term_values(f, p))(variables["params"])
    if dtype == "bfloat16":
      dtypes = {k: v.dtype for k, v in outs_fn(variables["params"]).items()}
      assert dtypes == {"embedding": jnp.float32, "projection": jnp.bfloat16,
                        "prediction": jnp.bfloat16, "logvar": jnp.float32,
                        "cluster_logits": jnp.float32}, dtypes
  (v32, g32), (v16, g16) = results["float32"], results["bfloat16"]
  assert {a.dtype for a in jax.tree.leaves(g16)} == {jnp.dtype(jnp.float32)}
  for i, name in enumerate(NAMES):
    rel_v = abs(float(v16[i]) - float(v32[i])) / max(abs(float(v32[i])), 1e-3)
    a, b = _per_term(g16, i), _per_term(g32, i)
    rel_g = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert rel_v < 1e-2, (name, rel_v)
    assert rel_g < 0.2, (name, rel_g)


def test_eight_devices_equal_one_device_in_bf16():
  """As tests/train/test_step.py, with the network in bf16 (loss and BN statistics float32).

  Step 1 runs the same bf16 roundings on the same numbers on 1 and 8 devices,
  so its loss agrees to float32 rounding (measured 2e-7; a loss or a BN
  statistic computed on a local shard would be off by O(1)). Afterwards a
  1-ulp float32 difference of a reduction (its order depends on the device
  count) can flip the bf16 rounding of an activation: measured loss
  differences 5.4e-4 relative (bound u/2 ≈ 2e-3) and a relative L2 difference
  of the parameters of 1.3e-3 after 3 steps (bound 1e-2; a gradient scaled by
  the device count changes them by far more).
  """
  config = tiny_train_config({"vicreg": {"weight": 1.0}}, dtype="bfloat16")
  batches = synthetic_batches(3, 16)
  s1, l1 = run_train_steps(config, jax.devices()[:1], batches)
  s8, l8 = run_train_steps(config, jax.devices()[:8], batches)
  assert abs(l1[0] - l1[-1]) > 1e-4
  assert {a.dtype for a in jax.tree.leaves(s8.params)} == {np.dtype(np.float32)}
  np.testing.assert_allclose(l8[0], l1[0], rtol=1e-5)
  np.testing.assert_allclose(l8, l1, rtol=U_BF16 / 2)
  flat = lambda t: np.concatenate([np.ravel(a) for a in jax.tree.leaves(t)])
  p1, p8 = flat(s1.params), flat(s8.params)
  assert np.linalg.norm(p8 - p1) / np.linalg.norm(p1) < 1e-2
