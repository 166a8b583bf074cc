"""The one train-step factory.

`make_train_step(config, ...)` returns a pure ``train_step(state, batch, rng)
-> (state, metrics)`` that

1. augments the views on device (`ssljax.data.augment`),
2. runs the online network on every view (and the EMA target if configured),
3. evaluates the objective: a weighted sum of named loss terms from
   ``config.loss.terms`` (`ssljax.train.objectives`), on the *global* batch,
4. adds the online linear probe's loss on stop-gradient embeddings,
5. applies optax, updates the EMA target and the stateful loss statistics,
6. refuses updates whose loss, gradients or new state are not finite (the
   state is kept and ``nonfinite_steps`` counts them; the host loop stops the
   run with a clear error).

Data parallelism: the caller jits the step with parameters replicated (or
FSDP-sharded, ``config.parallel.fsdp``) and the batch sharded along
``('data',)`` on an ``Auto`` mesh (`make_jitted_train_step`).
Losses are written on global arrays and the partitioner inserts the
collectives; BatchNorm statistics are global. With
``config.parallel.loss_mode='shard_map'`` the objective instead runs per device
inside ``jax.shard_map`` with ``axis_name='data'`` (explicit ``psum`` /
``all_gather`` in the kernels); the gradient is taken outside the shard_map in
both modes, so it never scales with the device count.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax.sharding import AxisType, PartitionSpec as P

from ssljax import config as config_lib
from ssljax import errors
from ssljax import parallel
from ssljax.data import augment
from ssljax.train import network as network_lib
from ssljax.train import objectives
from ssljax.train import optim
from ssljax.train.state import TrainState


# config.model.target_init -> does the EMA target start as a copy of the online
# network (BYOL) or from its own initialisation (SSL-HSIC's code)?
_TARGET_INITS = {"copy": True, "independent": False}


def init_train_state(config, net, tx, objective: objectives.Objective, rng, image_shape, *,
                     num_classes: int) -> TrainState:
  """Initial state; ``image_shape`` is the augmented view shape (H, W, C)."""
  k_online, k_target, k_probe = jax.random.split(rng, 3)
  dummy = jnp.zeros((2, *image_shape), jnp.float32)
  variables = net.init(k_online, dummy, train=True)
  h = net.apply(variables, dummy, train=False)["embedding"]
  probe = network_lib.LinearProbe(num_classes)
  probe_params = probe.init(k_probe, h)["params"]
  loss_params, loss_state = objective.init(config.model.projector_dim)
  params = {"online": variables["params"], "probe": probe_params, "loss": loss_params}
  if config.model.use_target:
    # As in SSL-HSIC's code the target may start from its own init; BYOL copies.
    if config_lib.choose(_TARGET_INITS, config.model.target_init, "config.model.target_init"):
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
  return out, updates.get("batch_stats", {})  # {} for a network without BatchNorm (ViT)


def _stack_views(outputs: list[dict]) -> dict:
  return {k: jnp.stack([o[k] for o in outputs]) for k in outputs[0]}


def make_train_step(config: ml_collections.ConfigDict, *, net: network_lib.SSLNetwork,
                    tx: optax.GradientTransformation, objective: objectives.Objective,
                    num_classes: int, mean, std, total_steps: int, mesh):
  """Returns the pure ``train_step(state, batch, rng) -> (state, metrics)``.

  Args:
    config: the run config (``data``, ``model``, ``parallel``).
    net: the `SSLNetwork`.
    tx: the optimiser (`optim.make_train_optimizer`).
    objective: the loss (`objectives.make_objective`).
    num_classes: classes of the online probe.
    mean, std: per-channel normalisation constants of the dataset.
    total_steps: length of the run (for the target-EMA schedule).
    mesh: the data mesh (the ``shard_map`` loss mode runs on it).
  Batch: ``{'image': uint8 [B, H, W, C], 'label': int32 [B]}`` (+ optional
  ``'pseudo_label'`` int32 [B]); ``B`` is the global batch.
  """
  view_cfgs = view_configs(config.data)
  objective.check_outputs(available_outputs(config, net))
  wrap = config_lib.choose(LOSS_MODES, config.parallel.loss_mode, "config.parallel.loss_mode")
  loss = wrap(objective, mesh)
  use_target = config.model.use_target
  config_lib.choose(_TARGET_INITS, config.model.target_init, "config.model.target_init")
  config_lib.choose(optim.TARGET_EMA_SCHEDULES, config.model.target_ema_schedule,
                    "config.model.target_ema_schedule")

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
      ssl_loss, metrics, new_loss_state = loss(outs, params["loss"], state.loss_state, k_loss,
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
      tau = optim.target_ema_decay(state.step, total_steps, config.model.target_ema,
                                   end_decay=config.model.target_ema_end,
                                   schedule=config.model.target_ema_schedule)
      new_target = jax.tree.map(lambda t, o: tau * t + (1.0 - tau) * o, state.target_params,
                                new_params["online"])
      metrics["target_ema"] = tau

    candidate = state.replace(step=state.step + 1, params=new_params, batch_stats=new_bs,
                              target_params=new_target, target_batch_stats=new_target_bs,
                              opt_state=new_opt_state, loss_state=new_loss_state)
    # The update is accepted only if the loss, the gradients AND the new state
    # are finite (a finite gradient can still overflow a parameter); otherwise
    # the old state is kept, so a checkpoint never holds NaN/Inf, and counted.
    finite = jnp.isfinite(metrics["loss"]) & _all_finite(grads) & _all_finite(candidate)
    new_state = jax.tree.map(lambda n, o: jnp.where(finite, n, o), candidate, state)
    new_state = new_state.replace(step=state.step + 1,
                                  nonfinite_steps=state.nonfinite_steps + (~finite).astype(jnp.int32))
    metrics["grad_norm"] = optax.tree.norm(grads["online"])
    # A copy outside the donated state, so the host can check it one step late.
    metrics["nonfinite_steps"] = new_state.nonfinite_steps
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


def _plain_views(size):
  plain = augment.ViewConfig(output_size=size, crop_scale=None, flip_prob=0.0, jitter_prob=0.0,
                             grayscale_prob=0.0, blur_prob=0.0, solarize_prob=0.0)
  return plain, plain


# config.data.augmentation -> views(size): BYOL's asymmetric views, the lighter
# variant for small grayscale images, resize only (debugging, ablations), the
# light supervised augmentation (random pad-crop + flip), and
# the published recipes of `augment.PAPER_VIEW_PRESETS`.
VIEW_PRESETS = {
    "byol": augment.byol_view_configs,
    "fashion_mnist": lambda size: augment.byol_view_configs(size, dataset="fashion_mnist"),
    "none": _plain_views,
    "supervised": augment.supervised_view_configs,  # pad-2 random crop + flip (supervised row)
    **{name: (lambda size, name=name: augment.paper_view_configs(name, size))
       for name in augment.PAPER_VIEW_PRESETS},
    # SwAV's multi-crop (the 2 global crops first): ImageNet 2x224 + 6x96 (local
    # side 3/7 of the global one); small images (CIFAR 2x32 + 4x16, Fashion-MNIST
    # 2x28 + 4x14) 4 local crops at half the side.
    "multicrop": lambda size: augment.multicrop_view_configs(
        size, local_size=round(size * 96 / 224), num_local=6),
    "multicrop_small": lambda size: augment.multicrop_view_configs(
        size, local_size=size // 2, num_local=4),
}


def view_configs(data_cfg):
  """The augmentation of each view: ``VIEW_PRESETS[config.data.augmentation](image_size)``.

  ``config.data.num_views`` (when set) makes that many views of every image
  from a two-view preset, its two configs in turn (``(v1, v2, v1, v2)`` for
  4): W-MSE 4 (Ermolov et al. 2021, Sec. 5; official ``--num_samples 4``
  draws every view from the same transform, as the symmetric presets do).
  Each view has its own random key (`augment.augment_views`).
  ``config.data.crop_scale`` (when set) replaces the random-resized-crop area
  range of every view that crops (a multi-crop preset's local crops included).

  >>> import ml_collections
  >>> d = ml_collections.ConfigDict({"augmentation": "vicreg_cifar", "image_size": 32,
  ...                                "num_views": 4, "crop_scale": None})
  >>> len(view_configs(d)), len(set(view_configs(d)))     # 4 views, all the same recipe
  (4, 1)
  """
  preset = config_lib.choose(VIEW_PRESETS, data_cfg.augmentation, "config.data.augmentation")
  views = preset(data_cfg.image_size)
  num_views = data_cfg.get("num_views")
  if num_views is not None:
    if len(views) != 2 or num_views < 2:
      raise errors.ConfigError(
          f"config.data.num_views={num_views} needs a two-view preset and num_views >= 2; "
          f"config.data.augmentation={data_cfg.augmentation!r} makes {len(views)} views "
          "(multi-crop sets its own count: leave num_views unset).")
    views = tuple(views[v % 2] for v in range(num_views))
  scale = data_cfg.get("crop_scale")
  if scale is not None:
    lo, hi = (float(v) for v in scale)
    if not 0.0 < lo <= hi <= 1.0:
      raise errors.ConfigError(f"config.data.crop_scale={tuple(scale)} must be (lo, hi) with "
                               "0 < lo <= hi <= 1 (fractions of the image area).")
    views = tuple(v if v.crop_scale is None else dataclasses.replace(v, crop_scale=(lo, hi))
                  for v in views)
  return views


def _all_finite(tree) -> jax.Array:
  leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


def _shard_mapped(objective, mesh):
  """Runs ``objective`` per device with ``axis_name='data'``; grads stay outside."""
  def spec_for(key):
    if key in ("labels", "pseudo_labels"):
      return P(parallel.DATA_AXIS)
    return P(None, parallel.DATA_AXIS)  # [V, N, ...]

  def wrapped(outs, params, state, rng, step):
    f = jax.shard_map(functools.partial(objective, axis_name=parallel.DATA_AXIS), mesh=mesh,
                      in_specs=({k: spec_for(k) for k in outs}, P(), P(), P(), P()),
                      out_specs=P())
    return f(outs, params, state, rng, step)

  return wrapped


# config.parallel.loss_mode -> how the objective runs: on global arrays (XLA
# inserts the collectives) or per device with explicit collectives.
LOSS_MODES = {
    "auto": lambda objective, mesh: objective,
    "shard_map": _shard_mapped,
}


def _check_auto_inputs(args) -> None:
  """Refuses (at trace time) a step input typed on a mesh with Explicit axes.

  An array created under a user's ``jax.set_mesh`` of an ``Explicit`` mesh
  carries that mesh in its type, which no ``in_shardings`` changes; inside the
  step it would meet the ``Auto`` state and fail deep in a kernel.
  """
  for path, x in jax.tree_util.tree_leaves_with_path(args):
    axis_types = jax.typeof(x).sharding.mesh.axis_types
    if any(t != AxisType.Auto for t in axis_types):
      name = ("state", "batch", "rng")[path[0].idx] + jax.tree_util.keystr(path[1:])
      raise ValueError(
          f"train step input {name} is typed on a mesh with {axis_types} axes (made under "
          f"jax.set_mesh of an Explicit mesh?); create it outside that context or move it "
          f"with jax.device_put(x, parallel.replicated_sharding(run.mesh)) "
          f"(batch_sharding for the batch).")


def make_jitted_train_step(train_step, mesh, state_shardings=None):
  """jit with the state in ``state_shardings``, batch sharded on ``('data',)``, donated state.

  ``state_shardings`` (a TrainState of NamedShardings, default replicated) is
  both the input and the output layout, so an FSDP state stays sharded from
  step to step. With it, the step first constrains ``params`` and
  ``target_params`` to replicated (ZeRO-3: each sharded parameter is
  all-gathered where the network reads it, not the batch's activations); the
  transpose of that constraint reduces each gradient, and the sharded
  optimiser update keeps this device's slice — an all-reduce followed by a
  slice, which XLA's GPU/TPU pipelines turn into a reduce-scatter
  (``docs/distributed.md``, FSDP).
  """
  repl = parallel.replicated_sharding(mesh)
  layout_given = state_shardings is not None
  if not layout_given:
    state_shardings = repl

  def step(state, batch, rng):
    _check_auto_inputs((state, batch, rng))
    # Traced under the step's own Auto mesh whatever mesh the caller has set
    # (a `jax.set_mesh` of an Explicit mesh would otherwise clash with it).
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      if layout_given:
        state = state.replace(params=jax.lax.with_sharding_constraint(state.params, repl),
                              target_params=jax.lax.with_sharding_constraint(
                                  state.target_params, repl))
      return train_step(state, batch, rng)
  return jax.jit(step, in_shardings=(state_shardings, parallel.batch_sharding(mesh), repl),
                 out_shardings=(state_shardings, repl), donate_argnums=0)
