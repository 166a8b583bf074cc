"""Test utilities: the "N devices == 1 device" check used for every kernel.

`distributed_value_and_grad` evaluates a global-batch function three ways:

* ``'single'``: ``jax.value_and_grad`` on one device with the whole batch;
* ``'jit'``: ``jax.jit`` with batch-sharded inputs on an ``Auto`` ``('data',)``
  mesh (what the train step does);
* ``'shard_map'``: the function runs per device inside ``jax.shard_map`` with
  ``axis_name='data'`` and the gradient is taken *outside* (what a researcher
  with a hand-written loop does).

`assert_distributed_equivalence` checks that all three agree, which catches a
loss that forgets a collective, a wrong normaliser (local vs global N) and a
gradient scaled by the device count.
"""

from __future__ import annotations

import functools
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel


def _spec(batch_axis: Optional[int], ndim: int) -> P:
  if batch_axis is None:
    return P()
  parts = [None] * ndim
  parts[batch_axis] = parallel.DATA_AXIS
  return P(*parts)


def distributed_value_and_grad(fn: Callable[..., jax.Array], args: Sequence[jax.Array], *,
                               batch_axes: Sequence[Optional[int]], mode: str,
                               argnums=0, num_devices: Optional[int] = None):
  """Value and gradient of ``fn(*args, axis_name=...)`` computed in ``mode``.

  Args:
    fn: scalar function of ``args`` taking an ``axis_name`` keyword; with
      ``axis_name=None`` it must compute the global-batch value.
    args: arrays; ``batch_axes[i]`` is the batch axis of ``args[i]`` or ``None``
      for an argument that is replicated (hyper-parameters, PRNG keys, state).
    mode: ``'single'``, ``'jit'`` or ``'shard_map'``.
    argnums: differentiate with respect to these positions.
    num_devices: devices of the mesh (default: all).
  Returns:
    ``(value, grads)`` as NumPy arrays.
  """
  args = tuple(args)
  if mode == "single":
    dev = jax.devices()[0]
    args = jax.device_put(args, dev)
    out = jax.jit(jax.value_and_grad(functools.partial(fn, axis_name=None), argnums=argnums))(*args)
    return jax.tree.map(np.asarray, out)
  devices = jax.devices()[: (num_devices or len(jax.devices()))]
  mesh = parallel.make_data_mesh(devices)
  specs = tuple(jax.tree.map(lambda x, ax=ax: _spec(ax, np.ndim(x)), a)
                for ax, a in zip(batch_axes, args))
  for a, ax in zip(args, batch_axes):
    if ax is not None and hasattr(a, "shape"):
      parallel.check_divisible(a.shape[ax], len(devices), what="test batch")
  args = tuple(jax.device_put(a, jax.tree.map(lambda sp: NamedSharding(mesh, sp), s,
                                               is_leaf=lambda x: isinstance(x, P)))
               for a, s in zip(args, specs))
  if mode == "jit":
    f = functools.partial(fn, axis_name=None)
  elif mode == "shard_map":
    f = jax.shard_map(functools.partial(fn, axis_name=parallel.DATA_AXIS), mesh=mesh,
                      in_specs=specs, out_specs=P())
  else:
    raise ValueError(f"unknown mode {mode!r}; expected 'single', 'jit' or 'shard_map'")
  out = jax.jit(jax.value_and_grad(f, argnums=argnums))(*args)
  return jax.tree.map(np.asarray, out)


def assert_distributed_equivalence(fn, args, *, batch_axes, argnums=0, rtol=1e-5, atol=1e-6,
                                   modes=("jit", "shard_map"), num_devices=None):
  """Assert that value and gradient agree between one device and a sharded run."""
  if len(jax.devices()) < 2:
    raise RuntimeError(
        "distributed-equivalence checks need several devices; run the tests with "
        "XLA_FLAGS=--xla_force_host_platform_device_count=8 (the root conftest.py sets it).")
  ref_v, ref_g = distributed_value_and_grad(fn, args, batch_axes=batch_axes, mode="single",
                                            argnums=argnums)
  assert np.all(np.isfinite(ref_v)), "reference value is not finite"
  for mode in modes:
    v, g = distributed_value_and_grad(fn, args, batch_axes=batch_axes, mode=mode,
                                      argnums=argnums, num_devices=num_devices)
    np.testing.assert_allclose(v, ref_v, rtol=rtol, atol=atol, err_msg=f"value differs in {mode}")
    jax.tree.map(lambda a, b: np.testing.assert_allclose(
        a, b, rtol=rtol, atol=atol, err_msg=f"gradient differs in {mode}"), g, ref_g)
  return ref_v, ref_g


# ---------------------------------------------------------------------------
# Tiny end-to-end runs of the train-step factory (tests, multi-process checks).

TINY_NUM_CLASSES = 10


def tiny_train_config(terms, **model_overrides):
  """A seconds-sized config: 12×12 grayscale views, a 2-layer ConvNet, SGD."""
  from ssljax import config as config_lib
  c = config_lib.base_config()
  c.data.batch_size = 16
  c.data.image_size = 12
  c.data.augmentation = "fashion_mnist"
  c.data.num_classes = TINY_NUM_CLASSES
  c.model.encoder = "convnet"
  c.model.encoder_kwargs = {"widths": (4, 8)}
  c.model.projector_hidden = (16,)
  c.model.projector_dim = 8
  for k, v in model_overrides.items():
    c.model[k] = v
  c.loss.terms = terms
  c.optim.name = "sgd"
  c.optim.base_lr = 0.05
  c.optim.lr_scaling = "none"
  c.optim.warmup_epochs = 0.0
  return config_lib.finalize(c)


def synthetic_batches(num: int, batch: int, size: int = 14, seed: int = 0):
  """``num`` batches of random uint8 grayscale images [batch, size, size, 1] and labels."""
  rng = np.random.default_rng(seed)
  return [{"image": rng.integers(0, 256, (batch, size, size, 1), dtype=np.uint8),
           "label": rng.integers(0, TINY_NUM_CLASSES, (batch,)).astype(np.int32)}
          for _ in range(num)]


def synthetic_dataset(num_train: int):
  """A `DatasetInfo` for `synthetic_batches`: grayscale, TINY_NUM_CLASSES labels, mean 0.5, std 0.25."""
  from ssljax.data import datasets
  return datasets.DatasetInfo(
      name="synthetic", tfds_name=None, num_classes=TINY_NUM_CLASSES, image_shape=(14, 14, 1),
      mean=(0.5,), std=(0.25,), train_split="train", eval_split="test", num_train=num_train,
      num_eval=0, labeled_split="train", num_labeled=num_train, view_size=12)


def run_train_steps(config, devices, batches, *, loss_mode: str = "auto", total_steps: int = 10):
  """Runs the jitted train step over ``batches`` (global batches) on ``devices``.

  In a multi-process run, ``devices`` are the global devices and each process
  feeds its own rows of every global batch through
  ``jax.make_array_from_process_local_data``, as the train loop does.
  ``config.parallel.fsdp`` shards the state (`RunSetup.state_shardings`).
  Returns ``(host copy of the final state, list of losses)``.
  """
  from ssljax.train import setup as setup_lib
  with config.unlocked():
    config.parallel.loss_mode = loss_mode
  run = setup_lib.build(config, mesh=parallel.make_data_mesh(devices),
                        dataset=synthetic_dataset(total_steps * config.data.batch_size),
                        total_steps=total_steps)
  mesh = run.mesh
  state = run.init_state(jax.random.key(0))
  step = run.jitted_step()
  n_proc, pid = jax.process_count(), jax.process_index()
  losses = []
  for b in batches:
    rows = len(b["label"]) // n_proc
    local = {k: v[pid * rows:(pid + 1) * rows] for k, v in b.items()}
    gb = {k: jax.make_array_from_process_local_data(parallel.batch_sharding(mesh), v)
          for k, v in local.items()}
    state, metrics = step(state, gb, jax.random.key(1))
    losses.append(float(np.asarray(metrics["loss"].addressable_shards[0].data)))
  return jax.tree.map(to_host, state), losses


def objective_input_shapes(config, batch: int = 16) -> dict:
  """Shapes of the network outputs the objective receives in one train step on one device.

  E.g. ``{'projection': (V, N, D), 'embedding': (V, N, E), ...}``: what a
  view preset (multi-crop, ``data.num_views``) really feeds the loss.
  """
  from ssljax.train import objectives
  seen = {}
  original = objectives.Objective.__call__

  def spy(self, outs, *args, **kw):
    seen.update({k: v.shape for k, v in outs.items()})
    return original(self, outs, *args, **kw)

  objectives.Objective.__call__ = spy
  try:
    run_train_steps(config, jax.devices()[:1], synthetic_batches(1, batch), total_steps=1)
  finally:
    objectives.Objective.__call__ = original
  return seen


def to_host(x):
  """The whole global value of ``x`` as NumPy, on every process (FSDP-sharded arrays too)."""
  if not isinstance(x, jax.Array):
    return x
  if x.is_fully_replicated:
    return np.asarray(x.addressable_shards[0].data)
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def checkpoint_round_trip(loss_state: dict, directory: str):
  """Saves a TrainState holding ``loss_state`` with the run's Checkpointer and restores it.

  Returns the restored ``loss_state`` (tests of stateful losses: queues, EMA statistics).
  """
  from ssljax.train.checkpoint import Checkpointer
  from ssljax.train.state import TrainState
  state = TrainState(step=jnp.asarray(1, jnp.int32), params={"loss": {}}, batch_stats={},
                     target_params={}, target_batch_stats={}, opt_state={},
                     loss_state=loss_state, nonfinite_steps=jnp.zeros((), jnp.int32))
  ckpt = Checkpointer(directory)
  ckpt.save(1, state, {"epoch": 0})
  ckpt.wait()
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
                          state)
  restored, _ = ckpt.restore(1, abstract)
  ckpt.close()
  return restored.loss_state
