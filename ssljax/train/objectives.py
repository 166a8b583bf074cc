"""The objective: a weighted sum of named loss terms, and the table of terms.

A config names its terms and their hyper-parameters::

    config.loss.terms = {'vicreg': {'weight': 1.0, 'sim_coeff': 25.0}}

Each entry of `TERMS` maps a name to a kernel of `ssljax.losses` (or
`ssljax.train.pid_ssl`) and the network outputs it reads. Kernels follow the
one contract of ``docs/kernels.md`` — ``kernel(views, ..., *, hparams,
axis_name) -> (loss, aux[, new_state])`` — so most entries are just
``Term(kernel, inputs)``: the accepted hyper-parameters and their defaults are
read off the kernel's keyword-only signature, a kernel with a ``state``
keyword gets its running statistics threaded through the train state, and one
with a ``key`` keyword gets a fresh PRNG key every step.

``outs`` holds the network outputs of all views stacked views first
(``projection`` / ``prediction`` / ``target_projection`` / ``logvar`` ``[V, N, D]``,
``embedding`` ``[V, N, F]``, ``cluster_logits`` ``[V, N, K]``) and the batch
``labels`` / ``pseudo_labels`` ``[N]``.

Adding a loss: write the kernel, add one `TERMS` entry, test the kernel, add
a config (``docs/kernels.md``).
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping

import jax
import jax.numpy as jnp

from ssljax import config as config_lib
from ssljax import errors
from ssljax import losses
from ssljax.train import pid_ssl

Outs = Mapping[str, jax.Array]
# (outs, params, state, key, hparams, axis_name) -> (loss, aux, new_state)
CallFn = Callable[[Outs, Any, Any, jax.Array, dict, Any], tuple[jax.Array, dict, Any]]

_NOT_HPARAMS = ("axis_name", "key", "state")


@dataclasses.dataclass(frozen=True)
class Term:
  """One loss term.

  Attributes:
    kernel: the loss kernel; its keyword-only parameters (but ``axis_name``,
      ``key``, ``state``) are the term's hyper-parameters, with their defaults.
    inputs: keys of ``outs`` passed positionally to the kernel.
    optional_inputs: ``{kernel keyword: outs key}`` passed when the network
      produces that output (e.g. SuperInfo's ``logvars``).
    array_keywords: kernel keywords that take arrays, not hyper-parameters
      (not settable from the config).
    extra_hparams: hyper-parameters of the term that are not kernel keywords
      (used by ``init`` or ``call``), with defaults.
    init: ``init(projection_dim, hparams) -> (params, state)`` for terms with
      learnable parameters or running statistics that need more than the
      kernel's ``state=None`` initialisation.
    call: glue for the few terms whose inputs are more than a list of outputs
      (signature `CallFn`, plus a ``step`` keyword — the train step, an int32
      scalar — if it declares one); ``None`` calls the kernel directly.
  """
  kernel: Callable[..., tuple]
  inputs: tuple[str, ...] = ("projection",)
  optional_inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)
  array_keywords: tuple[str, ...] = ()
  extra_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  init: Callable[[int, dict], tuple[Any, Any]] | None = None
  call: CallFn | None = None

  @property
  def hparams(self) -> dict[str, Any]:
    """Accepted hyper-parameters (besides ``weight``) and their defaults."""
    sig = inspect.signature(self.kernel)
    own = {n: p.default for n, p in sig.parameters.items()
           if p.kind == p.KEYWORD_ONLY and n not in _NOT_HPARAMS and n not in self.optional_inputs
           and n not in self.array_keywords}
    return {**own, **self.extra_hparams}

  @property
  def stateful(self) -> bool:
    return "state" in inspect.signature(self.kernel).parameters

  @property
  def needs_key(self) -> bool:
    return "key" in inspect.signature(self.kernel).parameters

  def __call__(self, outs, params, state, key, hp, axis_name, step=None):
    """``(loss, aux, new_state)`` of the term on ``outs`` at train step ``step``."""
    if self.call is not None:
      if "step" in inspect.signature(self.call).parameters:  # step-dependent glue (SwAV)
        return self.call(outs, params, state, key, hp, axis_name, step=step)
      return self.call(outs, params, state, key, hp, axis_name)
    kwargs = {k: outs[v] for k, v in self.optional_inputs.items() if v in outs}
    kwargs.update({k: v for k, v in hp.items() if k not in self.extra_hparams})
    if self.needs_key:
      kwargs["key"] = key
    if self.stateful:
      kwargs["state"] = state
    out = self.kernel(*(outs[k] for k in self.inputs), axis_name=axis_name, **kwargs)
    return out if self.stateful else (*out, None)


# ----------------------------------------------------------------------------
# Glue for the terms that read more than a list of outputs.

def _vicreg_entropy(outs, params, state, key, hp, axis_name):
  """With ``use_prediction`` (BYOL + entropy): view-1 prediction vs view-2 target projection."""
  del params, state, key
  hp = dict(hp)
  if hp.pop("use_prediction"):
    views = jnp.stack([outs["prediction"][0], outs["target_projection"][1]])
  else:
    views = outs["projection"]
  return (*losses.vicreg_entropy_loss(views, axis_name=axis_name, **hp), None)


def _ssl_hsic(outs, params, state, key, hp, axis_name):
  """SSL-HSIC with its learnable kernel scale (``params['scale']``).

  With a target network the official step passes K = 4 views: online
  predictions of views 1 and 2, then stop-gradient target projections of
  views 2 and 1 (``deepmind/ssl_hsic`` ``experiment.py``); without one, the
  K = 2 online projections. The scale is trained only by the log-slope
  objective (`losses.kernel_scale_objective`), through its own Adam.
  """
  del state
  hp = dict(hp)
  learn_scale, num_samples = hp.pop("learn_scale"), hp.pop("scale_num_samples")
  hp.pop("scale")  # only the initial value; the live one is params["scale"]
  if "target_projection" in outs and "prediction" in outs:
    p, t = outs["prediction"], outs["target_projection"]
    views = jnp.stack([p[0], p[1], t[1], t[0]])
  else:
    views = outs["projection"]
  k_loss, k_scale = jax.random.split(key)
  scale = params["scale"]
  loss, aux = losses.ssl_hsic_loss(views, key=k_loss, scale=scale, axis_name=axis_name, **hp)
  aux = dict(aux, kernel_scale=scale)
  if learn_scale:
    scale_obj = losses.kernel_scale_objective(
        jax.lax.stop_gradient(views), key=k_scale, scale=scale, num_samples=num_samples,
        kernel=hp["kernel"], normalize=hp["normalize"], axis_name=axis_name)
    aux["scale_objective"] = scale_obj
    loss = loss + scale_obj - jax.lax.stop_gradient(scale_obj)  # value unchanged, gradient to scale
  return loss, aux, None


def _ssl_hsic_init(projection_dim, hp):
  del projection_dim
  return {"scale": jnp.asarray(hp["scale"], jnp.float32)}, None


def _corinfomax_init(projection_dim, hp):
  return None, losses.corinfomax_init_state(projection_dim, r_init=hp["r_init"])


def _swav(outs, params, state, key, hp, axis_name, *, step):
  """SwAV on all crops' projections with the learnable ``params['prototypes']``.

  As official ``main_swav.py``: the prototypes get no gradient for the first
  ``freeze_prototypes_steps`` steps (``freeze_prototypes_niters``), and the
  queue starts filling at ``queue_start_steps`` (``epoch_queue_starts`` in
  steps): before that its state is kept empty.
  """
  del key
  hp = dict(hp)
  freeze, start = hp.pop("freeze_prototypes_steps"), hp.pop("queue_start_steps")
  hp.pop("num_prototypes")  # only the shape of params["prototypes"]
  protos = params["prototypes"]
  protos = jnp.where(step < freeze, jax.lax.stop_gradient(protos), protos)
  loss, aux, new_state = losses.swav_loss(outs["projection"], prototypes=protos, state=state,
                                          axis_name=axis_name, **hp)
  if new_state is not None:
    new_state = jax.tree.map(lambda new, old: jnp.where(step >= start, new, old), new_state, state)
  return loss, aux, new_state


def _swav_init(projection_dim, hp):
  # Official prototypes: nn.Linear(D, K) re-normalised every step, so only the
  # directions matter; a fixed key gives directions uniform on the sphere.
  protos = jax.random.normal(jax.random.key(0), (hp["num_prototypes"], projection_dim))
  state = None
  if hp["queue_size"]:
    state = losses.swav_init_state(hp["queue_size"], projection_dim,
                                   num_global_views=hp["num_global_views"])
  return {"prototypes": protos / jnp.linalg.norm(protos, axis=1, keepdims=True)}, state


def _moco_init(projection_dim, hp):
  # The official start: random unit keys (facebookresearch/moco builder.py), fixed seed.
  return None, losses.moco_init_state(projection_dim, queue_size=hp["queue_size"],
                                      symmetric=hp["symmetric"], key=jax.random.key(0))


def _nnclr_init(projection_dim, hp):
  return None, losses.nnclr_init_state(projection_dim, queue_size=hp["queue_size"])


# ----------------------------------------------------------------------------
# The table. Every name here is a valid key of config.loss.terms.

TERMS: dict[str, Term] = {
    "simclr": Term(losses.nt_xent_loss),
    "byol": Term(losses.byol_loss, inputs=("prediction", "target_projection")),
    "barlow_twins": Term(losses.barlow_twins_loss),
    "vicreg": Term(losses.vicreg_loss),
    "vicreg_entropy": Term(losses.vicreg_entropy_loss, extra_hparams={"use_prediction": False},
                           call=_vicreg_entropy),
    "superinfo": Term(losses.superinfo_loss, optional_inputs={"logvars": "logvar"},
                      array_keywords=("samples",)),
    # The EMA means/covariances live in the train state (checkpointed).
    "corinfomax": Term(losses.corinfomax_loss, extra_hparams={"r_init": 1.0},
                       init=_corinfomax_init),
    "ssl_hsic": Term(losses.ssl_hsic_loss,
                     extra_hparams={"learn_scale": True, "scale_num_samples": 1024},
                     init=_ssl_hsic_init, call=_ssl_hsic),
    # SwAV: prototypes are a learnable loss parameter; the optional queue is its state.
    "swav": Term(losses.swav_loss, array_keywords=("prototypes",),
                 extra_hparams={"num_prototypes": 3000, "freeze_prototypes_steps": 313,
                                "queue_start_steps": 0},
                 init=_swav_init, call=_swav),
    # MoCo: online queries vs momentum-encoder keys; the key queue lives in the train state.
    "moco": Term(losses.moco_loss, inputs=("projection", "target_projection"), init=_moco_init),
    # NNCLR: support-set neighbours of the projections vs the other view's predictions.
    "nnclr": Term(losses.nnclr_loss, inputs=("projection", "prediction"), init=_nnclr_init),
    # PID-SSL's unique-information term (weight ramped by `pid_ssl.alpha_schedule`).
    pid_ssl.TERM: Term(pid_ssl.unique_information_loss, inputs=("cluster_logits", "pseudo_labels")),
    # Objectives and regularisers usable alone or with any method, e.g. {'vicreg': {}, 'koleo': {'weight': 0.1}}.
    "wmse": Term(losses.wmse_loss),
    "alignment": Term(losses.alignment_loss),
    "uniformity": Term(losses.uniformity_loss),
    "koleo": Term(losses.koleo_loss),
    "mmcr": Term(losses.mmcr_loss),
    "sigreg": Term(losses.sigreg_loss),
    # Supervised reference (not SSL): the same kernel with the true labels.
    "supervised": Term(pid_ssl.unique_information_loss, inputs=("cluster_logits", "labels")),
}

# Where a missing network output comes from, for error messages.
_HOW_TO_GET = {
    "logvar": "set config.model.variance_head=True",
    "prediction": "set config.model.predictor_dim (and predictor_hidden)",
    "target_projection": "set config.model.use_target=True",
    "cluster_logits": ("enable config.pid (the PID-SSL pipeline) or add the 'supervised' term "
                       "so the classification head exists"),
    "pseudo_labels": "enable config.pid so pseudo-labels are computed",
}


def split_hparams(name: str, cfg: Mapping[str, Any]) -> tuple[float, dict]:
  """``(weight, hparams)`` of term ``name`` with defaults filled; unknown keys rejected."""
  term = config_lib.choose(TERMS, name, "config.loss.terms key")
  cfg = dict(cfg)
  weight = cfg.pop("weight", 1.0)
  unknown = set(cfg) - set(term.hparams)
  if unknown:
    raise errors.ConfigError(f"config.loss.terms.{name} has unknown keys {sorted(unknown)}; "
                     f"valid keys: ['weight'] + {sorted(term.hparams)}")
  _check_type(f"config.loss.terms.{name}.weight", weight, 1.0)
  for key, value in cfg.items():
    _check_type(f"config.loss.terms.{name}.{key}", value, term.hparams[key])
  return weight, {**term.hparams, **cfg}


def _check_type(field: str, value, default) -> None:
  """A number where a number belongs (and so on), checked before anything is traced."""
  def kind(x):
    if isinstance(x, bool):
      return "a boolean"
    if isinstance(x, (int, float)):
      return "a number"
    if isinstance(x, str):
      return "a string"
    return None
  expected = kind(default)
  if expected is not None and kind(value) != expected:
    raise errors.ConfigError(f"{field}={value!r} must be {expected} (like its default "
                             f"{default!r})")


@dataclasses.dataclass(frozen=True)
class Objective:
  """The weighted sum of the configured terms (build it with `make_objective`).

  Calling it: ``objective(outs, params, state, rng, step, *, axis_name=None)
  -> (total_loss, metrics, new_state)``, where ``metrics`` holds each term's
  value (``loss/<term>``), its aux (``loss/<term>/<key>``) and ramped weights.
  """
  terms: Mapping[str, tuple[float, dict]]        # name -> (weight, hparams)
  weight_fns: Mapping[str, Callable[[jax.Array], jax.Array]]

  def init(self, projection_dim: int) -> tuple[dict, dict]:
    """Initial learnable loss parameters and running statistics, keyed by term name."""
    params, state = {}, {}
    for name, (_, hp) in self.terms.items():
      init = TERMS[name].init
      if init is not None:
        p, s = init(projection_dim, hp)
        if p is not None:
          params[name] = p
        if s is not None:
          state[name] = s
    return params, state

  def required_outputs(self) -> dict[str, tuple[str, ...]]:
    return {name: TERMS[name].inputs for name in self.terms}

  def check_outputs(self, available) -> None:
    """Raises a ValueError naming the config field that makes a missing output exist."""
    for name, needed in self.required_outputs().items():
      for key in needed:
        if key not in available:
          raise errors.ConfigError(f"loss term {name!r} needs network output {key!r}: "
                           f"{_HOW_TO_GET.get(key, 'check the config')}")

  def __call__(self, outs, params, state, rng, step, *, axis_name=None):
    total = 0.0
    metrics, new_state = {}, {}
    keys = jax.random.split(rng, max(len(self.terms), 1))
    for key, name in zip(keys, sorted(self.terms)):
      weight, hp = self.terms[name]
      value, aux, st = TERMS[name](outs, params.get(name), state.get(name), key, hp, axis_name,
                                   step=step)
      if name in self.weight_fns:
        weight = self.weight_fns[name](step) * weight
        metrics[f"loss/{name}/weight"] = jnp.asarray(weight, jnp.float32)
      total = total + weight * value
      metrics[f"loss/{name}"] = value
      for k, v in (aux or {}).items():
        metrics[f"loss/{name}/{k}"] = v
      if st is not None:
        new_state[name] = st
    return total, metrics, new_state


def make_objective(terms_cfg: Mapping[str, Mapping[str, Any]],
                   weight_fns: Mapping[str, Callable] | None = None) -> Objective:
  """Validates ``config.loss.terms`` and returns the `Objective`.

  ``weight_fns`` optionally maps a term to a step-dependent weight factor
  (PID-SSL's α(t) ramp).
  """
  if not terms_cfg:
    raise errors.ConfigError("config.loss.terms is empty: name at least one loss term, e.g. "
                     "config.loss.terms = {'vicreg': {'weight': 1.0}}")
  terms = {name: split_hparams(name, cfg) for name, cfg in terms_cfg.items()}
  return Objective(terms=terms, weight_fns=dict(weight_fns or {}))
