"""Train-step throughput (images/s) of the full SSL step, compile time reported apart.

Times the jitted step (on-device augmentation of 2 views, online network on
both, loss, probe, optimiser) on synthetic uint8 batches, so the number is the
step's cost, not the input pipeline's. Run on whatever backend JAX finds::

  python benchmarks/throughput.py                        # ConvNet (28x28x1) and ResNet-18 (32x32x3)
  python benchmarks/throughput.py --models convnet --batch 512 --steps 20
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python benchmarks/throughput.py --models convnet

Prints a markdown table; ``--out FILE`` also writes it.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import numpy as np

from ssljax import config as config_lib
from ssljax import parallel
from ssljax.data import datasets
from ssljax.train import setup as setup_lib

MODELS = {
    # name: (encoder, encoder_kwargs, input HxWxC, view size, augmentation)
    "convnet": ("convnet", {"widths": (64, 128, 256)}, (28, 28, 1), 28, "fashion_mnist"),
    "convnet_small": ("convnet", {"widths": (32, 64, 128)}, (28, 28, 1), 28, "fashion_mnist"),
    "resnet18": ("resnet18", {"stem": "cifar"}, (32, 32, 3), 32, "byol"),
    "resnet50": ("resnet50", {"stem": "imagenet"}, (256, 256, 3), 224, "byol"),
}


def bench(model: str, batch: int, steps: int, method: str):
  encoder, kwargs, in_shape, size, aug = MODELS[model]
  c = config_lib.base_config()
  c.data.batch_size = batch
  c.data.image_size = size
  c.data.augmentation = aug
  c.model.encoder = encoder
  c.model.encoder_kwargs = kwargs
  c.model.projector_hidden = (2048,)
  c.model.projector_dim = 256
  if method == "byol":
    c.model.predictor_hidden = (2048,)
    c.model.predictor_dim = 256
    c.model.use_target = True
  c.loss.terms = {method: {}}
  config_lib.finalize(c)
  synthetic = datasets.DatasetInfo(
      name="synthetic", tfds_name=None, num_classes=10, image_shape=in_shape,
      mean=(0.5,) * in_shape[-1], std=(0.25,) * in_shape[-1], train_split="train",
      eval_split="test", num_train=100 * batch, num_eval=0, labeled_split="train",
      num_labeled=100 * batch, view_size=size)
  run = setup_lib.build(c, dataset=synthetic, total_steps=1000)
  mesh = run.mesh
  state = run.init_state(jax.random.key(0))
  step = run.jitted_step()
  rng = np.random.default_rng(0)
  b = {"image": rng.integers(0, 256, (batch, *in_shape), dtype=np.uint8),
       "label": rng.integers(0, 10, (batch,)).astype(np.int32)}
  b = jax.device_put(b, parallel.batch_sharding(mesh))
  key = jax.random.key(1)
  t = time.perf_counter()
  compiled = step.lower(state, b, key).compile()
  compile_s = time.perf_counter() - t
  state, m = compiled(state, b, key)
  jax.block_until_ready(m)
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    state, m = compiled(state, b, key)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  med = statistics.median(times)
  return {"model": model, "method": method, "batch": batch, "devices": len(jax.devices()),
          "backend": jax.default_backend(), "compile_s": compile_s, "step_s": med,
          "images_per_s": batch / med}


def main():
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--models", default="convnet,resnet18")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--method", default="vicreg")
  ap.add_argument("--out", default="")
  a = ap.parse_args()
  rows = [bench(m, a.batch, a.steps, a.method) for m in a.models.split(",")]
  lines = ["| model | method | batch | backend × devices | compile (s) | step (s) | images/s |",
           "|---|---|---|---|---|---|---|"]
  lines += [f"| {r['model']} | {r['method']} | {r['batch']} | {r['backend']} × {r['devices']} | "
            f"{r['compile_s']:.1f} | {r['step_s']:.4f} | {r['images_per_s']:.0f} |" for r in rows]
  text = "\n".join(lines)
  print(text)
  if a.out:
    with open(a.out, "w", encoding="utf-8") as f:
      f.write(text + "\n")


if __name__ == "__main__":
  main()
