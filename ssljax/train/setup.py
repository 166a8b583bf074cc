"""A config resolved once into a typed, frozen `RunSetup`.

`build(config)` is the one place where a config becomes the objects a run
needs: it validates every field (each enumerated field against the table it
selects from), fills the derived values (classes, steps, the PID-SSL ramp)
into `RunSetup` rather than into the locked config, and builds the network,
optimiser, objective and the pure train step. The loop, the tests, the
benchmarks and the notebook all start here::

    main → loop.train_and_evaluate → setup.build → step.make_train_step → jit
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import ml_collections
import optax
from jax.sharding import Mesh

from ssljax import config as config_lib
from ssljax import errors
from ssljax import parallel
from ssljax.data import crops
from ssljax.data import datasets
from ssljax.train import network as network_lib
from ssljax.train import objectives
from ssljax.train import optim
from ssljax.train import pid_ssl
from ssljax.train import step as step_lib
from ssljax.train.state import TrainState


@dataclasses.dataclass(frozen=True)
class RunSetup:
  """Everything a run needs, resolved from its config (nothing is written back).

  Attributes:
    config: the locked run config.
    mesh: the ``('data',)`` mesh over every device (batch, and the state under FSDP).
    dataset: the dataset's static description.
    num_classes: labels of the dataset (or ``config.data.num_classes`` if set).
    num_clusters: size of the classification head (PID-SSL / supervised), 0 if none.
    steps_per_epoch, total_steps: the run's length in optimiser steps.
    net: the `SSLNetwork`.
    tx, schedule: the optimiser and its learning-rate schedule (for logging).
    objective: the weighted sum of loss terms.
    train_step: the pure ``train_step(state, batch, rng) -> (state, metrics)``.
  """
  config: ml_collections.ConfigDict
  mesh: Mesh
  dataset: datasets.DatasetInfo
  num_classes: int
  num_clusters: int
  steps_per_epoch: int
  total_steps: int
  net: network_lib.SSLNetwork
  tx: optax.GradientTransformation
  schedule: optax.Schedule
  objective: objectives.Objective
  train_step: Callable

  @property
  def view_shape(self) -> tuple[int, int, int]:
    """Shape (H, W, C) of one augmented view."""
    size = self.config.data.image_size
    return (size, size, self.dataset.num_channels)

  def _init(self, rng: jax.Array) -> TrainState:
    return step_lib.init_train_state(self.config, self.net, self.tx, self.objective, rng,
                                     self.view_shape, num_classes=self.num_classes)

  def state_shardings(self) -> TrainState:
    """Sharding of every state leaf: replicated, or by `parallel.fsdp_spec` with ``parallel.fsdp``."""
    shapes = jax.eval_shape(self._init, jax.random.key(0))
    return parallel.state_shardings(shapes, self.mesh, fsdp=self.config.parallel.fsdp,
                                    min_size=self.config.parallel.fsdp_min_size)

  def init_state(self, rng: jax.Array) -> TrainState:
    """The initial train state, created directly in its sharded layout (`state_shardings`)."""
    return jax.jit(self._init, out_shardings=self.state_shardings())(rng)

  def abstract_state(self) -> TrainState:
    """Shapes, dtypes and shardings of the train state, without computing it (restores, AOT)."""
    shapes = jax.eval_shape(self._init, jax.random.key(0))
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        shapes, self.state_shardings())

  def replicated(self, tree):
    """``tree`` with every array replicated over the mesh (FSDP state → evaluation)."""
    if not self.config.parallel.fsdp:
      return tree
    return jax.device_put(tree, parallel.replicated_sharding(self.mesh))

  def jitted_step(self):
    """``train_step`` jitted with the state in `state_shardings`, the batch sharded on ``'data'``."""
    return step_lib.make_jitted_train_step(self.train_step, self.mesh, self.state_shardings())


def build(config: ml_collections.ConfigDict, *, mesh: Mesh | None = None,
          dataset: datasets.DatasetInfo | None = None,
          total_steps: int | None = None) -> RunSetup:
  """Resolves ``config`` into a `RunSetup`; raises ValueError naming any bad field.

  Args:
    config: a locked config from ``configs/``.
    mesh: the data mesh (default: every device); tests pass a smaller one. A
      ``('data',)`` mesh with ``Explicit`` axes runs as ``Auto``
      (`parallel.as_data_mesh`).
    dataset: overrides the registry entry of ``config.data.name`` (synthetic
      data in tests).
    total_steps: overrides the run length computed from the config.
  """
  config_lib.validate(config)
  mesh = parallel.make_data_mesh() if mesh is None else parallel.as_data_mesh(mesh)
  dataset = datasets.get_dataset_info(config.data.name) if dataset is None else dataset
  config_lib.choose(dict.fromkeys(crops.RESIZERS), config.data.host_resize,
                    "config.data.host_resize")
  if config.data.validation_holdout:
    if config.data.image_folder:
      raise errors.ConfigError("config.data.validation_holdout needs a TFDS or in-package source, "
                               "not data.image_folder (its records are in class order).")
    try:
      dataset = datasets.with_validation_holdout(dataset, config.data.validation_holdout)
    except ValueError as e:
      raise errors.ConfigError(str(e)) from None
  parallel.check_divisible(config.data.batch_size, mesh.size, what="config.data.batch_size")
  parallel.check_divisible(config.data.batch_size, jax.process_count(),
                           what="config.data.batch_size (per-process split)")
  num_classes = config.data.num_classes if config.data.num_classes > 0 else dataset.num_classes
  steps_per_epoch = max(dataset.num_train // config.data.batch_size, 1)
  if total_steps is None:
    total_steps = (config.total_steps if config.total_steps > 0
                   else max(int(round(config.num_epochs * steps_per_epoch)), 1))
  weight_fns = {}
  if config.pid.enabled:
    weight_fns[pid_ssl.TERM] = pid_ssl.alpha_schedule(config.pid, steps_per_epoch=steps_per_epoch,
                                                      total_steps=total_steps)
  objective = objectives.make_objective(config.loss.terms, weight_fns)
  num_clusters = network_lib.num_clusters(config, num_classes)
  net = network_lib.build_network(config.model, cluster_classes=num_clusters)
  tx, schedule = optim.make_train_optimizer(config, steps_per_epoch=steps_per_epoch,
                                            total_steps=total_steps)
  train_step = step_lib.make_train_step(config, net=net, tx=tx, objective=objective,
                                        num_classes=num_classes, mean=dataset.mean,
                                        std=dataset.std, total_steps=total_steps, mesh=mesh)
  return RunSetup(config=config, mesh=mesh, dataset=dataset, num_classes=num_classes,
                  num_clusters=num_clusters, steps_per_epoch=steps_per_epoch,
                  total_steps=total_steps, net=net, tx=tx, schedule=schedule,
                  objective=objective, train_step=train_step)
