"""Tests of ssljax.evaluate.knn against an independent NumPy brute-force kNN."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.evaluate import knn_predict, topk_accuracy


def _np_knn(train, labels, test, num_classes, k, temperature):
  """Brute force, float64, written from Wu et al. 2018 Eq. (9) / solo-learn's WeightedKNNClassifier."""
  train = np.asarray(train, np.float64)
  test = np.asarray(test, np.float64)
  train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
  test = test / np.maximum(np.linalg.norm(test, axis=1, keepdims=True), 1e-12)
  scores = np.zeros((len(test), num_classes))
  for i, q in enumerate(test):
    sims = train @ q
    for j in np.argsort(-sims)[:min(k, len(train))]:
      scores[i, labels[j]] += np.exp(sims[j] / temperature)
  return scores


def _data(m, n, f, c, seed):
  rng = np.random.default_rng(seed)
  return (rng.normal(size=(m, f)), rng.integers(0, c, size=m), rng.normal(size=(n, f)))


@pytest.mark.parametrize("m,n,f,c,k,t", [
    (50, 13, 8, 3, 7, 0.1),
    (120, 30, 16, 10, 20, 0.07),
    (40, 5, 4, 5, 1, 0.5),
])
def test_knn_matches_numpy_bruteforce_float64(m, n, f, c, k, t):
  train, labels, test = _data(m, n, f, c, seed=m + n)
  expected = _np_knn(train, labels, test, c, k, t)
  with jax.enable_x64(True):
    got = knn_predict(jnp.asarray(train), jnp.asarray(labels), jnp.asarray(test),
                      num_classes=c, k=k, temperature=t, chunk_size=4)
    assert got.dtype == jnp.float64
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)


def test_knn_float32_and_defaults():
  # float32: scores are up to exp(1/T) = e^10, relative error ~ 1e-6 · (1/T) from the exponent.
  train, labels, test = _data(300, 17, 12, 10, seed=0)
  expected = _np_knn(train, labels, test, 10, 200, 0.1)
  got = knn_predict(jnp.asarray(train, jnp.float32), jnp.asarray(labels),
                    jnp.asarray(test, jnp.float32), num_classes=10)
  assert got.shape == (17, 10) and got.dtype == jnp.float32
  np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-3)


def test_knn_chunking_invariance_and_k_clipping():
  train, labels, test = _data(60, 23, 8, 4, seed=1)
  ref = knn_predict(train, labels, test, num_classes=4, k=10, chunk_size=23)
  # float32: scores are sums of k=10 terms exp(sim/T) up to e^10; XLA may fuse the
  # per-chunk programs differently (more so with JAX_DISABLE_MOST_OPTIMIZATIONS),
  # so allow a few ulps of the sum (k·eps ≈ 1e-6), i.e. rtol 5e-6.
  for chunk in (1, 5, 8, 100):
    np.testing.assert_allclose(knn_predict(train, labels, test, num_classes=4, k=10,
                                           chunk_size=chunk), ref, rtol=5e-6)
  # k larger than the memory bank: every training point votes.
  with jax.enable_x64(True):
    got = knn_predict(jnp.asarray(train), labels, jnp.asarray(test), num_classes=4, k=1000)
    np.testing.assert_allclose(got, _np_knn(train, labels, test, 4, 60, 0.1), rtol=1e-10)


def test_knn_scale_invariance_and_permutation_equivariance():
  train, labels, test = _data(40, 9, 6, 3, seed=2)
  ref = np.asarray(knn_predict(train, labels, test, num_classes=3, k=5))
  scale = np.random.default_rng(0).uniform(0.1, 10, size=(40, 1))
  np.testing.assert_allclose(knn_predict(train * scale, labels, test * 3.0, num_classes=3, k=5),
                             ref, rtol=1e-5)
  perm = np.random.default_rng(1).permutation(40)
  np.testing.assert_allclose(knn_predict(train[perm], labels[perm], test, num_classes=3, k=5),
                             ref, rtol=1e-5)
  tperm = np.random.default_rng(2).permutation(9)
  np.testing.assert_allclose(knn_predict(train, labels, test[tperm], num_classes=3, k=5),
                             ref[tperm], rtol=1e-5)


def test_knn_vmap_over_temperature_and_grad():
  train, labels, test = _data(30, 6, 5, 3, seed=3)
  temps = jnp.array([0.05, 0.1, 0.5])
  batched = jax.vmap(lambda t: knn_predict(train, labels, test, num_classes=3, k=4,
                                           temperature=t))(temps)
  for i, t in enumerate([0.05, 0.1, 0.5]):
    np.testing.assert_allclose(batched[i], _np_knn(train, labels, test, 3, 4, t), rtol=2e-5)
  g = jax.grad(lambda q: knn_predict(train, labels, q, num_classes=3, k=4).sum())(
      jnp.asarray(test, jnp.float32))
  assert g.shape == test.shape and np.all(np.isfinite(g))


def test_knn_classifies_clusters():
  rng = np.random.default_rng(4)
  centers = rng.normal(size=(5, 16)) * 3
  ytr, yte = rng.integers(0, 5, 200), rng.integers(0, 5, 50)
  xtr = centers[ytr] + rng.normal(size=(200, 16))
  xte = centers[yte] + rng.normal(size=(50, 16))
  acc = topk_accuracy(knn_predict(xtr, ytr, xte, num_classes=5, k=20), jnp.asarray(yte))
  assert float(acc["top1"]) > 0.95


def _np_topk(scores, labels, k, mask):
  order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
  correct = (order == labels[:, None]).any(axis=1).astype(np.float64)
  return (mask * correct).sum() / mask.sum()


@pytest.mark.parametrize("n,c", [(37, 10), (8, 3)])
def test_topk_accuracy_matches_numpy(n, c):
  rng = np.random.default_rng(n)
  scores = rng.normal(size=(n, c))
  labels = rng.integers(0, c, size=n)
  mask = (rng.uniform(size=n) > 0.3).astype(np.float64)
  out = topk_accuracy(jnp.asarray(scores), jnp.asarray(labels), ks=(1, 2, 5))
  out_m = topk_accuracy(jnp.asarray(scores), jnp.asarray(labels), ks=(1, 2, 5), mask=mask)
  for k in (1, 2, 5):
    np.testing.assert_allclose(out[f"top{k}"], _np_topk(scores, labels, min(k, c), np.ones(n)),
                               rtol=1e-6)
    np.testing.assert_allclose(out_m[f"top{k}"], _np_topk(scores, labels, min(k, c), mask),
                               rtol=1e-6)
  # Analytic cases: perfect scores and k >= C.
  perfect = jax.nn.one_hot(labels, c) * 5.0
  assert float(topk_accuracy(perfect, jnp.asarray(labels), ks=(1,))["top1"]) == 1.0
  assert float(topk_accuracy(jnp.asarray(scores), jnp.asarray(labels), ks=(c + 3,))[f"top{c + 3}"]) == 1.0
  jitted = jax.jit(topk_accuracy, static_argnames="ks")(jnp.asarray(scores), jnp.asarray(labels),
                                                         ks=(1, 2))
  np.testing.assert_allclose(jitted["top2"], out["top2"])


def test_input_checks():
  train, labels, test = _data(10, 3, 4, 2, seed=5)
  with pytest.raises(ValueError, match="Feature dims differ"):
    knn_predict(train, labels, test[:, :3], num_classes=2)
  with pytest.raises(ValueError, match=r"train_labels must have shape"):
    knn_predict(train, labels[:5], test, num_classes=2)
  with pytest.raises(ValueError, match=r"\[M, F\]"):
    knn_predict(train[None], labels, test, num_classes=2)
  with pytest.raises(ValueError, match="k and chunk_size"):
    knn_predict(train, labels, test, num_classes=2, k=0)
  with pytest.raises(ValueError, match="mask"):
    topk_accuracy(jnp.zeros((3, 2)), jnp.zeros(3, jnp.int32), mask=jnp.ones(2))
