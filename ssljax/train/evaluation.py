"""Evaluation during and after pretraining: online probe, kNN, offline linear probe.

Features are computed with the online encoder in inference mode on
un-augmented (centre-cropped, normalised) images, gathered to every process,
then evaluated on the host with the pure kernels of `ssljax.evaluate`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils

from ssljax import parallel
from ssljax.data import augment, loader
from ssljax.evaluate import knn as knn_lib
from ssljax.evaluate import linear as linear_lib
from ssljax.train import network as network_lib


def make_embed_fn(net, *, mean, std, image_size: int, mesh, output: str = "embedding"):
  """jitted ``(params, batch_stats, images uint8 [B,H,W,C]) -> features [B, F]``.

  ``output``: ``'embedding'`` (backbone h, what the probes use) or
  ``'projection'`` (projector output z, what the loss sees).
  """
  if output not in ("embedding", "projection"):
    raise ValueError(f"output={output!r}; expected 'embedding' or 'projection'")

  def embed(params, batch_stats, images):
    images = match_channels(images, len(mean))
    x = augment.preprocess_eval(images, mean=mean, std=std, output_size=image_size)
    return net.apply({"params": params, "batch_stats": batch_stats}, x, train=False,
                     project_only=True)[output]
  repl = parallel.replicated_sharding(mesh)
  data = parallel.batch_sharding(mesh)
  return jax.jit(embed, in_shardings=(repl, repl, data), out_shardings=data)


def match_channels(images: jax.Array, channels: int) -> jax.Array:
  """Images ``[N, H, W, C]`` with ``channels`` channels (transfer between gray and RGB data).

  Grayscale is repeated to RGB; RGB becomes luminance (ITU-R 601 weights, as
  PIL's ``convert('L')``).

  >>> match_channels(jnp.ones((1, 2, 2, 1), jnp.uint8), 3).shape
  (1, 2, 2, 3)
  """
  c = images.shape[-1]
  if c == channels:
    return images
  if c == 1:
    return jnp.repeat(images, channels, axis=-1)
  if c == 3 and channels == 1:
    w = jnp.asarray([0.299, 0.587, 0.114], jnp.float32)
    gray = jnp.sum(images.astype(jnp.float32) * w, axis=-1, keepdims=True)
    return jnp.round(gray).astype(images.dtype) if images.dtype == jnp.uint8 else gray
  raise ValueError(f"cannot evaluate {c}-channel images with a {channels}-channel model")


def to_global(mesh, local: np.ndarray):
  return jax.make_array_from_process_local_data(parallel.batch_sharding(mesh), local)


def extract(embed_fn, params, batch_stats, data_cfg, split: str, *, mesh, batch_size: int,
            max_examples: int = -1):
  """Embeddings, labels and (optionally) raw pixels of a whole split, on every process."""
  feats, labels = [], []
  # Every batch is sharded over the mesh: round up to a multiple of its devices (the loader
  # pads the last rows with mask 0), so e.g. eval.batch_size 500 works on 8 devices.
  batch_size = -(-batch_size // mesh.size) * mesh.size
  it = loader.make_eval_loader(data_cfg.name, split, global_batch_size=batch_size,
                               data_dir=data_cfg.data_dir, image_folder=data_cfg.image_folder)
  seen = 0
  for batch in it:
    f = embed_fn(params, batch_stats, to_global(mesh, batch["image"]))
    f = multihost_utils.process_allgather(f, tiled=True)
    lab = multihost_utils.process_allgather(to_global(mesh, batch["label"]), tiled=True)
    mask = multihost_utils.process_allgather(to_global(mesh, batch["mask"]), tiled=True)
    feats.append(np.asarray(f)[mask])
    labels.append(np.asarray(lab)[mask])
    seen += int(mask.sum())
    if 0 < max_examples <= seen:
      break
  feats, labels = np.concatenate(feats), np.concatenate(labels)
  if max_examples > 0:
    feats, labels = feats[:max_examples], labels[:max_examples]
  return feats, labels


def online_probe_accuracy(probe_params, features, labels, num_classes) -> dict[str, float]:
  logits = network_lib.LinearProbe(num_classes).apply({"params": probe_params}, jnp.asarray(features))
  return _accuracies(np.asarray(logits), labels, num_classes, prefix="online_probe")


def knn_accuracy(train_f, train_y, test_f, test_y, *, num_classes, k, temperature,
                 prefix="knn") -> dict[str, float]:
  scores = knn_lib.knn_predict(jnp.asarray(train_f), jnp.asarray(train_y), jnp.asarray(test_f),
                               num_classes=num_classes, k=k, temperature=temperature)
  return _accuracies(np.asarray(scores), test_y, num_classes, prefix=prefix)


def linear_accuracy(train_f, train_y, test_f, test_y, *, num_classes, epochs, batch_size,
                    learning_rate, seed, prefix="linear") -> dict[str, float]:
  params = linear_lib.train_linear_probe(jnp.asarray(train_f), jnp.asarray(train_y),
                                         num_classes=num_classes, epochs=epochs,
                                         batch_size=batch_size, learning_rate=learning_rate,
                                         seed=seed)
  logits = linear_lib.linear_probe_predict(params, jnp.asarray(test_f))
  return _accuracies(np.asarray(logits), test_y, num_classes, prefix=prefix)


def _accuracies(scores, labels, num_classes, prefix):
  ks = (1, 5) if num_classes > 10 else (1,)
  acc = knn_lib.topk_accuracy(jnp.asarray(scores), jnp.asarray(labels), ks=ks)
  return {f"{prefix}/{name}": float(v) for name, v in acc.items()}
