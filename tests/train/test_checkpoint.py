"""Orbax checkpoints of the train state and the data-iterator state (ssljax.train.checkpoint)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.train.checkpoint import Checkpointer
from ssljax.train.state import TrainState


def abstract_like(tree):
  """ShapeDtypeStructs (with shardings) of ``tree``: the restore target."""
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree)


def _state(seed: int) -> TrainState:
  k = jax.random.split(jax.random.key(seed), 4)
  params = {"online": {"conv": {"kernel": jax.random.normal(k[0], (3, 3, 1, 4))},
                       "bn": {"scale": jnp.ones(4)}},
            "probe": {"kernel": jax.random.normal(k[1], (4, 10)), "bias": jnp.zeros(10)},
            "loss": {}}
  return TrainState(step=jnp.asarray(seed, jnp.int32), params=params,
                    batch_stats={"bn": {"mean": jax.random.normal(k[2], (4,))}},
                    target_params={}, target_batch_stats={},
                    opt_state={"momentum": jax.random.normal(k[3], (3, 3, 1, 4))},
                    loss_state={"corinfomax": {"cov": jnp.eye(3)}},
                    nonfinite_steps=jnp.zeros((), jnp.int32))


def _assert_same(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("iterator_state", [
    b"\x00grain\xffiterator\nstate",                         # bytes (grain / tf.data)
    {"epoch": 3, "position": 17, "order": [2, 0, 1]},        # JSON-able
])
def test_save_restore_round_trip(tmp_path, iterator_state):
  ckpt = Checkpointer(str(tmp_path))
  assert ckpt.latest_step() is None
  state = _state(7)
  ckpt.save(7, state, iterator_state)
  ckpt.wait()
  assert ckpt.latest_step() == 7
  restored, it = ckpt.restore(7, abstract_like(state))
  _assert_same(restored, state)
  assert isinstance(restored, TrainState)
  assert it == iterator_state and type(it) is type(iterator_state)
  ckpt.close()


def test_keep_retains_the_latest_n(tmp_path):
  ckpt = Checkpointer(str(tmp_path), keep=2)
  for step in (1, 2, 3):
    ckpt.save(step, _state(step), {"step": step})
  ckpt.wait()
  assert ckpt.latest_step() == 3
  assert list(ckpt.manager.all_steps()) == [2, 3]
  for step in (2, 3):
    restored, it = ckpt.restore(step, abstract_like(_state(0)))
    _assert_same(restored, _state(step))
    assert it == {"step": step}
  ckpt.close()
  # A new Checkpointer on the same workdir (a resumed run) sees the same checkpoints.
  again = Checkpointer(str(tmp_path), keep=2)
  assert again.latest_step() == 3
  again.close()
