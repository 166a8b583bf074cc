"""Weighted k-nearest-neighbour classifier on frozen features, and top-k accuracy.

The kNN monitor of Wu et al. 2018, "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination" (InstDisc; weighted kNN evaluation),
as used by solo-learn (``solo/utils/knn.py``, ``WeightedKNNClassifier``,
cosine branch) and lightly (``lightly/utils/knn.py``, ``knn_predict``):

  s_ij  = <x_i / ||x_i||, t_j / ||t_j||>                     (cosine similarity)
  N_i   = indices of the k largest s_ij over the training set
  w_ij  = exp(s_ij / T)                                      (j ∈ N_i)
  score_ic = Σ_{j ∈ N_i} w_ij · [y_j = c]

and the prediction is ``argmax_c score_ic``. Neither reference normalises the
scores, so nor do we. Defaults k=200, T=0.1 are lightly's benchmark settings
(``lightly/benchmarks/imagenet/resnet50/knn_eval.py``); solo-learn's class defaults are
k=20, T=0.07. solo-learn also offers a Euclidean variant (weights
1/(d + eps)); only the cosine version is implemented here. solo-learn L2-
normalises features before they reach the classifier; here the kernel does it.

Memory is bounded by ``chunk_size × M`` similarities: the test rows are
processed in chunks by ``lax.map`` inside one jitted function.
"""

from __future__ import annotations

import functools
from typing import Optional, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from ssljax.ops import l2_normalize


@functools.partial(jax.jit, static_argnames=("num_classes", "k", "chunk_size"))
def _knn_scores(train_features, train_labels, test_features, temperature, *, num_classes, k,
                chunk_size):
  # float32 at least; float64 inputs stay float64 under jax.enable_x64.
  dtype = jnp.result_type(train_features.dtype, test_features.dtype, jnp.float32)
  train = l2_normalize(train_features.astype(dtype))
  test = l2_normalize(test_features.astype(dtype))
  n = test.shape[0]
  num_chunks = -(-n // chunk_size)
  pad = num_chunks * chunk_size - n
  test = jnp.pad(test, ((0, pad), (0, 0)))

  def chunk_scores(x):  # x: [chunk, F]
    # Full-precision matmul: TPU/GPU default precision could reorder close neighbours.
    sim = jnp.matmul(x, train.T, precision=lax.Precision.HIGHEST)  # [chunk, M]
    top_sim, top_idx = lax.top_k(sim, k)  # [chunk, k]
    weights = jnp.exp(top_sim / temperature.astype(dtype))
    one_hot = jax.nn.one_hot(train_labels[top_idx], num_classes, dtype=weights.dtype)
    return jnp.einsum("nk,nkc->nc", weights, one_hot)

  scores = lax.map(chunk_scores, test.reshape(num_chunks, chunk_size, -1))
  return scores.reshape(num_chunks * chunk_size, num_classes)[:n]


def knn_predict(train_features: jax.Array, train_labels: jax.Array, test_features: jax.Array,
                *, num_classes: int, k: int = 200, temperature: float = 0.1,
                chunk_size: int = 256) -> jax.Array:
  """Class scores of the weighted kNN classifier (InstDisc / solo-learn / lightly).

  ``score[i, c] = Σ_{j ∈ topk_i} exp(cos(test_i, train_j) / T) · [y_j = c]``.

  Args:
    train_features: memory bank ``[M, F]`` (any scale; rows are L2-normalised).
    train_labels: integer labels ``[M]`` in ``[0, num_classes)``.
    test_features: queries ``[N, F]``.
    num_classes: number of classes ``C``.
    k: neighbours per query (lightly's benchmarks: 200). Clipped to
      ``M`` when the memory bank is smaller.
    temperature: ``T`` of the ``exp(s / T)`` weights (default 0.1).
    chunk_size: test rows per chunk; peak memory is ``chunk_size × M`` floats.
      The result does not depend on it.
  Returns:
    scores ``[N, C]`` (float32, or float64 for float64 inputs); ``argmax``
    gives the prediction. Scores are differentiable in the features and in
    ``temperature`` (which may be a traced value, e.g. under ``jax.vmap``).

  Example (two well-separated classes):
    >>> import jax, jax.numpy as jnp
    >>> centres = 4.0 * jnp.eye(2)                          # class c points along axis c
    >>> train_y = jnp.arange(40) % 2
    >>> train_z = centres[train_y] + jax.random.normal(jax.random.key(0), (40, 2))
    >>> test_y = jnp.arange(10) % 2
    >>> test_z = centres[test_y] + jax.random.normal(jax.random.key(1), (10, 2))
    >>> scores = knn_predict(train_z, train_y, test_z, num_classes=2, k=5)
    >>> scores.shape
    (10, 2)
    >>> float(topk_accuracy(scores, test_y, ks=(1,))["top1"])
    1.0
  """
  if train_features.ndim != 2 or test_features.ndim != 2:
    raise ValueError(f"knn_predict expects train_features [M, F] and test_features [N, F], got "
                     f"{train_features.shape} and {test_features.shape}.")
  if train_features.shape[1] != test_features.shape[1]:
    raise ValueError(f"Feature dims differ: train {train_features.shape[1]} vs test "
                     f"{test_features.shape[1]}; embed both sets with the same encoder.")
  if train_labels.shape != (train_features.shape[0],):
    raise ValueError(f"train_labels must have shape [M]=({train_features.shape[0]},), got "
                     f"{train_labels.shape}.")
  if k < 1 or chunk_size < 1:
    raise ValueError(f"k and chunk_size must be >= 1, got k={k}, chunk_size={chunk_size}.")
  k = min(int(k), train_features.shape[0])
  chunk_size = min(int(chunk_size), max(test_features.shape[0], 1))
  return _knn_scores(jnp.asarray(train_features), jnp.asarray(train_labels, jnp.int32),
                     jnp.asarray(test_features), jnp.asarray(temperature),
                     num_classes=int(num_classes), k=k, chunk_size=chunk_size)


def topk_accuracy(scores: jax.Array, labels: jax.Array, ks: Sequence[int] = (1, 5),
                  mask: Optional[jax.Array] = None) -> dict[str, jax.Array]:
  """Top-k accuracies of class scores.

  A row counts as correct for ``k`` when its label is among its ``k`` highest
  scores (ties broken by ``lax.top_k``, i.e. the lower class index first).

  Args:
    scores: class scores or logits ``[N, C]``.
    labels: integer labels ``[N]``.
    ks: the ``k`` values; each is clipped to ``C``.
    mask: optional ``[N]`` weights (e.g. 0 for padding rows); accuracy is
      ``Σ mask · correct / Σ mask``.
  Returns:
    ``{'top1': acc, 'top5': acc, ...}`` as float32 scalars in [0, 1].
  """
  if scores.ndim != 2 or labels.shape != scores.shape[:1]:
    raise ValueError(f"topk_accuracy expects scores [N, C] and labels [N], got {scores.shape} "
                     f"and {labels.shape}.")
  if mask is not None and mask.shape != labels.shape:
    raise ValueError(f"mask must have shape {labels.shape}, got {mask.shape}.")
  num_classes = scores.shape[1]
  kmax = min(max(ks), num_classes)
  _, top = lax.top_k(scores, kmax)  # [N, kmax]
  hit = top == jnp.asarray(labels)[:, None]
  w = jnp.ones(labels.shape, jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
  out = {}
  for kk in ks:
    correct = jnp.any(hit[:, :min(kk, num_classes)], axis=1).astype(jnp.float32)
    out[f"top{kk}"] = jnp.sum(w * correct) / jnp.sum(w)
  return out
