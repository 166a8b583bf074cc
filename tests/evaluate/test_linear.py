"""Tests of ssljax.evaluate.linear: offline linear probe and online probe loss."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_digits

from ssljax.evaluate import (LinearProbe, init_online_probe, linear_probe_predict,
                             online_probe_loss, topk_accuracy, train_linear_probe)
from ssljax.testing import assert_distributed_equivalence


def _np_softmax(z):
  z = z - z.max(axis=1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=1, keepdims=True)


def _np_ce_grad(w, b, x, y, c):
  """Gradient of mean softmax CE of x @ w + b w.r.t. (w, b), float64."""
  p = _np_softmax(x @ w + b)
  d = (p - np.eye(c)[y]) / len(x)
  return x.T @ d, d.sum(0)


def test_sgd_recipe_matches_numpy_two_full_batch_steps():
  """Momentum, kernel-only weight decay and the cosine schedule, step by step."""
  rng = np.random.default_rng(0)
  m, f, c = 24, 5, 3
  x = rng.normal(size=(m, f))
  y = rng.integers(0, c, size=m)
  lr, beta, wd = 0.5, 0.9, 0.1
  probe = train_linear_probe(x, y, num_classes=c, epochs=2, batch_size=m, learning_rate=lr,
                             momentum=beta, weight_decay=wd, schedule="cosine", normalize=None)
  # NumPy: zero init; optax cosine over 2 steps gives lr, lr/2; L2 term on the kernel only.
  w, b = np.zeros((f, c)), np.zeros(c)
  mw, mb = np.zeros_like(w), np.zeros_like(b)
  for step_lr in (lr, lr * 0.5):
    gw, gb = _np_ce_grad(w, b, x, y, c)
    mw, mb = beta * mw + gw + wd * w, beta * mb + gb
    w, b = w - step_lr * mw, b - step_lr * mb
  np.testing.assert_allclose(probe.kernel, w, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(probe.bias, b, rtol=1e-5, atol=1e-6)
  # Constant schedule, no momentum: plain gradient descent.
  probe = train_linear_probe(x, y, num_classes=c, epochs=2, batch_size=m, learning_rate=lr,
                             momentum=0.0, schedule="constant", normalize=None)
  w, b = np.zeros((f, c)), np.zeros(c)
  for _ in range(2):
    gw, gb = _np_ce_grad(w, b, x, y, c)
    w, b = w - lr * gw, b - lr * gb
  np.testing.assert_allclose(probe.kernel, w, rtol=1e-5, atol=1e-6)


def test_linearly_separable_data_is_learned():
  rng = np.random.default_rng(1)
  w_true = rng.normal(size=(10, 4))
  x = rng.normal(size=(600, 10)) * rng.uniform(0.5, 5.0, size=10) + 3.0
  y = np.argmax((x - 3.0) / rng.uniform(1, 1, size=10) @ w_true, axis=1)
  probe = train_linear_probe(x[:500], y[:500], num_classes=4, epochs=40, batch_size=50,
                             learning_rate=0.5, seed=0)
  train_acc = topk_accuracy(linear_probe_predict(probe, jnp.asarray(x[:500], jnp.float32)),
                            jnp.asarray(y[:500]), ks=(1,))["top1"]
  test_acc = topk_accuracy(linear_probe_predict(probe, jnp.asarray(x[500:], jnp.float32)),
                           jnp.asarray(y[500:]), ks=(1,))["top1"]
  assert float(train_acc) > 0.97, float(train_acc)
  assert float(test_acc) > 0.9, float(test_acc)


def test_digits_raw_pixels_beat_chance():
  # The raw-pixel baseline recipe: 8×8 digits, 10 classes (chance 0.1). Measured ≈ 0.97.
  digits = load_digits()
  x, y = digits.data.astype(np.float32), digits.target
  perm = np.random.default_rng(0).permutation(len(x))
  tr, te = perm[:1200], perm[1200:]
  probe = train_linear_probe(x[tr], y[tr], num_classes=10, epochs=30, batch_size=64,
                             learning_rate=0.1, seed=0)
  acc = float(topk_accuracy(linear_probe_predict(probe, x[te]), jnp.asarray(y[te]),
                            ks=(1,))["top1"])
  assert acc > 0.9, acc


def test_normalization_is_fitted_and_reused():
  rng = np.random.default_rng(2)
  x = rng.normal(size=(64, 6)) * np.array([1, 10, 0.1, 3, 1, 0]) + np.array([0, 5, -2, 1, 0, 7])
  y = rng.integers(0, 3, size=64)
  kw = dict(num_classes=3, epochs=3, batch_size=16, learning_rate=0.2, seed=3)
  probe = train_linear_probe(x, y, **kw)
  assert isinstance(probe, LinearProbe) and probe.normalize == "standardize"
  np.testing.assert_allclose(probe.mean, x.mean(0), rtol=1e-5, atol=1e-5)
  std = x.std(0)
  np.testing.assert_allclose(probe.scale[:5], 1 / std[:5], rtol=1e-4)
  assert float(probe.scale[5]) == 1.0  # constant feature keeps scale 1 (as StandardScaler)
  # Standardisation makes training invariant to a per-feature affine map.
  a, b = rng.uniform(0.5, 2.0, size=6), rng.normal(size=6)
  probe2 = train_linear_probe(x * a + b, y, **kw)
  np.testing.assert_allclose(linear_probe_predict(probe2, jnp.asarray(x * a + b, jnp.float32)),
                             linear_probe_predict(probe, jnp.asarray(x, jnp.float32)),
                             rtol=1e-3, atol=1e-4)
  # 'l2': invariant to a per-row scale.
  p_l2 = train_linear_probe(x, y, **{**kw, "normalize": "l2"})
  s = rng.uniform(0.5, 4.0, size=(64, 1))
  np.testing.assert_allclose(linear_probe_predict(p_l2, jnp.asarray(x * s, jnp.float32)),
                             linear_probe_predict(p_l2, jnp.asarray(x, jnp.float32)),
                             rtol=1e-4, atol=1e-5)
  # Same seed: same probe; another seed: another shuffling.
  np.testing.assert_array_equal(train_linear_probe(x, y, **kw).kernel, probe.kernel)
  assert not np.allclose(train_linear_probe(x, y, **{**kw, "seed": 4}).kernel, probe.kernel)


def test_online_probe_loss_matches_numpy_and_stops_gradient():
  rng = np.random.default_rng(5)
  h = rng.normal(size=(16, 7))
  y = rng.integers(0, 4, size=16)
  params = {"kernel": jnp.asarray(rng.normal(size=(7, 4)), jnp.float32),
            "bias": jnp.asarray(rng.normal(size=4), jnp.float32)}
  loss, metrics = jax.jit(online_probe_loss, static_argnums=3)(params, jnp.asarray(h, jnp.float32),
                                                            jnp.asarray(y), 4)
  w, b = np.asarray(params["kernel"], np.float64), np.asarray(params["bias"], np.float64)
  p = _np_softmax(h @ w + b)
  np.testing.assert_allclose(loss, -np.mean(np.log(p[np.arange(16), y])), rtol=1e-5)
  np.testing.assert_allclose(metrics["probe_acc"], np.mean(p.argmax(1) == y), rtol=1e-6)
  gp, gh = jax.jit(jax.grad(lambda p, h: online_probe_loss(p, h, jnp.asarray(y), 4)[0],
                            argnums=(0, 1)))(params, jnp.asarray(h, jnp.float32))
  np.testing.assert_array_equal(gh, 0.0)  # the encoder gets no gradient from the probe
  gw, gb = _np_ce_grad(w, b, h, y, 4)
  np.testing.assert_allclose(gp["kernel"], gw, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(gp["bias"], gb, rtol=1e-4, atol=1e-6)
  zeros = init_online_probe(7, 4)
  np.testing.assert_allclose(online_probe_loss(zeros, jnp.asarray(h), jnp.asarray(y), 4)[0],
                             np.log(4), rtol=1e-6)


def test_online_probe_loss_distributed_equivalence():
  rng = np.random.default_rng(6)
  kernel = jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)
  bias = jnp.asarray(rng.normal(size=3), jnp.float32)
  h = jnp.asarray(rng.normal(size=(16, 5)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, size=16), jnp.int32)

  def fn(kernel, bias, h, y, axis_name=None):
    return online_probe_loss({"kernel": kernel, "bias": bias}, h, y, 3, axis_name=axis_name)[0]

  assert_distributed_equivalence(fn, (kernel, bias, h, y), batch_axes=(None, None, 0, 0),
                                 argnums=(0, 1))


def test_input_checks():
  x, y = np.zeros((8, 3)), np.zeros(8, np.int64)
  kw = dict(num_classes=2, epochs=1, batch_size=4, learning_rate=0.1)
  with pytest.raises(ValueError, match="flatten"):
    train_linear_probe(np.zeros((8, 2, 2)), y, **kw)
  with pytest.raises(ValueError, match="train_labels"):
    train_linear_probe(x, y[:3], **kw)
  with pytest.raises(ValueError, match="normalize"):
    train_linear_probe(x, y, normalize="pca", **kw)
  with pytest.raises(ValueError, match="schedule"):
    train_linear_probe(x, y, schedule="step", **kw)
  with pytest.raises(ValueError, match="Probe kernel"):
    online_probe_loss(init_online_probe(3, 2), jnp.zeros((4, 3)), jnp.zeros(4, jnp.int32), 5)
