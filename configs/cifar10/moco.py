r"""MoCo v2+ on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn's README, MoCo V2+ 92.94
(CIFAR-10) / 69.89 (CIFAR-100) top-1 (online linear, 1000 epochs).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/moco.py --workdir=runs/cifar10_moco
  python -m ssljax.main --config=configs/cifar10/moco.py --workdir=runs/cifar10_moco --mode=evaluate
  python -m ssljax.main --config=configs/cifar10/moco.py:dataset=cifar100 --workdir=runs/cifar100_moco

``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` run this recipe with only
the data changed (why: `presets.solo_learn`).

Hyper-parameters: ``vturrisi/solo-learn`` ``scripts/pretrain/cifar/mocov2plus.yaml``
(commit 1df0b89), ``solo/methods/mocov2plus.py`` and solo-learn's defaults:

* ResNet-18, CIFAR stem (padding 2, no max-pool); projector 512-2048-256
  without BatchNorm (Linear-ReLU-Linear), the same for the momentum encoder;
* symmetrised InfoNCE (``symmetric=True``, one queue per view), queue
  32768, temperature 0.2;
* momentum encoder τ 0.99 → 0.999 (solo-learn's cosine ``base_tau`` →
  ``final_tau``);
* SGD (not LARS) lr 0.3 × B/256, momentum 0.9, wd 1e-4 on every parameter,
  batch 256, 10 warm-up epochs from 3e-5, cosine to 0.

Deviations: views ``'simclr'`` (jitter 0.8/0.8/0.8/0.2, blur
0.5) instead of ``symmetric_weak.yaml`` (jitter 0.4/0.4/0.4/0.1, blur 0.5;
no such preset); the queue starts from random unit keys (as solo-learn) and
solo-learn's ``assert queue_size % batch_size == 0`` is not needed; float32;
our offline linear probe (solo-learn reports its online probe).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "moco"
  c.data.augmentation = "simclr"
  presets.solo_learn(c, base_lr=0.3, weight_decay=1e-4)
  c.optim.name = "sgd"
  c.optim.decay_all = True
  presets.heads(c, "2048-256", bn=False)
  presets.ema_target(c, 0.99)
  c.model.target_ema_end = 0.999
  c.loss.terms = {"moco": {"weight": 1.0, "queue_size": 32768, "temperature": 0.2,
                           "symmetric": True}}
  return presets.finish(c, a)
