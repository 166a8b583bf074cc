"""PID monitoring during training: how the label information of two views splits.

Every ``pid_monitor.every_steps`` the online encoder embeds two augmented views
of a fixed held-out batch (the first ``num_examples`` images of the eval
split, the same augmentation keys every time), and two estimators decompose
I(label; h₁, h₂) into redundancy, unique₁, unique₂ and synergy:

* ``pid/gauss/*`` — `ssljax.pid.gaussian_batch_pid`: each view projected to
  ``dim`` PCA dimensions, class-conditional Gaussian MMI PID, in **nats**;
* ``pid/disc/*`` — `ssljax.pid.discrete_batch_pid`: k-means symbols
  (``num_clusters`` per view), plug-in pmf, BROJA PID, in **bits**.

Both are biased estimators (finite N, projection/quantisation); compare runs
under the same monitor settings, not against absolute ground truth. This is
the analysis the PID-SSL paper argues from; ``experiments/plot_pid.py`` draws
the curves for several runs side by side.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ssljax import pid
from ssljax.data import augment, loader


class PIDMonitor:
  """Callable ``monitor(state) -> {metric: float}`` (same result on every process)."""

  def __init__(self, config, net, info, view_cfgs, *, num_classes: int):
    m = config.pid_monitor
    images, labels = _first_examples(config.data, info.eval_split, m.num_examples)
    self.images, self.labels = jnp.asarray(images), jnp.asarray(labels)
    self.num_classes = num_classes
    self.dim, self.k = m.dim, m.num_clusters
    mean, std = info.mean, info.std

    @jax.jit
    def embed_views(params, batch_stats, images, key):
      xs = augment.augment_views(key, images, view_cfgs[:2], mean=mean, std=std)
      return [net.apply({"params": params, "batch_stats": batch_stats}, x, train=False,
                        project_only=True)["embedding"] for x in xs]

    @jax.jit
    def estimate(h1, h2, labels, key):
      g = pid.gaussian_batch_pid(h1, h2, labels, num_classes=self.num_classes, dim=self.dim)
      d = pid.discrete_batch_pid(h1, h2, labels, key=key, num_clusters=self.k,
                                 num_classes=self.num_classes).atoms
      return g, d

    self._embed, self._estimate = embed_views, estimate

  def __call__(self, state) -> dict[str, float]:
    host = lambda t: jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data), t)
    params, bs = host(state.params["online"]), host(state.batch_stats)
    h1, h2 = self._embed(params, bs, self.images, jax.random.key(1234))
    g, d = self._estimate(h1, h2, self.labels, jax.random.key(4321))
    out = {}
    for prefix, atoms in (("pid/gauss", g), ("pid/disc", d)):
      vals = {k: float(v) for k, v in atoms._asdict().items()}
      vals["joint_mi"] = sum(vals.values())
      out.update({f"{prefix}/{k}": v for k, v in vals.items()})
    return out


def _first_examples(data_cfg, split, n):
  it = loader.make_eval_loader(data_cfg.name, split, global_batch_size=min(n, 1000),
                               data_dir=data_cfg.data_dir, process_index=0, process_count=1,
                               image_folder=data_cfg.image_folder)
  xs, ys, seen = [], [], 0
  for b in it:
    xs.append(b["image"][b["mask"]])
    ys.append(b["label"][b["mask"]])
    seen += int(b["mask"].sum())
    if seen >= n:
      break
  return np.concatenate(xs)[:n], np.concatenate(ys)[:n].astype(np.int32)
