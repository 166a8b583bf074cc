"""Objective = weighted sum of named loss terms, each a thin adapter over a kernel.

A config names its terms::

    config.loss.terms = {'vicreg': {'weight': 1.0, 'sim_coeff': 25.0}}

Every adapter has the signature::

    term(outs, params, state, rng, *, axis_name, **hparams) -> (loss, aux, new_state)

``outs`` holds the network outputs of all views stacked on a leading view axis
(``projection`` [V, N, D], ``prediction`` [V, N, D], ``target_projection``
[V, N, D], ``embedding`` [V, N, F], ...) and the batch ``labels`` /
``pseudo_labels`` [N]. ``params`` / ``state`` are the term's own learnable
parameters and statistics (e.g. SSL-HSIC's kernel scale, CorInfoMax's EMA
covariances). Adapters only route arrays; the mathematics lives in
`ssljax.losses` and is tested there. A new method is a kernel plus one adapter
registered here.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

Outs = Mapping[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class LossTerm:
  """A registered loss term.

  Attributes:
    fn: the adapter (signature in the module docstring).
    requires: keys of ``outs`` the term reads; the factory checks the network
      produces them and says which config field to set when it does not.
    init: ``init(projection_dim, hparams) -> (params, state)`` for terms with
      learnable parameters or running statistics.
    defaults: hyper-parameters accepted besides ``weight`` (with defaults).
  """
  fn: Callable[..., tuple[jax.Array, dict, Any]]
  requires: tuple[str, ...] = ("projection",)
  init: Callable[[int, dict], tuple[Any, Any]] | None = None
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)


REGISTRY: dict[str, LossTerm] = {}

# Where a missing output comes from, for error messages.
_HOW_TO_GET = {
    "prediction": "set config.model.predictor_dim (and predictor_hidden)",
    "target_projection": "set config.model.use_target=True",
    "logvar": "set config.model.variance_head=True",
    "cluster_logits": ("enable config.pid (the PID-SSL pipeline) or add the 'supervised' term "
                       "so the classification head exists"),
    "pseudo_labels": "enable config.pid so pseudo-labels are computed",
}


def register(name: str, term: LossTerm) -> None:
  if name in REGISTRY:
    raise ValueError(f"loss term {name!r} is already registered")
  REGISTRY[name] = term


def get_term(name: str) -> LossTerm:
  _ensure_builtin_terms()
  if name not in REGISTRY:
    raise ValueError(f"unknown loss term {name!r} in config.loss.terms; "
                     f"available terms: {sorted(REGISTRY)}")
  return REGISTRY[name]


def split_hparams(name: str, cfg: Mapping[str, Any]) -> tuple[float, dict]:
  """(weight, hparams) for term ``name`` with unknown keys rejected."""
  term = get_term(name)
  cfg = dict(cfg)
  weight = cfg.pop("weight", 1.0)
  unknown = set(cfg) - set(term.defaults)
  if unknown:
    raise ValueError(f"config.loss.terms.{name} has unknown keys {sorted(unknown)}; "
                     f"valid keys: ['weight'] + {sorted(term.defaults)}")
  return weight, {**term.defaults, **cfg}


def check_requirements(term_names, available) -> None:
  for name in term_names:
    for key in get_term(name).requires:
      if key not in available:
        raise ValueError(f"loss term {name!r} needs network output {key!r}: "
                         f"{_HOW_TO_GET.get(key, 'check the config')}")


def init_terms(terms_cfg: Mapping[str, Mapping[str, Any]], projection_dim: int):
  """Initial (params, state) dicts keyed by term name (terms without either are omitted)."""
  params, state = {}, {}
  for name, cfg in terms_cfg.items():
    term = get_term(name)
    if term.init is not None:
      _, hp = split_hparams(name, cfg)
      p, s = term.init(projection_dim, hp)
      if p is not None:
        params[name] = p
      if s is not None:
        state[name] = s
  return params, state


def make_objective(terms_cfg: Mapping[str, Mapping[str, Any]], weight_fns: Mapping[str, Callable] | None = None):
  """Returns ``objective(outs, params, state, rng, step, *, axis_name)``.

  The result is ``(total_loss, metrics, new_state)`` where metrics holds every
  term's raw value (``loss/<term>``) and its aux statistics
  (``loss/<term>/<key>``). ``weight_fns`` optionally maps a term to a
  step-dependent weight (e.g. PID-SSL's α(t) ramp).
  """
  parsed = {name: split_hparams(name, cfg) for name, cfg in terms_cfg.items()}
  weight_fns = dict(weight_fns or {})

  def objective(outs, params, state, rng, step, *, axis_name=None):
    total = 0.0
    metrics, new_state = {}, {}
    keys = jax.random.split(rng, max(len(parsed), 1))
    for key, (name, (weight, hp)) in zip(keys, sorted(parsed.items())):
      term = REGISTRY[name]
      value, aux, st = term.fn(outs, params.get(name), state.get(name), key,
                               axis_name=axis_name, **hp)
      w = weight_fns[name](step) * weight if name in weight_fns else weight
      total = total + w * value
      metrics[f"loss/{name}"] = value
      if name in weight_fns:
        metrics[f"loss/{name}/weight"] = jnp.asarray(w, jnp.float32)
      for k, v in (aux or {}).items():
        metrics[f"loss/{name}/{k}"] = v
      if st is not None:
        new_state[name] = st
    return total, metrics, new_state

  return objective


# ----------------------------------------------------------------------------
# Built-in terms. Registered lazily so that importing this module does not
# import every kernel (and a broken kernel names itself in the error).

_BUILTINS_REGISTERED = False


def _views(outs, key, n=2):
  x = outs[key]
  if x.shape[0] < n:
    raise ValueError(f"this loss term needs {n} views, got {x.shape[0]}")
  return x


def _ensure_builtin_terms():
  global _BUILTINS_REGISTERED
  if _BUILTINS_REGISTERED:
    return
  _BUILTINS_REGISTERED = True
  from ssljax.train import builtin_terms  # noqa: F401  (registers on import)
