"""Tests for ssljax.losses.entropy: LogDet and Kolchinsky–Tracey estimators, VICReg + entropy.

References are independent float64 NumPy implementations written from the
formulas; analytic ground truth: exact single-Gaussian entropy, a Monte-Carlo
mixture entropy bracketed by the two pairwise bounds, and the LogDet value of a
batch whose sample covariance equals a prescribed Σ exactly.

Float32 tolerance 1e-5 relative (+1e-5 absolute for values near zero): the
kernels reduce ≤ 32×32 products and a Cholesky of a matrix with eigenvalues
≥ 1 in float32, i.e. errors of a few ulps × log-size.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from ssljax.losses import entropy
from ssljax.testing import assert_distributed_equivalence

F32_RTOL, F32_ATOL = 1e-5, 1e-5
SHAPES = [(8, 3), (6, 10), (12, 12)]  # D < N, D > N and D = N

_logdet = jax.jit(entropy.logdet_entropy, static_argnames=("form",))
_pairwise = jax.jit(entropy.pairwise_mixture_entropy, static_argnames=("bound",))
_vicreg_h = jax.jit(entropy.vicreg_entropy_loss, static_argnames=("estimator",))


# ---------------------------------------------------------------- references
def np_logdet(z, beta):
  z = np.asarray(z, np.float64)
  zc = z - z.mean(0)
  cov = zc.T @ zc / z.shape[0]
  sign, ld = np.linalg.slogdet(np.eye(z.shape[1]) + beta * cov)
  assert sign > 0
  return 0.5 * ld


def np_logsumexp(a, axis):
  m = np.max(a, axis=axis, keepdims=True)
  return np.squeeze(m, axis) + np.log(np.sum(np.exp(a - m), axis=axis))


def np_pairwise(z, sigma, bound):
  z = np.asarray(z, np.float64)
  n, d = z.shape
  dist2 = np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1)
  div = dist2 / (2 * sigma ** 2) if bound == "kl" else dist2 / (8 * sigma ** 2)
  h_comp = 0.5 * d * np.log(2 * np.pi * np.e * sigma ** 2)
  return h_comp - np.mean(np_logsumexp(-div, axis=1) - np.log(n))


def mc_mixture_entropy(means, sigma, num_samples, seed):
  """Monte-Carlo H of (1/N) Σ_j N(μ_j, σ²I): returns (estimate, standard error)."""
  rng = np.random.default_rng(seed)
  n, d = means.shape
  x = means[rng.integers(0, n, num_samples)] + sigma * rng.normal(size=(num_samples, d))
  dist2 = np.sum((x[:, None, :] - means[None, :, :]) ** 2, axis=-1)
  log_p = (np_logsumexp(-dist2 / (2 * sigma ** 2), axis=1) - np.log(n)
           - 0.5 * d * np.log(2 * np.pi * sigma ** 2))
  return -np.mean(log_p), np.std(log_p) / np.sqrt(num_samples)


def _data(seed, n, d, dtype=np.float64):
  rng = np.random.default_rng(seed)
  mix = np.eye(d) + 0.5 * rng.normal(size=(d, d))
  return ((rng.normal(size=(n, d)) @ mix) + rng.normal(size=d)).astype(dtype)


# ---------------------------------------------------------------- LogDet
@jax.jit
def _logdet_all_forms(z, beta):
  return [entropy.logdet_entropy(z, beta=beta, form=f) for f in ("covariance", "gram", "auto")]


@pytest.mark.parametrize("n,d", SHAPES)
def test_logdet_matches_numpy_and_forms_agree(n, d):
  """Both forms equal the reference (Sylvester: det(I_D + AᵀA) = det(I_N + AAᵀ))."""
  z = _data(n * 10 + d, n, d)
  beta = 0.7
  ref = np_logdet(z, beta)
  with jax.enable_x64(True):
    cov_form, gram_form, auto = _logdet_all_forms(jnp.asarray(z), beta)
  assert cov_form.dtype == jnp.float64
  np.testing.assert_allclose(cov_form, ref, rtol=1e-10)
  np.testing.assert_allclose(gram_form, ref, rtol=1e-10)
  np.testing.assert_allclose(gram_form, cov_form, rtol=1e-12)
  np.testing.assert_allclose(auto, ref, rtol=1e-10)
  for form, got in zip(("covariance", "gram"), _logdet_all_forms(jnp.asarray(z, jnp.float32), beta)):
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(got, ref, rtol=F32_RTOL, atol=F32_ATOL, err_msg=form)


def test_logdet_exact_for_prescribed_sample_covariance():
  """Batch with sample covariance exactly Σ: Ĥ = ½ log det(I + βΣ) to rounding."""
  rng = np.random.default_rng(0)
  d, n, beta = 4, 50, 1.3
  a = rng.normal(size=(d, d))
  sigma = a @ a.T + 0.1 * np.eye(d)
  x = rng.normal(size=(n, d))
  x -= x.mean(0)
  x = np.linalg.solve(np.linalg.cholesky(x.T @ x / n), x.T).T  # sample cov = I
  z = x @ np.linalg.cholesky(sigma).T + 5.0  # sample cov = Σ, arbitrary mean
  truth = 0.5 * np.linalg.slogdet(np.eye(d) + beta * sigma)[1]
  with jax.enable_x64(True):
    np.testing.assert_allclose(_logdet(jnp.asarray(z), beta=beta), truth, rtol=1e-10)


def test_logdet_converges_to_population_value_on_gaussian_data():
  """N = 10⁵ samples of N(0, Σ): Ĥ → ½ log det(I + βΣ) (sd of Ĥ here ≈ 3e-3, tolerance 1.5e-2)."""
  rng = np.random.default_rng(1)
  d, beta = 3, 2.0
  a = rng.normal(size=(d, d))
  sigma = a @ a.T + 0.2 * np.eye(d)
  truth = 0.5 * np.linalg.slogdet(np.eye(d) + beta * sigma)[1]
  z = rng.multivariate_normal(np.zeros(d), sigma, size=100_000)
  with jax.enable_x64(True):
    est = float(_logdet(jnp.asarray(z), beta=beta))
  assert abs(est - truth) < 1.5e-2, (est, truth)
  # A small batch is biased (downwards, by concavity of log det): the large-N value is closer.
  with jax.enable_x64(True):
    small = float(_logdet(jnp.asarray(z[:20]), beta=beta))
  assert abs(est - truth) < abs(small - truth)


def test_logdet_collapsed_and_scaling():
  z = jnp.tile(jnp.arange(5.0)[None], (8, 1))
  np.testing.assert_allclose(_logdet(z), 0.0, atol=1e-7)  # Σ̂ = 0 → log det I = 0
  y = jnp.asarray(_data(2, 16, 4, np.float32))
  # Ĥ(s·Z; β) = Ĥ(Z; s²β): β is a noise-to-signal ratio.
  np.testing.assert_allclose(_logdet(3.0 * y, beta=0.5), _logdet(y, beta=4.5), rtol=1e-5)
  # ridge adds r·I: bounded change, and it is used.
  r = _logdet(y, ridge=1e-2)
  assert 0 < float(r - _logdet(y)) <= 0.5 * 4 * 1e-2


def test_coding_rate_beta_reproduces_mcr2():
  """β = D/ε² gives MCR²'s ½ log det(I + D/(Nε²)·ZᵀZ) for centred Z."""
  z = _data(3, 20, 6)
  z = z - z.mean(0)
  n, d = z.shape
  eps_sq = 0.5
  mcr2 = 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps_sq) * z.T @ z)[1]
  with jax.enable_x64(True):
    got = _logdet(jnp.asarray(z), beta=entropy.coding_rate_beta(d, eps_sq))
  np.testing.assert_allclose(got, mcr2, rtol=1e-10)


# ---------------------------------------------------------------- pairwise
@jax.jit
def _pairwise_variants(z, sigma):
  """(KL, Bhattacharyya) at ``sigma`` and at ``sigma=None`` (σ² = D)."""
  return [entropy.pairwise_mixture_entropy(z, sigma=s, bound=b)
          for s in (sigma, None) for b in ("kl", "bhattacharyya")]


@pytest.mark.parametrize("n,d", SHAPES)
def test_pairwise_matches_numpy(n, d):
  z = _data(n * 3 + d, n, d)
  sigma = 1.7
  refs = [np_pairwise(z, sg, b) for sg in (sigma, math.sqrt(d)) for b in ("kl", "bhattacharyya")]
  with jax.enable_x64(True):
    got64 = _pairwise_variants(jnp.asarray(z), sigma)
  got32 = _pairwise_variants(jnp.asarray(z, jnp.float32), sigma)
  for i, ref in enumerate(refs):
    np.testing.assert_allclose(got64[i], ref, rtol=1e-10, err_msg=str(i))
    assert got32[i].dtype == jnp.float32
    np.testing.assert_allclose(got32[i], ref, rtol=F32_RTOL, atol=F32_ATOL, err_msg=str(i))


@pytest.mark.parametrize("d,sigma", [(1, 0.3), (3, 1.0), (5, 2.5)])
def test_pairwise_exact_for_single_gaussian(d, sigma):
  """N = 1: the mixture is one Gaussian, H = (D/2)·log(2πeσ²), for both bounds."""
  truth = 0.5 * d * np.log(2 * np.pi * np.e * sigma ** 2)
  with jax.enable_x64(True):
    z = jnp.asarray(np.random.default_rng(d).normal(size=(1, d)))
    for bound in ("kl", "bhattacharyya"):
      np.testing.assert_allclose(_pairwise(z, sigma=sigma, bound=bound), truth, rtol=1e-12)


@pytest.mark.parametrize("spread", [0.5, 2.0, 6.0])
def test_pairwise_bounds_bracket_monte_carlo_mixture_entropy(spread):
  """Bhattacharyya ≤ H(mixture) ≤ KL, with H from 2·10⁵ Monte-Carlo samples (4 s.e. slack).

  ``spread`` sets the centre distances relative to σ = 1: overlapping, partly
  overlapping and well-separated components.
  """
  rng = np.random.default_rng(int(spread * 10))
  n, d, sigma = 5, 2, 1.0
  means = spread * rng.normal(size=(n, d))
  h_mc, se = mc_mixture_entropy(means, sigma, 200_000, seed=7)
  with jax.enable_x64(True):
    upper = float(_pairwise(jnp.asarray(means), sigma=sigma, bound="kl"))
    lower = float(_pairwise(jnp.asarray(means), sigma=sigma, bound="bhattacharyya"))
  assert lower - 4 * se <= h_mc <= upper + 4 * se, (lower, h_mc, upper, se)
  h_comp = 0.5 * d * np.log(2 * np.pi * np.e * sigma ** 2)
  assert h_comp <= lower <= upper <= h_comp + np.log(n) + 1e-12
  if spread == 6.0:  # well separated: both bounds → H(p_i) + log N
    np.testing.assert_allclose([lower, upper, h_mc], h_comp + np.log(n), atol=0.05)


def test_pairwise_collapsed_and_kl_dominates_bhattacharyya():
  z = jnp.tile(jnp.array([[1.0, -2.0, 0.5]]), (6, 1))
  h_comp = 0.5 * 3 * np.log(2 * np.pi * np.e * 0.8 ** 2)
  for bound in ("kl", "bhattacharyya"):
    np.testing.assert_allclose(_pairwise(z, sigma=0.8, bound=bound), h_comp, rtol=1e-6)
  y = jnp.asarray(_data(5, 16, 4, np.float32))
  for sigma in (0.3, 1.0, 3.0):
    assert float(_pairwise(y, sigma=sigma, bound="kl")) >= float(
        _pairwise(y, sigma=sigma, bound="bhattacharyya"))


def test_pairwise_near_collapse_is_the_trace_over_sigma_squared_and_defaults_to_sigma_1():
  """Near collapse Ĥ − H(p_i) → tr(Σ̂)/σ² (KL) and tr(Σ̂)/(4σ²) (Bhattacharyya), Σ̂ = Z̃ᵀZ̃/N.

  First order of −(1/N)Σ_i log[(1/N)Σ_j exp(−D_ij)] in D_ij: the mean of
  D_ij, and (1/N²)Σ_ij ||z_i − z_j||² = 2·tr(Σ̂). This is why σ sets how hard
  the estimator resists collapse, and why σ² = D resisted D/2 times less than
  LogDet at β = 1 (documented default change, `pairwise_mixture_entropy`).
  """
  n, d = 32, 16
  z = 1e-3 * _data(9, n, d)  # distances ≪ σ: the relative second-order term is ~1e-6
  zc = z - z.mean(0)
  trace = np.trace(zc.T @ zc / n)
  with jax.enable_x64(True):
    for sigma in (1.0, math.sqrt(d)):
      h_comp = 0.5 * d * np.log(2 * np.pi * np.e * sigma ** 2)
      for bound, factor in (("kl", 1.0), ("bhattacharyya", 0.25)):
        excess = float(_pairwise(jnp.asarray(z), sigma=sigma, bound=bound)) - h_comp
        np.testing.assert_allclose(excess, factor * trace / sigma ** 2, rtol=1e-4)
    zj = jnp.asarray(z)
    for bound in ("kl", "bhattacharyya"):
      assert float(entropy.pairwise_mixture_entropy(zj, bound=bound)) == float(
          entropy.pairwise_mixture_entropy(zj, sigma=1.0, bound=bound))
    assert float(entropy.estimate_entropy(zj, estimator="pairwise_kl")) == float(
        entropy.estimate_entropy(zj, estimator="pairwise_kl", sigma=1.0))
    views = jnp.stack([zj, zj[::-1]])
    assert float(entropy.vicreg_entropy_loss(views, estimator="pairwise_kl")[0]) == float(
        entropy.vicreg_entropy_loss(views, estimator="pairwise_kl", sigma=1.0)[0])


# ---------------------------------------------------------------- properties
def test_translation_and_permutation_invariance():
  z = _data(6, 12, 4)
  perm = np.random.default_rng(0).permutation(12)
  with jax.enable_x64(True):
    zj = jnp.asarray(z)
    for fn in (lambda x: _logdet(x, beta=0.9), lambda x: _logdet(x, beta=0.9, form="gram"),
               lambda x: _pairwise(x, sigma=1.1, bound="kl"),
               lambda x: _pairwise(x, sigma=1.1, bound="bhattacharyya")):
      base = fn(zj)
      np.testing.assert_allclose(fn(zj + 100.0), base, rtol=1e-10)
      np.testing.assert_allclose(fn(zj[perm]), base, rtol=1e-12)


_GRAD_FNS = [lambda x: entropy.logdet_entropy(x, beta=0.8, form="covariance"),
             lambda x: entropy.logdet_entropy(x, beta=0.8, form="gram"),
             lambda x: entropy.pairwise_mixture_entropy(x, sigma=0.9, bound="kl"),
             lambda x: entropy.pairwise_mixture_entropy(x, sigma=0.9, bound="bhattacharyya")]


@jax.jit
def _all_grads(x):
  return [jax.grad(fn)(x) for fn in _GRAD_FNS]


def _weighted_sum(x):
  # Distinct weights, so one kernel's wrong gradient cannot cancel another's.
  return sum((i + 1.0) * fn(x) for i, fn in enumerate(_GRAD_FNS))


def test_jit_and_gradients():
  z = _data(8, 6, 3, np.float32)
  # jit vs eager execution.
  np.testing.assert_allclose(_logdet(z), entropy.logdet_entropy(z), rtol=1e-6)
  np.testing.assert_allclose(_pairwise(z, sigma=1.0), entropy.pairwise_mixture_entropy(z, sigma=1.0),
                             rtol=1e-6)
  for g in _all_grads(jnp.asarray(z)):
    assert np.all(np.isfinite(g))
    # Translation invariance ⇒ gradients sum to zero over the batch.
    np.testing.assert_allclose(np.sum(g, axis=0), 0.0, atol=1e-5)
  with jax.enable_x64(True):
    # Finite differences of all four kernels at once (one compilation).
    check_grads(jax.jit(_weighted_sum), (jnp.asarray(z, jnp.float64),), order=1, modes=("rev",))
    # Collapsed batch: gradients stay finite (the self-distance is masked to exactly 0).
    for g in _all_grads(jnp.ones((4, 3), jnp.float64)):
      assert np.all(np.isfinite(g))


def test_vmap_over_beta_and_sigma():
  z = _data(9, 10, 3)
  betas = jnp.array([0.1, 1.0, 10.0])
  sigmas = jnp.array([0.5, 1.0, 2.0])
  with jax.enable_x64(True):
    zj = jnp.asarray(z)
    hl = jax.jit(jax.vmap(lambda b: entropy.logdet_entropy(zj, beta=b)))(betas)
    hp = jax.jit(jax.vmap(lambda s: entropy.pairwise_mixture_entropy(zj, sigma=s, bound="kl")))(
        sigmas)
  for i in range(3):
    np.testing.assert_allclose(hl[i], np_logdet(z, float(betas[i])), rtol=1e-10)
    np.testing.assert_allclose(hp[i], np_pairwise(z, float(sigmas[i]), "kl"), rtol=1e-10)


# ---------------------------------------------------------------- VICReg + entropy
@pytest.mark.parametrize("estimator", entropy.ENTROPY_ESTIMATORS)
def test_vicreg_entropy_loss_matches_numpy(estimator):
  rng = np.random.default_rng(4)
  z1 = _data(10, 16, 5)
  z2 = z1 + 0.3 * rng.normal(size=z1.shape)
  kw = dict(sim_coeff=3.0, entropy_coeff=0.5, beta=0.7, sigma=1.3)
  if estimator == "logdet":
    h = [np_logdet(z, 0.7) for z in (z1, z2)]
  else:
    h = [np_pairwise(z, 1.3, estimator.split("_")[1]) for z in (z1, z2)]
  ref = 3.0 * np.mean((z1 - z2) ** 2) - 0.5 * (h[0] + h[1])
  with jax.enable_x64(True):
    loss, aux = _vicreg_h(jnp.asarray(np.stack([z1, z2])), estimator=estimator, **kw)
    swapped, _ = _vicreg_h(jnp.asarray(np.stack([z2, z1])), estimator=estimator, **kw)
  np.testing.assert_allclose(loss, ref, rtol=1e-10)
  np.testing.assert_allclose(swapped, loss, rtol=1e-12)  # view-swap symmetry
  np.testing.assert_allclose([aux["entropy1"], aux["entropy2"]], h, rtol=1e-10)
  np.testing.assert_allclose(aux["entropy"], h[0] + h[1], rtol=1e-10)
  np.testing.assert_allclose(aux["invariance"], np.mean((z1 - z2) ** 2), rtol=1e-10)
  # estimate_entropy dispatches to the same kernels.
  with jax.enable_x64(True):
    np.testing.assert_allclose(
        entropy.estimate_entropy(jnp.asarray(z1), estimator=estimator, beta=0.7, sigma=1.3), h[0],
        rtol=1e-10)


def test_input_validation():
  z = jnp.ones((8, 4))
  with pytest.raises(ValueError, match="estimator"):
    entropy.vicreg_entropy_loss((z, z), estimator="knn")
  with pytest.raises(ValueError, match="estimator"):
    entropy.estimate_entropy(z, estimator="pairwise")
  with pytest.raises(ValueError, match="bound"):
    entropy.pairwise_mixture_entropy(z, bound="renyi")
  with pytest.raises(ValueError, match="form"):
    entropy.logdet_entropy(z, form="svd")
  with pytest.raises(ValueError, match="beta"):
    entropy.logdet_entropy(z, beta=0.0)
  with pytest.raises(ValueError, match="ridge"):
    entropy.logdet_entropy(z, ridge=-1.0)
  with pytest.raises(ValueError, match="sigma"):
    entropy.pairwise_mixture_entropy(z, sigma=-1.0)


@pytest.mark.parametrize("fn", [entropy.logdet_entropy, entropy.pairwise_mixture_entropy,
                                entropy.estimate_entropy])
@pytest.mark.parametrize("shape", [(8,), (2, 8, 4), ()])
def test_bare_estimators_reject_non_2d_input(fn, shape):
  with pytest.raises(ValueError, match=fn.__name__ + r": z must be one embedding \[N, D\]"):
    fn(jnp.ones(shape))


_LAYOUT_ERRORS = {
    "three_views": jnp.ones((3, 8, 4)),
    "one_embedding": jnp.ones((8, 4)),
    "rank4": jnp.ones((2, 8, 4, 1)),
    "mismatched_shapes": (jnp.ones((8, 4)), jnp.ones((8, 5))),
    "examples_first": jnp.ones((64, 2, 16)),
}


@pytest.mark.parametrize("case", sorted(_LAYOUT_ERRORS))
def test_vicreg_entropy_layout_errors(case):
  with pytest.raises(ValueError, match=r"vicreg_entropy_loss: views must be \[V=2, N, D\]"):
    entropy.vicreg_entropy_loss(_LAYOUT_ERRORS[case])


def test_vicreg_entropy_sequence_equals_stacked_and_aux_is_scalar():
  z1 = jnp.asarray(_data(20, 16, 5, np.float32))
  z2 = z1 + 0.3
  stacked = _vicreg_h(jnp.stack([z1, z2]), estimator="pairwise_kl")
  for views in ((z1, z2), [z1, z2]):
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
                 _vicreg_h(views, estimator="pairwise_kl"), stacked)
  loss, aux = stacked
  assert loss.shape == ()
  assert sorted(aux) == ["entropy", "entropy1", "entropy2", "invariance"]
  for value in aux.values():
    assert value.shape == ()


# ---------------------------------------------------------------- distributed
def _two_branch(kernel):
  # Both arguments enter with different weights, so both gradients are checked.
  return lambda a, b, axis_name: kernel(a, axis_name) + 2.0 * kernel(b, axis_name)


# (function, feature dim D); N = 16. Weighted sums of kernels keep the number of
# compilations (3 per check) small; distinct weights prevent cancellations.
DIST_KERNELS = {
    # D ≤ N: covariance form (psum of D×D).
    "logdet_covariance": (_two_branch(lambda z, ax: entropy.logdet_entropy(
        z, beta=0.7, axis_name=ax)), 4),
    # D > N: Gram form (all_gather + pmean).
    "logdet_gram": (_two_branch(lambda z, ax: entropy.logdet_entropy(
        z, beta=0.7, axis_name=ax)), 24),
    "pairwise_kl_and_bhattacharyya": (_two_branch(lambda z, ax: entropy.pairwise_mixture_entropy(
        z, sigma=1.5, bound="kl", axis_name=ax) + 3.0 * entropy.pairwise_mixture_entropy(
            z, sigma=1.5, bound="bhattacharyya", axis_name=ax)), 4),
    # views [V=2, N, D]: the batch is axis 1.
    "vicreg_entropy_all_estimators": (lambda views, axis_name: sum(
        (i + 1.0) * entropy.vicreg_entropy_loss(views, estimator=e, entropy_coeff=0.3,
                                                 axis_name=axis_name)[0]
        for i, e in enumerate(entropy.ENTROPY_ESTIMATORS)), 4),
}


@pytest.mark.parametrize("name", sorted(DIST_KERNELS))
def test_distributed_equivalence(name):
  """8 devices × 2 rows (N = 16): value and gradient equal in single, jit and shard_map modes."""
  assert len(jax.devices()) == 8
  fn, d = DIST_KERNELS[name]
  rng = np.random.default_rng(12)
  z1 = _data(13, 16, d, np.float32)
  z2 = (z1 + 0.4 * rng.normal(size=z1.shape)).astype(np.float32)
  if name.startswith("vicreg_entropy"):
    assert_distributed_equivalence(fn, (np.stack([z1, z2]),), batch_axes=(1,), argnums=0)
  else:
    assert_distributed_equivalence(fn, (z1, z2), batch_axes=(0, 0), argnums=(0, 1))
