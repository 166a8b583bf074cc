"""Linear evaluation: an offline probe on frozen features and the online probe loss.

Offline probe ("linear evaluation protocol"). A softmax-regression classifier

  logits = normalize(x) @ W + b,   loss = mean_i CE(softmax(logits_i), y_i)

is trained with SGD + momentum on features held in memory. The recipe follows
the SSL-HSIC / BYOL evaluation (``deepmind/ssl_hsic`` ``ssl_hsic/eval_config.py``:
SGD, momentum 0.9, no Nesterov, no weight decay, cosine schedule) with
two simplifications that suit pre-computed features: there is no data
augmentation (features are computed once, on un-augmented images, whereas
SSL-HSIC re-encodes random crops and flips every step), and the weights are
the final ones (no Polyak EMA of the classifier). The same function trains the
raw-pixel baseline: it accepts any ``[M, F]`` features.

Feature normalisation (fitted on the training features and stored in the
returned ``LinearProbe`` so that ``linear_probe_predict`` applies the same map):

* ``'standardize'``: per-feature ``(x - mean) / std`` (constant features
  keep scale 1, as scikit-learn's ``StandardScaler``);
* ``'l2'``: rows divided by their L2 norm;
* ``None``: raw features.

Online probe. ``online_probe_loss`` is the stop-gradient classifier that
BYOL, SSL-HSIC (``ssl_hsic/experiment.py``) and solo-learn train jointly with the SSL objective to
monitor the representation: its gradient never reaches the encoder.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from ssljax import parallel
from ssljax.ops import l2_normalize

_NORMALIZE = ("standardize", "l2", None)
_SCHEDULES = ("cosine", "constant")


@struct.dataclass
class LinearProbe:
  """A trained linear classifier with its input normalisation.

  Attributes:
    kernel: weights ``[F, C]``.
    bias: ``[C]``.
    mean: per-feature offset ``[F]`` subtracted before ``kernel`` (0 unless
      ``normalize='standardize'``).
    scale: per-feature multiplier ``[F]`` (``1 / std`` for ``'standardize'``).
    normalize: ``'standardize'``, ``'l2'`` or ``None`` (static).
  """
  kernel: jax.Array
  bias: jax.Array
  mean: jax.Array
  scale: jax.Array
  normalize: Optional[str] = struct.field(pytree_node=False, default=None)


@functools.partial(jax.jit, static_argnames="normalize")
def _fit_normalization(x, *, normalize):
  """Per-feature ``(mean, scale)`` such that the probe sees ``(x - mean) * scale``."""
  if normalize != "standardize":
    return jnp.zeros(x.shape[1:], x.dtype), jnp.ones(x.shape[1:], x.dtype)
  mean = jnp.mean(x, axis=0)
  std = jnp.std(x, axis=0)
  # Exactly constant columns (e.g. border pixels) keep scale 1: a float32 std
  # threshold would mistake their rounding noise (~1e-7·|mean|) for signal.
  constant = jnp.all(x == x[:1], axis=0) | (std == 0)
  return mean, jnp.where(constant, 1.0, 1.0 / jnp.where(constant, 1.0, std))


@functools.partial(jax.jit, static_argnums=3)
def _apply_normalization(x, mean, scale, normalize):
  if normalize == "l2":
    x = l2_normalize(x)
  return (x - mean) * scale


def _check_features(features, what: str):
  if features.ndim != 2:
    raise ValueError(f"{what} must be a 2-D [N, F] array, got shape {features.shape}; flatten "
                     "images first, e.g. x.reshape(len(x), -1).")


def _softmax_ce(logits, labels):
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_linear_probe(train_features, train_labels, *, num_classes: int, epochs: int,
                       batch_size: int, learning_rate: float, momentum: float = 0.9,
                       nesterov: bool = False, weight_decay: float = 0.0,
                       schedule: str = "cosine", warmup_epochs: int = 0, seed: int = 0,
                       normalize: Optional[str] = "standardize") -> LinearProbe:
  """Train a softmax linear classifier on frozen features with minibatch SGD.

  Each epoch shuffles the training set (NumPy, seeded by ``seed``) and runs
  ``M // batch_size`` steps (the incomplete last batch is dropped; a different
  one every epoch) inside one jitted ``lax.scan``. Optimiser: ``optax.sgd``
  with momentum after an L2 term ``weight_decay · W`` added to the gradient of
  the kernel (PyTorch ``SGD(weight_decay=...)`` semantics; the bias is not
  decayed).

  Args:
    train_features: ``[M, F]`` features (NumPy or JAX, any float dtype).
    train_labels: integer labels ``[M]`` in ``[0, num_classes)``.
    num_classes: number of classes ``C``.
    epochs: passes over the training set.
    batch_size: examples per step; clipped to ``M``.
    learning_rate: peak learning rate.
    momentum: SGD momentum (0.9 in the SSL-HSIC / BYOL evaluation).
    nesterov: Nesterov momentum (off in SSL-HSIC / BYOL).
    weight_decay: L2 coefficient on the kernel (0 in SSL-HSIC / BYOL).
    schedule: ``'cosine'`` (decay to 0 over all steps) or ``'constant'``.
    warmup_epochs: linear warm-up from 0 (only with ``'cosine'``).
    seed: seed of the shuffling.
    normalize: ``'standardize'``, ``'l2'`` or ``None`` (see module docstring).
  Returns:
    a ``LinearProbe``; predict with ``linear_probe_predict(probe, features)``.

  Example (two linearly separable classes):
    >>> import jax, jax.numpy as jnp
    >>> from ssljax.evaluate import topk_accuracy
    >>> y = jnp.arange(64) % 2
    >>> z = jax.random.normal(jax.random.key(0), (64, 3)) + 3.0 * y[:, None]
    >>> probe = train_linear_probe(z, y, num_classes=2, epochs=5, batch_size=16,
    ...                            learning_rate=0.1)
    >>> linear_probe_predict(probe, z).shape
    (64, 2)
    >>> float(topk_accuracy(linear_probe_predict(probe, z), y, ks=(1,))["top1"])
    1.0
  """
  x = jnp.asarray(train_features, jnp.float32)
  y = jnp.asarray(train_labels, jnp.int32)
  _check_features(x, "train_features")
  if y.shape != x.shape[:1]:
    raise ValueError(f"train_labels must have shape [M]=({x.shape[0]},), got {y.shape}.")
  if normalize not in _NORMALIZE:
    raise ValueError(f"normalize must be one of {_NORMALIZE}, got {normalize!r}.")
  if schedule not in _SCHEDULES:
    raise ValueError(f"schedule must be one of {_SCHEDULES}, got {schedule!r}.")
  if epochs < 1 or batch_size < 1 or x.shape[0] < 1:
    raise ValueError(f"Need epochs >= 1, batch_size >= 1 and at least one example; got "
                     f"epochs={epochs}, batch_size={batch_size}, M={x.shape[0]}.")
  m, f = x.shape
  batch_size = min(int(batch_size), m)
  steps_per_epoch = m // batch_size
  total_steps = epochs * steps_per_epoch

  mean, scale = _fit_normalization(x, normalize=normalize)
  x = _apply_normalization(x, mean, scale, normalize)

  hparams = _SGDConfig(float(learning_rate), float(momentum), bool(nesterov), float(weight_decay),
                       schedule, int(warmup_epochs) * steps_per_epoch, max(total_steps, 1))
  params = {"kernel": jnp.zeros((f, num_classes), jnp.float32),
            "bias": jnp.zeros((num_classes,), jnp.float32)}
  opt_state = _make_sgd(hparams).init(params)
  # Shuffle on the host: deterministic across backends and nothing to compile.
  rng = np.random.default_rng(seed)
  for _ in range(epochs):
    idx = rng.permutation(m)[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)
    params, opt_state, _ = _run_epoch(params, opt_state, jnp.asarray(idx, jnp.int32), x, y,
                                      hparams=hparams)
  return LinearProbe(kernel=params["kernel"], bias=params["bias"], mean=mean, scale=scale,
                     normalize=normalize)


class _SGDConfig(NamedTuple):
  learning_rate: float
  momentum: float
  nesterov: bool
  weight_decay: float
  schedule: str
  warmup_steps: int
  total_steps: int


def _make_sgd(h: _SGDConfig) -> optax.GradientTransformation:
  if h.schedule == "cosine":
    lr = optax.warmup_cosine_decay_schedule(0.0, h.learning_rate, h.warmup_steps, h.total_steps)
  else:
    lr = h.learning_rate
  return optax.chain(
      optax.add_decayed_weights(h.weight_decay, mask={"kernel": True, "bias": False}),
      optax.sgd(lr, momentum=h.momentum or None, nesterov=h.nesterov))


# Module-level and keyed on hashable hyper-parameters, so repeated probes with
# the same recipe and shapes (e.g. one per checkpoint) compile once.
@functools.partial(jax.jit, static_argnames="hparams")
def _run_epoch(params, opt_state, batches, x, y, *, hparams: _SGDConfig):
  tx = _make_sgd(hparams)

  def loss_fn(p, xb, yb):
    return jnp.mean(_softmax_ce(xb @ p["kernel"] + p["bias"], yb))

  def step(carry, idx):
    p, s = carry
    loss, g = jax.value_and_grad(loss_fn)(p, x[idx], y[idx])
    updates, s = tx.update(g, s, p)
    return (optax.apply_updates(p, updates), s), loss

  (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
  return params, opt_state, losses


@jax.jit
def linear_probe_predict(probe: LinearProbe, features: jax.Array) -> jax.Array:
  """Logits ``[N, C]`` of a trained ``LinearProbe`` on ``features [N, F]``."""
  _check_features(features, "features")
  if features.shape[1] != probe.kernel.shape[0]:
    raise ValueError(f"features have {features.shape[1]} dims but the probe was trained on "
                     f"{probe.kernel.shape[0]}.")
  x = _apply_normalization(features.astype(jnp.float32), probe.mean, probe.scale, probe.normalize)
  return x @ probe.kernel + probe.bias


def init_online_probe(feature_dim: int, num_classes: int) -> dict[str, jax.Array]:
  """Zero-initialised parameters ``{'kernel': [F, C], 'bias': [C]}`` of the online probe.

  The problem is convex, so zero init is as good as a random one and is
  deterministic (solo-learn uses PyTorch's default ``nn.Linear`` init).
  """
  return {"kernel": jnp.zeros((feature_dim, num_classes), jnp.float32),
          "bias": jnp.zeros((num_classes,), jnp.float32)}


def online_probe_loss(params: dict[str, jax.Array], features: jax.Array, labels: jax.Array,
                      num_classes: int, *, axis_name: Optional[str] = None
                      ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Softmax cross-entropy of the online stop-gradient linear probe.

  ``loss = (1/N) Σ_i CE(softmax(sg(h_i) W + b), y_i)``, ``sg`` = stop-gradient,
  as the online classifier of BYOL / SSL-HSIC (``Experiment.loss_fn``: CE of a
  linear layer on ``stop_gradient(embedding of view 1)``) and solo-learn
  (``nn.Linear`` on ``feats.detach()``). Add it to the SSL loss: the encoder
  receives no gradient from it, the probe trains alongside.

  Args:
    params: ``{'kernel': [F, C], 'bias': [C]}`` (see ``init_online_probe``).
    features: encoder features ``[N, F]`` (gradient stopped here).
    labels: integer labels ``[N]``.
    num_classes: ``C``, checked against the kernel.
    axis_name: mapped batch axis inside ``shard_map`` (global means over it);
      ``None`` on the global batch.
  Returns:
    ``(loss, {'probe_loss': loss, 'probe_acc': top-1 accuracy})``.
  """
  _check_features(features, "features")
  if params["kernel"].shape != (features.shape[1], num_classes):
    raise ValueError(f"Probe kernel has shape {params['kernel'].shape}, expected "
                     f"({features.shape[1]}, {num_classes}) for these features and num_classes.")
  if labels.shape != features.shape[:1]:
    raise ValueError(f"labels must have shape [N]=({features.shape[0]},), got {labels.shape}.")
  h = jax.lax.stop_gradient(features).astype(jnp.float32)
  logits = h @ params["kernel"] + params["bias"]
  loss = parallel.batch_mean(_softmax_ce(logits, labels), axis_name)
  acc = parallel.batch_mean((jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32),
                            axis_name)
  return loss, {"probe_loss": loss, "probe_acc": jax.lax.stop_gradient(acc)}
