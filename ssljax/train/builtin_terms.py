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

from ssljax.losses import barlow_twins, byol, entropy, simclr, superinfo, vicreg
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
