r"""BYOL on ImageNet-1K, ResNet-50, 1000 epochs: the paper's recipe.

Table rows (experiments/paper_tables.md): the BYOL baseline of SSL-HSIC's
ImageNet linear-evaluation table, 74.3 top-1 (BYOL's published number;
recalled, not checked against the PDF; DeepMind's ``deepmind-research/byol``
README says 74.0-74.5); the BYOL baseline of the PID-SSL paper on ImageNet
and, with ``:pid``, BYOL + PID (only the paper's average +PID gain is known;
its ImageNet schedule is not: 1000 epochs with the CIFAR proportions here).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/byol.py --workdir=runs/imagenet_byol
  python -m ssljax.main --config=configs/imagenet/byol.py --workdir=runs/imagenet_byol --mode=evaluate
  python -m ssljax.main --config=configs/imagenet/byol.py:pid --workdir=runs/imagenet_byol_pid

Hyper-parameters: Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020
(§3.3, App. C; ``deepmind-research/byol``, whose pipeline ``deepmind/ssl_hsic``
reuses):

* ResNet-50, zero-init residual BN (Haiku); projector 2048-4096-256 and
  predictor 256-4096-256 with BatchNorm, no output bias;
* symmetrised 2 − 2·cos loss; EMA target τ 0.996 → 1 (cosine);
* LARS lr 0.2 × B/256 (= 3.2), η = 1e-3, wd 1.5e-6, biases and BN
  excluded; batch 4096, 10 warm-up epochs, cosine to 0, 1000 epochs;
* views ``'byol'``.

Deviations: raw online weights and our
offline linear probe for evaluation (BYOL: 80 epochs of SGD on augmented
crops).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "byol"
  presets.lars_imagenet(c, batch_size=4096, base_lr=0.2, weight_decay=1.5e-6)
  presets.heads(c, "4096-256", predictor="4096-256", last_bias=False)
  presets.ema_target(c, 0.996)
  c.loss.terms = {"byol": {"weight": 1.0}}
  return presets.finish(c, a)
