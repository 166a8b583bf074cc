"""The PID-SSL pipeline pieces: α ramp, refresh steps, cluster-id matching, unique-info loss."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssljax.train import pid_ssl

SPE, TOTAL = 10, 120  # steps per epoch, total steps


def _pid_cfg(**kw):
  cfg = ml_collections.ConfigDict(dict(warmup_epochs=2.0, refresh_every_epochs=3.0,
                                       alpha_start=1e-4, alpha_end=1e-1, ramp="geometric",
                                       ramp_epochs=-1.0))
  cfg.update(kw)
  return cfg


def _np_alpha(steps, *, warm, ramp, a0, a1, kind):
  u = np.clip((steps - warm) / ramp, 0.0, 1.0)
  a = {"geometric": a0 * (a1 / a0) ** u,
       "linear": a0 + u * (a1 - a0),
       "cosine": a1 + 0.5 * (a0 - a1) * (1.0 + np.cos(np.pi * u)),
       "constant": np.full_like(u, a1)}[kind]
  return np.where(steps >= warm, a, 0.0)


@pytest.mark.parametrize("kind", ["geometric", "linear", "cosine", "constant"])
@pytest.mark.parametrize("ramp_epochs", [-1.0, 5.0])
def test_alpha_schedule_matches_numpy(kind, ramp_epochs):
  cfg = _pid_cfg(ramp=kind, ramp_epochs=ramp_epochs)
  alpha = pid_ssl.alpha_schedule(cfg, steps_per_epoch=SPE, total_steps=TOTAL)
  steps = np.arange(TOTAL + 10)
  got = np.asarray(jax.jit(alpha)(jnp.asarray(steps)))
  warm = 20
  ramp = 50 if ramp_epochs > 0 else TOTAL - warm
  want = _np_alpha(steps, warm=warm, ramp=ramp, a0=1e-4, a1=1e-1, kind=kind)
  # float32: the cosine ramp a1 + ½(a0 − a1)(1 + cos) cancels to ~1 ulp of a1 (1e-8) near a0.
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-8)
  # Zero throughout the warm-up, alpha_start on its last step, alpha_end after the ramp.
  np.testing.assert_array_equal(got[:warm], 0.0)
  assert got[warm] == pytest.approx(1e-1 if kind == "constant" else 1e-4, rel=1e-3)
  np.testing.assert_allclose(got[warm + ramp:], 1e-1, rtol=1e-5)


def test_alpha_schedule_shapes():
  kw = dict(steps_per_epoch=SPE, total_steps=TOTAL)
  ramp = np.arange(20, TOTAL + 1)
  geo = np.asarray(pid_ssl.alpha_schedule(_pid_cfg(), **kw)(jnp.asarray(ramp)))
  lin = np.asarray(pid_ssl.alpha_schedule(_pid_cfg(ramp="linear"), **kw)(jnp.asarray(ramp)))
  cos = np.asarray(pid_ssl.alpha_schedule(_pid_cfg(ramp="cosine"), **kw)(jnp.asarray(ramp)))
  # Geometric: equal log-steps; linear: equal steps; cosine: flat at both ends.
  np.testing.assert_allclose(np.diff(np.log(geo)), np.log(1e3) / 100, rtol=1e-3)
  np.testing.assert_allclose(np.diff(lin), (1e-1 - 1e-4) / 100, rtol=1e-3)
  d = np.diff(cos)
  assert d[0] < d[50] / 50 and d[-1] < d[50] / 50
  for a in (geo, lin, cos):
    assert np.all(np.diff(a) > 0)


def test_alpha_schedule_errors():
  kw = dict(steps_per_epoch=SPE, total_steps=TOTAL)
  with pytest.raises(ValueError, match="ramp"):
    pid_ssl.alpha_schedule(_pid_cfg(ramp="exponential"), **kw)
  with pytest.raises(ValueError, match="alpha_start > 0"):
    pid_ssl.alpha_schedule(_pid_cfg(alpha_start=0.0), **kw)
  # The other ramps accept a zero start.
  pid_ssl.alpha_schedule(_pid_cfg(alpha_start=0.0, ramp="linear"), **kw)


def test_refresh_steps():
  kw = dict(steps_per_epoch=SPE, total_steps=TOTAL)
  assert pid_ssl.refresh_steps(_pid_cfg(), **kw) == [20, 50, 80, 110]
  assert pid_ssl.refresh_steps(_pid_cfg(warmup_epochs=0.0, refresh_every_epochs=5.0),
                               **kw) == [0, 50, 100]
  # Warm-up past the end of training: no clustering at all.
  assert pid_ssl.refresh_steps(_pid_cfg(warmup_epochs=20.0), **kw) == []
  # A refresh period below one step is clamped to every step.
  assert pid_ssl.refresh_steps(_pid_cfg(warmup_epochs=11.5, refresh_every_epochs=0.01),
                               **kw) == list(range(115, 120))


def test_align_to_previous_recovers_a_permuted_relabelling():
  rng = np.random.default_rng(0)
  k = 6
  previous = rng.integers(0, k, size=200).astype(np.int32)
  perm = rng.permutation(k)
  new = perm[previous].astype(np.int32)  # the same partition, arbitrary ids
  np.testing.assert_array_equal(pid_ssl.align_to_previous(new, previous, k), previous)
  np.testing.assert_array_equal(pid_ssl.align_to_previous(new, None, k), new)


def test_align_to_previous_is_optimal_vs_brute_force():
  rng = np.random.default_rng(1)
  k = 5
  for _ in range(5):
    previous = rng.integers(0, k, size=60)
    # A noisy relabelling: 40% of the rows get a random id.
    new = np.where(rng.random(60) < 0.4, rng.integers(0, k, size=60),
                   rng.permutation(k)[previous])
    aligned = pid_ssl.align_to_previous(new.astype(np.int32), previous, k)
    # A relabelling: the same partition as `new` (a bijection of ids).
    pairs = set(zip(new.tolist(), aligned.tolist()))
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})
    best = max(np.sum(np.asarray(p)[new] == previous) for p in itertools.permutations(range(k)))
    assert np.sum(aligned == previous) == best


def _np_ce(logits, labels):
  logits = np.asarray(logits, np.float64)
  m = logits.max(-1, keepdims=True)
  lse = (m + np.log(np.exp(logits - m).sum(-1, keepdims=True)))[..., 0]
  return lse - np.take_along_axis(logits, labels[None, :, None], -1)[..., 0]


def test_unique_information_loss_matches_numpy():
  k1, k2 = jax.random.split(jax.random.key(0))
  logits = 3.0 * jax.random.normal(k1, (2, 32, 7))
  labels = jax.random.randint(k2, (32,), 0, 7)
  loss, aux = pid_ssl.unique_information_loss(logits, labels)
  lg, y = np.asarray(logits), np.asarray(labels)
  want = _np_ce(lg, y).mean(axis=1).sum()  # Σ_v mean_n CE
  np.testing.assert_allclose(float(loss), want, rtol=1e-5)
  np.testing.assert_allclose(float(aux["agreement"]), np.mean(lg.argmax(-1) == y[None]),
                             rtol=1e-6)


def test_unique_information_loss_sharded_equals_global():
  from jax.sharding import PartitionSpec as P
  from ssljax import parallel
  logits = jax.random.normal(jax.random.key(0), (2, 32, 5))
  labels = jnp.arange(32) % 5
  mesh = parallel.make_data_mesh()
  f = jax.shard_map(lambda lg, y: pid_ssl.unique_information_loss(lg, y, axis_name="data"),
                    mesh=mesh, in_specs=(P(None, "data"), P("data")), out_specs=P())
  (l_sh, a_sh), (l_gl, a_gl) = f(logits, labels), pid_ssl.unique_information_loss(logits, labels)
  np.testing.assert_allclose(float(l_sh), float(l_gl), rtol=1e-6)
  np.testing.assert_allclose(float(a_sh["agreement"]), float(a_gl["agreement"]), rtol=1e-6)


def test_unique_information_loss_rejects_bad_shapes():
  with pytest.raises(ValueError, match=r"\[V, N, K\]"):
    pid_ssl.unique_information_loss(jnp.zeros((32, 5)), jnp.zeros(32, jnp.int32))
  with pytest.raises(ValueError, match=r"pseudo_labels \[N\]"):
    pid_ssl.unique_information_loss(jnp.zeros((2, 32, 5)), jnp.zeros(16, jnp.int32))
