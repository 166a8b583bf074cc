r"""SwAV on CIFAR-10 (also CIFAR-100), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, SwAV 89.17
(CIFAR-10) / 64.88 (CIFAR-100) top-1 (online linear, 1000 epochs).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/swav.py --workdir=runs/cifar10_swav
  python -m ssljax.main --config=configs/cifar10/swav.py:dataset=cifar100 --workdir=runs/cifar100_swav
  python -m ssljax.main --config=configs/cifar10/swav.py:multicrop --workdir=runs/cifar10_swav_mc

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/swav.yaml``
and solo-learn's defaults (`presets.solo_learn`):

* ResNet-18, CIFAR stem; projector 512-2048-128 with BatchNorm; K = 3000
  prototypes, τ = 0.1, ε = 0.05, 3 Sinkhorn iterations;
* queue of 3840 features from epoch 50 (9750 steps of 195), prototypes
  frozen for 2 epochs (390 steps); steps per epoch of CIFAR-10/100
  (50000 // 256), hence no Tiny-ImageNet variant;
* LARS lr 0.6 × B/256, η = 0.02, wd 1e-6, batch 256, 10 warm-up epochs,
  cosine to 0; views ``'simclr'`` (solo-learn ``symmetric.yaml``: two crops).

``:multicrop`` (not a table row, OUR CHOICE): SwAV's multi-crop on 32-pixel
images, 2x32 (area U[0.14, 1]) + 4x16 (U[0.05, 0.14]) crops
(``'multicrop_small'``).

The prototypes: solo-learn's ``nn.utils.weight_norm`` layer with its norm
fixed to 1 (``solo/methods/swav.py``), trained by the same LARS (2-D, so
adapted and decayed): here a loss parameter normalised inside the loss (the
same function and gradient) under a second instance of the network's LARS
and schedule (``optim.loss_params_optimizer='ssl'``).

Deviations: no LARS ``clip_lr``, float32; while the prototypes are frozen
their gradient is zero, so LARS still applies the weight decay, which shrinks
them without turning them (solo-learn sets their gradient to ``None``:
untouched); our augmentation ops; linear top-1 from our offline probe.
"""

from ssljax import config as config_lib
from ssljax import presets

STEPS_PER_EPOCH = 50000 // 256  # CIFAR-10 and CIFAR-100 at batch 256 (drop_last)


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100"), multicrop=False)
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "swav"
  c.data.augmentation = "multicrop_small" if a.multicrop else "simclr"
  presets.solo_learn(c, base_lr=0.6, weight_decay=1e-6)
  presets.heads(c, "2048-128")
  c.optim.loss_params_optimizer = "ssl"   # the prototypes under LARS, as solo-learn
  c.loss.terms = {"swav": {"weight": 1.0, "temperature": 0.1, "epsilon": 0.05,
                           "sinkhorn_iters": 3, "num_prototypes": 3000,
                           "freeze_prototypes_steps": 2 * STEPS_PER_EPOCH,
                           "queue_size": 3840, "queue_start_steps": 50 * STEPS_PER_EPOCH}}
  return presets.finish(c, a)
