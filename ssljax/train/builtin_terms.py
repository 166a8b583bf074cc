"""Adapters that register every kernel of `ssljax.losses` as a loss term.

Each adapter picks its inputs from the stacked network outputs (see
`ssljax.train.objectives`) and forwards the config's hyper-parameters to the
kernel; accepted hyper-parameters and their defaults are read off the kernel's
signature, so the kernel docstring is the single source of truth.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp

from ssljax.losses import barlow_twins, byol, corinfomax, entropy, hsic, simclr, superinfo, vicreg
from ssljax.train import pid_ssl
from ssljax.train.objectives import LossTerm, register

_NOT_HPARAMS = {"axis_name", "key", "state"}


def _defaults(fn, exclude=()) -> dict:
  sig = inspect.signature(fn)
  return {n: p.default for n, p in sig.parameters.items()
          if p.kind == p.KEYWORD_ONLY and n not in _NOT_HPARAMS and n not in exclude}


def _stateless(kernel, pick, requires=("projection",), exclude=()):
  """A term calling ``kernel(*pick(outs), **hp)`` that has no params or state."""
  def fn(outs, params, state, rng, *, axis_name=None, **hp):
    del params, state, rng
    loss, aux = kernel(*pick(outs), axis_name=axis_name, **hp)
    return loss, aux, None
  return LossTerm(fn=fn, requires=tuple(requires), defaults=_defaults(kernel, exclude))


def _two_views(key):
  return lambda outs: (outs[key][0], outs[key][1])


register("simclr", LossTerm(
    fn=lambda outs, params, state, rng, *, axis_name=None, **hp: (
        *simclr.multiview_nt_xent_loss(outs["projection"], axis_name=axis_name, **hp), None),
    defaults=_defaults(simclr.multiview_nt_xent_loss)))

register("byol", _stateless(
    byol.byol_loss,
    lambda o: (o["prediction"][0], o["prediction"][1],
               o["target_projection"][0], o["target_projection"][1]),
    requires=("prediction", "target_projection")))

register("barlow_twins", _stateless(barlow_twins.barlow_twins_loss, _two_views("projection")))

register("vicreg", _stateless(vicreg.vicreg_loss, _two_views("projection")))


def _vicreg_entropy(outs, params, state, rng, *, axis_name=None, use_prediction=False, **hp):
  del params, state, rng
  if use_prediction:  # BYOL + entropy: online predictions against target projections.
    z1, z2 = outs["prediction"][0], outs["target_projection"][1]
  else:
    z1, z2 = outs["projection"][0], outs["projection"][1]
  loss, aux = entropy.vicreg_entropy_loss(z1, z2, axis_name=axis_name, **hp)
  return loss, aux, None


register("vicreg_entropy", LossTerm(
    fn=_vicreg_entropy, defaults={**_defaults(entropy.vicreg_entropy_loss), "use_prediction": False}))


def _superinfo(outs, params, state, rng, *, axis_name=None, **hp):
  del params, state, rng
  z = outs["projection"]
  lv = outs.get("logvar")
  loss, aux = superinfo.superinfo_loss(
      z[0], z[1], logvar1=None if lv is None else lv[0], logvar2=None if lv is None else lv[1],
      axis_name=axis_name, **hp)
  return loss, aux, None


register("superinfo", LossTerm(
    fn=_superinfo, defaults=_defaults(superinfo.superinfo_loss, exclude=("logvar1", "logvar2", "z1", "z2"))))


# CorInfoMax: the EMA means/covariances live in the train state (checkpointed).
def _corinfomax(outs, params, state, rng, *, axis_name=None, r_init=1.0, **hp):
  del params, rng, r_init
  z = outs["projection"]
  loss, (new_state, aux) = corinfomax.corinfomax_loss(z[0], z[1], state, axis_name=axis_name, **hp)
  return loss, aux, new_state


register("corinfomax", LossTerm(
    fn=_corinfomax,
    init=lambda dim, hp: (None, corinfomax.corinfomax_init_state(dim, r_init=hp["r_init"])),
    defaults={**_defaults(corinfomax.corinfomax_loss), "r_init": 1.0}))


# SSL-HSIC. With a target network the official step passes K = 4 views:
# online predictions of views 1 and 2, then stop-gradient target projections
# of views 2 and 1 (ssl_hsic/experiment.py); without one, the K = 2 online
# projections. The kernel scale is a learnable loss parameter trained only by
# the log-slope objective (its own Adam, `optim.loss_params_lr`).
def _ssl_hsic(outs, params, state, rng, *, axis_name=None, learn_scale=True,
              scale_num_samples=1024, scale=1.0, **hp):
  del state, scale  # `scale` is only the initial value; the live one is params["scale"].
  if "target_projection" in outs and "prediction" in outs:
    p, t = outs["prediction"], outs["target_projection"]
    views = jnp.stack([p[0], p[1], t[1], t[0]], axis=1)  # [B, K=4, D]
  else:
    views = jnp.moveaxis(outs["projection"], 0, 1)      # [B, V, D]
  k_loss, k_scale = jax.random.split(rng)
  scale = params["scale"]  # noqa: F841  (the learnable one)
  loss, aux = hsic.ssl_hsic_loss(views, k_loss, scale=scale, axis_name=axis_name, **hp)
  aux = dict(aux, kernel_scale=scale)
  if learn_scale:
    scale_obj = hsic.kernel_scale_objective(jax.lax.stop_gradient(views), k_scale, scale,
                                            num_samples=scale_num_samples, kernel=hp["kernel"],
                                            normalize=hp["normalize"], axis_name=axis_name)
    aux["scale_objective"] = scale_obj
    loss = loss + scale_obj - jax.lax.stop_gradient(scale_obj)  # value unchanged, gradient to scale
  return loss, aux, None


register("ssl_hsic", LossTerm(
    fn=_ssl_hsic,
    init=lambda dim, hp: ({"scale": jnp.asarray(hp["scale"], jnp.float32)}, None),
    defaults={**_defaults(hsic.ssl_hsic_loss), "learn_scale": True, "scale_num_samples": 1024}))


# PID-SSL's unique-information term (weight ramped by `pid_ssl.alpha_schedule`).
register(pid_ssl.TERM, LossTerm(
    fn=lambda outs, params, state, rng, *, axis_name=None: (
        *pid_ssl.unique_information_loss(outs["cluster_logits"], outs["pseudo_labels"],
                                         axis_name=axis_name), None),
    requires=("cluster_logits", "pseudo_labels")))


# Supervised upper bound (not SSL): every view's head g(h_v) trained with
# cross-entropy on the true labels; the same kernel as PID-SSL's term with
# labels in place of pseudo-labels. Needs labelled data (label >= 0).
register("supervised", LossTerm(
    fn=lambda outs, params, state, rng, *, axis_name=None: (
        *pid_ssl.unique_information_loss(outs["cluster_logits"], outs["labels"],
                                         axis_name=axis_name), None),
    requires=("cluster_logits", "labels")))
