"""The PID-SSL progressive-supervision pipeline (Mohamadi, Doretto & Adjeroh, arXiv 2412.02121).

Adds unique-information supervision to **any** baseline objective through the
config alone::

    L = L_ssl(z1, z2) + α(t)·[CE(g(h1), ŷ) + CE(g(h2), ŷ)]

* phase 1: the baseline alone for ``pid.warmup_epochs`` (α = 0);
* global clustering: k-means++ (`ssljax.pid.kmeans`, in JAX) with K =
  ``pid.num_clusters`` (default: number of classes) on L2-normalised backbone
  features h of the *un-augmented* training images, refreshed every
  ``pid.refresh_every_epochs``;
* phase 2: each view is supervised on its own by the cluster head g (a linear
  layer on h) — the term ``pid_unique`` — with α ramped from
  ``pid.alpha_start`` to ``pid.alpha_end``.

What the paper settles and what is ours (``docs/pid.md``; no official code
exists): 100 warm-up epochs, refresh every 100, K = classes and the α
endpoints 1e-5 → 1e-1 come from a third-party summary of the paper; the geometric ramp shape, clustering h (not z), a linear head and
Hungarian matching of new cluster ids to the previous assignment (so the head
keeps its meaning across refreshes, instead of re-initialising it) are our
documented choices.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy import optimize

from ssljax import config as config_lib
from ssljax import errors
from ssljax import parallel
from ssljax import pid

TERM = "pid_unique"


# config.pid.ramp -> α as a function of the ramp progress u ∈ [0, 1].
RAMPS = {
    "geometric": lambda u, a0, a1: jnp.exp(math.log(a0) + u * (math.log(a1) - math.log(a0))),
    "linear": lambda u, a0, a1: a0 + u * (a1 - a0),
    "cosine": lambda u, a0, a1: a1 + 0.5 * (a0 - a1) * (1.0 + jnp.cos(jnp.pi * u)),
    "constant": lambda u, a0, a1: jnp.full_like(u, a1),
}


def alpha_schedule(pid_cfg, *, steps_per_epoch: int, total_steps: int):
  """α(step): 0 during warm-up, then a ramp from alpha_start to alpha_end.

  ``pid.ramp`` (`RAMPS`): ``'geometric'`` (log-linear, default), ``'linear'``,
  ``'cosine'`` or ``'constant'`` (alpha_end right after warm-up). The ramp
  lasts ``pid.ramp_epochs`` (default: the rest of training).
  """
  ramp_fn = config_lib.choose(RAMPS, pid_cfg.ramp, "config.pid.ramp")
  warm = int(round(pid_cfg.warmup_epochs * steps_per_epoch))
  ramp = (int(round(pid_cfg.ramp_epochs * steps_per_epoch)) if pid_cfg.ramp_epochs > 0
          else max(total_steps - warm, 1))
  a0, a1 = float(pid_cfg.alpha_start), float(pid_cfg.alpha_end)
  if pid_cfg.ramp == "geometric" and (a0 <= 0 or a1 <= 0):
    raise errors.ConfigError("config.pid.ramp='geometric' needs alpha_start > 0 and "
                             "alpha_end > 0")

  def alpha(step):
    u = jnp.clip((step - warm) / max(ramp, 1), 0.0, 1.0)
    return jnp.where(step >= warm, ramp_fn(u, a0, a1), 0.0)

  return alpha


def refresh_steps(pid_cfg, *, steps_per_epoch: int, total_steps: int) -> list[int]:
  """Steps at which the pseudo-labels are (re)computed: warm-up end, then every R epochs."""
  warm = int(round(pid_cfg.warmup_epochs * steps_per_epoch))
  every = max(int(round(pid_cfg.refresh_every_epochs * steps_per_epoch)), 1)
  return list(range(warm, total_steps, every))


def unique_information_loss(cluster_logits: jax.Array, pseudo_labels: jax.Array, *,
                            axis_name: str | None = None):
  """Σ_v CE(g(h_v), ŷ): each view supervised on its own by the pseudo-labels.

  Args:
    cluster_logits: ``[V, N, K]`` cluster-head logits of every view.
    pseudo_labels: ``[N]`` int cluster ids (the same target for every view).
    axis_name: batch axis for ``shard_map`` (global mean over N).
  Returns:
    ``(loss, aux)`` with the head's agreement with the pseudo-labels.
  """
  if cluster_logits.ndim != 3 or pseudo_labels.shape != cluster_logits.shape[1:2]:
    raise ValueError(f"expected cluster_logits [V, N, K] and pseudo_labels [N]; got "
                     f"{cluster_logits.shape} and {pseudo_labels.shape}")
  ce = jax.vmap(lambda lg: optax.softmax_cross_entropy_with_integer_labels(lg, pseudo_labels))(
      cluster_logits)  # [V, N]
  loss = jnp.sum(parallel.batch_mean(ce, axis_name, axis=1))
  agree = parallel.batch_mean(jnp.argmax(cluster_logits, -1) == pseudo_labels[None], axis_name,
                              axis=1)
  return loss, {"agreement": jnp.mean(agree)}


def align_to_previous(new: np.ndarray, previous: np.ndarray | None, k: int) -> np.ndarray:
  """Relabels cluster ids of ``new`` to best match ``previous`` (Hungarian matching).

  k-means ids are arbitrary; without matching, a refresh would permute the
  cluster head's targets. Maximises Σ_j confusion[perm(j), j].
  """
  if previous is None:
    return new
  confusion = np.zeros((k, k), np.int64)
  np.add.at(confusion, (new, previous), 1)
  rows, cols = optimize.linear_sum_assignment(-confusion)
  mapping = np.empty(k, np.int64)
  mapping[rows] = cols
  return mapping[new].astype(np.int32)


def cluster_features(features: np.ndarray, k: int, *, seed: int, iters: int,
                     mesh=None) -> np.ndarray:
  """k-means++ / Lloyd (JAX) on L2-normalised features → int32 ids [N].

  With a ``mesh`` whose size divides N, the rows are sharded over it and the
  partitioner reduces the per-cluster sums across devices (large datasets).
  """
  x = np.asarray(features, np.float32)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  if mesh is not None and len(x) % mesh.size == 0:
    x = jax.device_put(x, parallel.batch_sharding(mesh))

  @jax.jit
  def run(x, key):
    res = pid.kmeans(x, k, key=key, max_iters=iters)
    return pid.kmeans_assign(x, res.centroids)

  return np.asarray(jax.device_get(run(x, jax.random.key(seed)))).astype(np.int32)
