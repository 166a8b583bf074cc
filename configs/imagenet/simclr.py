r"""SimCLR on ImageNet-1K, ResNet-50, 1000 epochs: the paper's recipe.

Table rows (experiments/paper_tables.md): the SimCLR baseline of SSL-HSIC's
ImageNet linear-evaluation table, 69.3 top-1 (SimCLR's published 1000-epoch
number; recalled, not checked against the PDF); the SimCLR baseline of the
PID-SSL paper on ImageNet and, with ``:pid``, SimCLR + PID (average gain
only; ImageNet schedule unknown, see experiments/paper_tables.md §5).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/simclr.py --workdir=runs/imagenet_simclr
  python -m ssljax.main --config=configs/imagenet/simclr.py --workdir=runs/imagenet_simclr --mode=evaluate
  python -m ssljax.main --config=configs/imagenet/simclr.py:pid --workdir=runs/imagenet_simclr_pid

Hyper-parameters: Chen et al., "A Simple Framework for Contrastive Learning
of Visual Representations", ICML 2020 (§B.1 of the paper; official
``google-research/simclr``), taken from the paper as we know it; check
before citing:

* ResNet-50, zero-init residual BN; projection head 2048-2048-128 with
  BatchNorm;
* NT-Xent, temperature 0.1, summed over the two directions (official code);
* LARS lr 0.3 × B/256 (= 4.8), η = 1e-3, wd 1e-6, biases and BN excluded;
  batch 4096, 10 warm-up epochs, cosine to 0, 1000 epochs;
* views ``'simclr'`` (colour strength 1.0: jitter 0.8/0.8/0.8/0.2 with
  p 0.8, grayscale 0.2, blur p 0.5, no solarisation).

Deviations: the official head's output BatchNorm is not reproduced (ssljax's
projector has BN only after hidden layers); PIL-style 13-tap blur instead of
SimCLR's 23-tap kernel; our offline
linear probe (SimCLR: 90 epochs of Nesterov SGD on augmented crops).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "simclr"
  c.data.augmentation = "simclr"
  presets.lars_imagenet(c, batch_size=4096, base_lr=0.3, weight_decay=1e-6)
  presets.heads(c, "2048-128")
  c.loss.terms = {"simclr": {"weight": 1.0, "temperature": 0.1, "view_reduction": "sum"}}
  return presets.finish(c, a)
