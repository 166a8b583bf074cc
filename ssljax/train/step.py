"""The one train-step factory.

`make_train_step(config, ...)` returns a pure ``train_step(state, batch, rng)
-> (state, metrics)`` that

1. augments the views on device (`ssljax.data.augment`),
2. runs the online network on every view (and the EMA target if configured),
3. evaluates the objective: a weighted sum of named loss terms from
   ``config.loss.terms`` (`ssljax.train.objectives`), on the *global* batch,
4. adds the online linear probe's loss on stop-gradient embeddings,
5. applies optax, updates the EMA target and the stateful loss statistics,
6. refuses non-finite updates (the state is kept and ``nonfinite_steps``
   counts them; the host loop stops the run with a clear error).

Data parallelism: the caller jits the step with parameters replicated and the
batch sharded along ``('data',)`` on an ``Auto`` mesh (`make_jitted_train_step`).
Losses are written on global arrays and the partitioner inserts the
collectives; BatchNorm statistics are global. With
``config.parallel.loss_mode='shard_map'`` the objective instead runs per device
inside ``jax.shard_map`` with ``axis_name='data'`` (explicit ``psum`` /
``all_gather`` in the kernels); the gradient is taken outside the shard_map in
both modes, so it never scales with the device count.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from ssljax import parallel
from ssljax.data import augment
from ssljax.train import network as network_lib
from ssljax.train import objectives
from ssljax.train import optim
from ssljax.train.state import TrainState


def _param_labels(params):
  return {k: jax.tree.map(lambda _: k, v) for k, v in params.items()}


def make_optimizer(config, *, steps_per_epoch: int, total_steps: int):
  """optax.multi_transform: SSL optimiser, probe optimiser, loss-parameter optimiser."""
  ssl_opt, schedule = optim.make_optimizer(config.optim, global_batch_size=config.data.batch_size,
                                           total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  probe_opt = optax.adamw(config.probe.learning_rate, weight_decay=config.probe.weight_decay)
  # SSL-HSIC trains its kernel scale with Adam(3e-4) apart from LARS (ssl_hsic/experiment.py).
  loss_opt = optax.adam(config.optim.get("loss_params_lr", 3e-4))
  tx = optax.multi_transform({"online": ssl_opt, "probe": probe_opt, "loss": loss_opt},
                             _param_labels)
  return tx, schedule


def init_train_state(config, net, tx, rng, image_shape, *, num_classes: int) -> TrainState:
  """Initial state; ``image_shape`` is the augmented view shape (H, W, C)."""
  k_online, k_target, k_probe = jax.random.split(rng, 3)
  dummy = jnp.zeros((2, *image_shape), jnp.float32)
  variables = net.init(k_online, dummy, train=True)
  h = net.apply(variables, dummy, train=False)["embedding"]
  probe = network_lib.LinearProbe(num_classes)
  probe_params = probe.init(k_probe, h)["params"]
  loss_params, loss_state = objectives.init_terms(config.loss.terms, config.model.projector_dim)
  params = {"online": variables["params"], "probe": probe_params, "loss": loss_params}
  if config.model.use_target:
    # As in SSL-HSIC's code the target may start from its own init; BYOL copies.
    if config.model.get("target_init", "copy") == "copy":
      target = variables
    else:
      target = net.init(k_target, dummy, train=True)
    target_params, target_bs = target["params"], target.get("batch_stats", {})
  else:
    target_params, target_bs = {}, {}
  return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                    batch_stats=variables.get("batch_stats", {}), target_params=target_params,
                    target_batch_stats=target_bs, opt_state=tx.init(params), loss_state=loss_state,
                    nonfinite_steps=jnp.zeros((), jnp.int32))


def _apply(net, params, batch_stats, x, *, project_only=False):
  out, updates = net.apply({"params": params, "batch_stats": batch_stats}, x, train=True,
                           project_only=project_only, mutable=["batch_stats"])
  return out, updates["batch_stats"]


def _stack_views(outputs: list[dict]) -> dict:
  return {k: jnp.stack([o[k] for o in outputs]) for k in outputs[0]}


def make_train_step(config: ml_collections.ConfigDict, net: network_lib.SSLNetwork,
                    tx: optax.GradientTransformation, *, mean, std, total_steps: int,
                    mesh=None, weight_fns: dict[str, Callable] | None = None):
  """Returns the pure ``train_step(state, batch, rng) -> (state, metrics)``.

  Args:
    config: the run config (``data``, ``model``, ``loss``, ``probe``, ``parallel``).
    net: the `SSLNetwork`.
    tx: the optimiser from `make_optimizer`.
    mean, std: per-channel normalisation constants of the dataset.
    total_steps: length of the run (for the target-EMA schedule).
    mesh: the data mesh; required when ``config.parallel.loss_mode='shard_map'``.
    weight_fns: optional step-dependent term weights (PID-SSL's α ramp).
  Batch: ``{'image': uint8 [B, H, W, C], 'label': int32 [B]}`` (+ optional
  ``'pseudo_label'`` int32 [B]); ``B`` is the global batch.
  """
  view_cfgs = view_configs(config.data)
  objectives.check_requirements(config.loss.terms.keys(), available_outputs(config, net))
  objective = objectives.make_objective(config.loss.terms, weight_fns)
  num_classes = config.data.num_classes
  use_target = config.model.use_target
  loss_mode = config.parallel.loss_mode
  if loss_mode == "shard_map":
    if mesh is None:
      raise ValueError("parallel.loss_mode='shard_map' needs the data mesh")
    objective = _shard_mapped(objective, mesh)
  elif loss_mode != "auto":
    raise ValueError(f"parallel.loss_mode={loss_mode!r}; expected 'auto' or 'shard_map'")

  def train_step(state: TrainState, batch, rng):
    rng = jax.random.fold_in(rng, state.step)
    k_aug, k_loss = jax.random.split(rng)
    xs = augment.augment_views(k_aug, batch["image"], view_cfgs, mean=mean, std=std)

    target_outs, new_target_bs = None, state.target_batch_stats
    if use_target:
      t = []
      for x in xs:
        o, new_target_bs = _apply(net, state.target_params, new_target_bs, x, project_only=True)
        t.append(o)
      target_outs = jax.lax.stop_gradient(_stack_views(t)["projection"])

    def loss_fn(params):
      outputs, bs = [], state.batch_stats
      for x in xs:
        o, bs = _apply(net, params["online"], bs, x)
        outputs.append(o)
      outs = _stack_views(outputs)
      if target_outs is not None:
        outs["target_projection"] = target_outs
      outs["labels"] = batch["label"]
      if "pseudo_label" in batch:
        outs["pseudo_labels"] = batch["pseudo_label"]
      ssl_loss, metrics, new_loss_state = objective(outs, params["loss"], state.loss_state, k_loss,
                                                    state.step)
      # Online linear probe on stop-gradient embeddings of the first view.
      logits = network_lib.LinearProbe(num_classes).apply(
          {"params": params["probe"]}, jax.lax.stop_gradient(outs["embedding"][0]))
      # Unlabelled examples (label < 0, e.g. STL-10's unlabelled split) do not train the probe.
      labelled = (batch["label"] >= 0).astype(jnp.float32)
      n_lab = jnp.maximum(labelled.sum(), 1.0)
      ce = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(batch["label"], 0))
      probe_loss = jnp.sum(ce * labelled) / n_lab
      metrics["probe/loss"] = probe_loss
      metrics["probe/accuracy"] = jnp.sum((jnp.argmax(logits, -1) == batch["label"]) * labelled) / n_lab
      metrics["loss"] = ssl_loss
      return ssl_loss + probe_loss, (metrics, bs, new_loss_state)

    grads, (metrics, new_bs, new_loss_state) = jax.grad(loss_fn, has_aux=True)(state.params)
    updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)

    new_target = state.target_params
    if use_target:
      tau = optim.target_ema_decay(state.step, total_steps, config.model.target_ema)
      new_target = jax.tree.map(lambda t, o: tau * t + (1.0 - tau) * o, state.target_params,
                                new_params["online"])
      metrics["target_ema"] = tau

    finite = jnp.isfinite(metrics["loss"]) & _all_finite(grads)
    candidate = state.replace(step=state.step + 1, params=new_params, batch_stats=new_bs,
                              target_params=new_target, target_batch_stats=new_target_bs,
                              opt_state=new_opt_state, loss_state=new_loss_state)
    # A non-finite step keeps the old state (so checkpoints never hold NaNs) and is counted.
    new_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), candidate, state)
    new_state = new_state.replace(step=state.step + 1,
                                  nonfinite_steps=state.nonfinite_steps + (~finite).astype(jnp.int32))
    metrics["grad_norm"] = optax.tree.norm(grads["online"])
    return new_state, metrics

  return train_step


def available_outputs(config, net) -> set[str]:
  """Names of the arrays the step hands to loss terms, given the config."""
  out = {"embedding", "projection", "labels"}
  if net.predictor_dim:
    out.add("prediction")
  if config.model.use_target:
    out.add("target_projection")
  if net.variance_head:
    out.add("logvar")
  if net.cluster_classes:
    out.add("cluster_logits")
  if config.pid.enabled:
    out.add("pseudo_labels")
  return out


def view_configs(data_cfg):
  """The augmentation of each view, from ``config.data.augmentation``.

  ``'byol'``: BYOL's asymmetric views; ``'fashion_mnist'``: the lighter variant
  for small grayscale images (`augment.byol_view_configs`); ``'none'``: resize
  only (for debugging and ablations); the published recipes of
  `augment.PAPER_VIEW_PRESETS` (``'cifar'``, ``'simclr'``, ``'vicreg_cifar'``,
  ``'vicreg_solo'``, ``'corinfomax'``; `augment.paper_view_configs`).
  """
  size, kind = data_cfg.image_size, data_cfg.augmentation
  if kind == "byol":
    return augment.byol_view_configs(size)
  if kind == "fashion_mnist":
    return augment.byol_view_configs(size, dataset="fashion_mnist")
  if kind == "none":
    plain = augment.ViewConfig(output_size=size, crop_scale=None, flip_prob=0.0, jitter_prob=0.0,
                               grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0)
    return plain, plain
  if kind in augment.PAPER_VIEW_PRESETS:
    return augment.paper_view_configs(kind, size)
  raise ValueError(f"config.data.augmentation={kind!r}; expected one of "
                   f"{['byol', 'fashion_mnist', 'none', *augment.PAPER_VIEW_PRESETS]}")


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _shard_mapped(objective, mesh):
  """Runs ``objective`` per device with ``axis_name='data'``; grads stay outside."""
  def spec_for(key, x):
    if key in ("labels", "pseudo_labels"):
      return P(parallel.DATA_AXIS)
    return P(None, parallel.DATA_AXIS)  # [V, N, ...]

  def wrapped(outs, params, state, rng, step, *, axis_name=None):
    del axis_name
    out_specs_in = {k: spec_for(k, v) for k, v in outs.items()}
    f = jax.shard_map(functools.partial(objective, axis_name=parallel.DATA_AXIS), mesh=mesh,
                      in_specs=(out_specs_in, P(), P(), P(), P()), out_specs=P())
    return f(outs, params, state, rng, step)

  return wrapped


def make_jitted_train_step(train_step, mesh, state_sharding=None):
  """jit with replicated state, batch sharded on ``('data',)``, donated state."""
  repl = NamedSharding(mesh, P())
  data = parallel.batch_sharding(mesh)
  return jax.jit(train_step, in_shardings=(state_sharding or repl, data, repl),
                 out_shardings=(state_sharding or repl, repl), donate_argnums=0)
