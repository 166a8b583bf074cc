"""Tests for ssljax.losses.swav against an independent float64 NumPy SwAV.

The reference transcribes official ``facebookresearch/swav`` ``main_swav.py``
(``distributed_sinkhorn`` with one process, and the swapped-prediction loop of
``train`` including the queue). Float32 tolerance: scores lie in [−1, 1], so
``exp(s / 0.05)`` spans e^±20 and the codes agree with float64 to ~1e-6
relative; 1e-5 hides no wrong normaliser (a B vs B − 1 or V vs V − 1 slip is
≥ 1/8 here).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel
from ssljax.losses import swav
from ssljax.testing import assert_distributed_equivalence

F32_RTOL = 1e-5


# ---------------------------------------------------------------- reference
def np_sinkhorn(out, epsilon=0.05, iters=3, world_size=1):
  """Official ``distributed_sinkhorn(out)`` (main_swav.py), Q is K x B there; returns [B, K]."""
  q = np.exp(np.asarray(out, np.float64) / epsilon).T
  b = q.shape[1] * world_size
  k = q.shape[0]
  q /= np.sum(q)
  for _ in range(iters):
    q /= np.sum(q, axis=1, keepdims=True)
    q /= k
    q /= np.sum(q, axis=0, keepdims=True)
    q /= b
  q *= b
  return q.T


def _np_normalize(x):
  x = np.asarray(x, np.float64)
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def np_swav_codes(views, prototypes, *, num_global=2, epsilon=0.05, iters=3, queue=None):
  """The codes q_i of the global crops (official ``train``: ``distributed_sinkhorn(out)[-bs:]``)."""
  z, c = _np_normalize(views), _np_normalize(prototypes)
  n = z.shape[1]
  codes = []
  for i in range(num_global):
    out = z[i] @ c.T
    if queue is not None:
      out = np.concatenate([np.asarray(queue[i], np.float64) @ c.T, out])
    codes.append(np_sinkhorn(out, epsilon, iters)[-n:])
  return np.stack(codes)


def np_swav_loss(views, prototypes, codes, *, temperature=0.1):
  """Official swapped prediction given the codes (float64)."""
  z, c = _np_normalize(views), _np_normalize(prototypes)
  v_all = z.shape[0]
  loss = 0.0
  for i, q in enumerate(codes):
    subloss = 0.0
    for v in np.delete(np.arange(v_all), i):
      x = z[v] @ c.T / temperature
      log_p = x - np.max(x, 1, keepdims=True)
      log_p = log_p - np.log(np.sum(np.exp(log_p), 1, keepdims=True))
      subloss -= np.mean(np.sum(q * log_p, axis=1))
    loss += subloss / (v_all - 1)
  return loss / len(codes)


def _inputs(v=4, n=16, d=8, k=10, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(v, n, d)).astype(dtype), rng.normal(size=(k, d)).astype(dtype)


def _rel(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / np.max(np.abs(b)))


# ---------------------------------------------------------------- sinkhorn
@pytest.mark.parametrize("n,k,iters", [(16, 10, 3), (32, 5, 3), (8, 30, 1), (24, 12, 10)])
def test_sinkhorn_matches_official_transcription(n, k, iters):
  rng = np.random.default_rng(n + k)
  scores = np.tanh(rng.normal(size=(n, k))).astype(np.float32)   # cosine-like range
  q = jax.jit(functools.partial(swav.sinkhorn, num_iters=iters))(scores)
  ref = np_sinkhorn(scores, 0.05, iters)
  assert _rel(q, ref) < F32_RTOL
  with jax.enable_x64(True):
    q64 = swav.sinkhorn(jnp.asarray(scores, jnp.float64), num_iters=iters)
    assert q64.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(q64), ref, rtol=1e-12, atol=1e-300)


def test_sinkhorn_marginals():
  rng = np.random.default_rng(1)
  n, k = 24, 6
  scores = np.tanh(rng.normal(size=(n, k))).astype(np.float32)
  q = np.asarray(swav.sinkhorn(scores, num_iters=3), np.float64)
  # Official normalisation: the last step makes every sample's code sum to 1 exactly ...
  np.testing.assert_allclose(q.sum(1), np.ones(n), rtol=1e-6)
  # ... and the prototype marginals approach B/K (equipartition) as iterations grow.
  q_many = np.asarray(swav.sinkhorn(scores, epsilon=0.5, num_iters=200), np.float64)
  np.testing.assert_allclose(q_many.sum(0), np.full(k, n / k), rtol=1e-4)
  np.testing.assert_allclose(q_many.sum(1), np.ones(n), rtol=1e-6)


def test_sinkhorn_bf16_input_runs_in_float32_and_is_stop_gradient():
  scores = jnp.tanh(jax.random.normal(jax.random.key(0), (16, 10)))
  q16 = swav.sinkhorn(scores.astype(jnp.bfloat16))
  assert q16.dtype == jnp.float32
  # Same as float32 on the bf16-rounded scores: the algorithm itself ran in float32.
  ref = np_sinkhorn(np.asarray(scores.astype(jnp.bfloat16).astype(jnp.float32)))
  assert _rel(q16, ref) < F32_RTOL
  g = jax.grad(lambda s: jnp.sum(swav.sinkhorn(s) * jnp.arange(10.0)))(scores)
  assert np.all(np.asarray(g) == 0.0)


def test_sinkhorn_eight_devices_equal_one():
  scores = jnp.tanh(jax.random.normal(jax.random.key(2), (32, 12)))
  ref = swav.sinkhorn(scores)
  mesh = parallel.make_data_mesh()
  assert len(mesh.devices) == 8
  sharded = jax.device_put(scores, NamedSharding(mesh, P("data")))
  got_jit = jax.jit(swav.sinkhorn)(sharded)
  got_sm = jax.jit(jax.shard_map(functools.partial(swav.sinkhorn, axis_name="data"), mesh=mesh,
                                 in_specs=P("data"), out_specs=P("data")))(sharded)
  for got in (got_jit, got_sm):
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- loss
_swav = jax.jit(swav.swav_loss, static_argnames=("num_global_views", "queue_size",
                                                  "sinkhorn_iters"))


@pytest.mark.parametrize("v,g,k", [(2, 2, 10), (4, 2, 10), (8, 2, 30), (3, 1, 7)])
def test_loss_value_matches_numpy(v, g, k):
  views, protos = _inputs(v=v, k=k, seed=v + k)
  loss, aux, state = _swav(views, prototypes=protos, num_global_views=g)
  codes = np_swav_codes(views, protos, num_global=g)
  ref = np_swav_loss(views, protos, codes)
  assert state is None
  assert abs(float(loss) - ref) / abs(ref) < F32_RTOL
  ent = np.mean(-np.sum(codes * np.log(codes), -1))
  np.testing.assert_allclose(float(aux["code_entropy"]), ent, rtol=1e-5)
  assert float(aux["queue_used"]) == 0.0


def test_gradient_matches_finite_differences_of_numpy_reference():
  """Gradient w.r.t. views and prototypes; the codes are constants (stop-gradient) in both."""
  views, protos = _inputs(v=4, n=8, d=5, k=6, seed=3, dtype=np.float64)
  codes = np_swav_codes(views, protos)
  with jax.enable_x64(True):
    gv, gc = jax.grad(lambda z, c: swav.swav_loss(z, prototypes=c)[0], argnums=(0, 1))(
        jnp.asarray(views), jnp.asarray(protos))
  h = 1e-6
  for x, g in ((views, gv), (protos, gc)):
    fd = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
      xp, xm = x.copy(), x.copy()
      xp[idx] += h
      xm[idx] -= h
      args_p = (xp, protos) if x is views else (views, xp)
      args_m = (xm, protos) if x is views else (views, xm)
      fd[idx] = (np_swav_loss(*args_p, codes) - np_swav_loss(*args_m, codes)) / (2 * h)
    np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)


def test_float32_gradient_matches_float64():
  views, protos = _inputs(v=6, n=16, d=8, k=12, seed=4)
  grad = jax.jit(jax.grad(lambda z, c: swav.swav_loss(z, prototypes=c)[0], argnums=(0, 1)))
  g32 = grad(views, protos)
  with jax.enable_x64(True):
    g64 = grad(jnp.asarray(views, jnp.float64), jnp.asarray(protos, jnp.float64))
  for a, b in zip(g32, g64):
    assert _rel(a, np.asarray(b)) < 1e-5


def test_queue_matches_numpy_and_follows_the_official_schedule():
  """Empty queue: codes from the batch only; full queue: queue rows prepended (official)."""
  n, d, k, qsize = 8, 6, 5, 16
  rng = np.random.default_rng(5)
  batches = [rng.normal(size=(3, n, d)).astype(np.float32) for _ in range(4)]
  protos = rng.normal(size=(k, d)).astype(np.float32)
  state, np_queue = None, np.zeros((2, qsize, d))
  for t, views in enumerate(batches):
    loss, aux, state = _swav(views, prototypes=protos, state=state, queue_size=qsize)
    full = t * n >= qsize               # official: last row non-zero
    codes = np_swav_codes(views, protos, queue=np_queue if full else None)
    ref = np_swav_loss(views, protos, codes)
    assert abs(float(loss) - ref) / abs(ref) < F32_RTOL, t
    assert float(aux["queue_used"]) == float(full)
    np_queue = np.concatenate([_np_normalize(views[:2]), np_queue], axis=1)[:, :qsize]
    np.testing.assert_allclose(np.asarray(state.queue), np_queue, rtol=1e-6, atol=1e-7)
    assert int(state.count) == min((t + 1) * n, qsize)


def test_input_errors():
  views, protos = _inputs()
  with pytest.raises(ValueError, match=r"prototypes must be \[K, D=8\]"):
    swav.swav_loss(views, prototypes=protos[:, :4])
  with pytest.raises(ValueError, match="num_global_views=5"):
    swav.swav_loss(views, prototypes=protos, num_global_views=5)
  with pytest.raises(ValueError, match="queue_size=0"):
    swav.swav_loss(views, prototypes=protos, state=swav.swav_init_state(8, 8))
  with pytest.raises(ValueError, match=r"expected \[num_global_views=2, queue_size=16"):
    swav.swav_loss(views, prototypes=protos, state=swav.swav_init_state(8, 8), queue_size=16)
  with pytest.raises(ValueError, match=r"\[V"):
    swav.swav_loss(views[0], prototypes=protos)


@pytest.mark.parametrize("case", ["identical", "zeros", "bf16"])
def test_collapse_gives_finite_loss_and_gradient(case):
  _, protos = _inputs(k=12)
  row = np.random.default_rng(6).normal(size=(8,)).astype(np.float32)
  views = np.broadcast_to(row, (4, 16, 8)).copy()
  if case == "zeros":
    views[:] = 0.0
  views = jnp.asarray(views)
  if case == "bf16":
    views, protos = views.astype(jnp.bfloat16), jnp.asarray(protos, jnp.bfloat16)
  loss, grads = jax.value_and_grad(
      lambda z, c: swav.swav_loss(z, prototypes=c, queue_size=32)[0], argnums=(0, 1))(
          views, protos)
  assert np.isfinite(float(loss))
  assert all(np.all(np.isfinite(np.asarray(g, np.float32))) for g in grads)


# ---------------------------------------------------------------- distributed
def _loss_fn(views, protos, queue, count, *, axis_name=None, out="loss"):
  state = swav.SwAVState(queue, count)
  loss, _, new = swav.swav_loss(views, prototypes=protos, state=state, queue_size=queue.shape[1],
                                axis_name=axis_name)
  return loss if out == "loss" else new


def _no_queue_fn(views, protos, *, axis_name=None):
  return swav.swav_loss(views, prototypes=protos, axis_name=axis_name)[0]


def test_distributed_equivalence_without_queue():
  views, protos = _inputs(v=5, n=32, d=8, k=12, seed=7)
  assert_distributed_equivalence(_no_queue_fn, (jnp.asarray(views), jnp.asarray(protos)),
                                 batch_axes=(1, None), argnums=(0, 1), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("filled", [False, True])
def test_distributed_equivalence_with_queue(filled):
  """Value, gradient (views and prototypes) and new queue: 1 device, jit on 8, shard_map on 8."""
  views, protos = _inputs(v=4, n=32, d=8, k=12, seed=8)
  qsize = 48
  queue = _np_normalize(np.random.default_rng(9).normal(size=(2, qsize, 8))).astype(np.float32)
  count = np.asarray(qsize if filled else 16, np.int32)
  args = (jnp.asarray(views), jnp.asarray(protos), jnp.asarray(queue), jnp.asarray(count))
  assert_distributed_equivalence(_loss_fn, args, batch_axes=(1, None, None, None),
                                 argnums=(0, 1), rtol=1e-5, atol=1e-7)
  ref = jax.jit(functools.partial(_loss_fn, out="state"))(*args)
  mesh = parallel.make_data_mesh()
  specs = (P(None, "data"), P(), P(), P())
  sharded = tuple(jax.device_put(a, NamedSharding(mesh, s)) for a, s in zip(args, specs))
  got_jit = jax.jit(functools.partial(_loss_fn, out="state"))(*sharded)
  got_sm = jax.jit(jax.shard_map(functools.partial(_loss_fn, out="state", axis_name="data"),
                                 mesh=mesh, in_specs=specs, out_specs=P()))(*sharded)
  for got in (got_jit, got_sm):
    np.testing.assert_allclose(np.asarray(got.queue), np.asarray(ref.queue), rtol=1e-6, atol=1e-7)
    assert int(got.count) == int(ref.count) == (qsize if filled else 48)
