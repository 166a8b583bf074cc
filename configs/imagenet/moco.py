r"""MoCo v2 on ImageNet-1K, ResNet-50, 800 epochs: the official run.

Table row (experiments/paper_tables.md): the MoCo v2 baseline of the SSL-HSIC
paper's ImageNet linear-evaluation table, 71.1 top-1 = MoCo v2 with 800
epochs (``facebookresearch/moco`` README: 67.5 at 200 epochs, 71.1 at 800).

Run (``:epochs=200`` for the README's 200-epoch model)::

  python -m ssljax.main --config=configs/imagenet/moco.py --workdir=runs/imagenet_moco
  python -m ssljax.main --config=configs/imagenet/moco.py --workdir=runs/imagenet_moco --mode=evaluate

Hyper-parameters: ``facebookresearch/moco`` README command ``main_moco.py -a
resnet50 --lr 0.03 --batch-size 256 --mlp --moco-t 0.2 --aug-plus --cos``
and the parser defaults:

* ResNet-50 (torchvision, no zero-init residual BN); ``--mlp`` head
  2048-2048-128 without BatchNorm (Linear-ReLU-Linear), the same in the key
  encoder;
* InfoNCE of the query against its key and a queue of 65536 keys
  (``--moco-k``), τ = 0.2, one direction (not symmetrised);
* key encoder: momentum 0.999, constant (``--moco-m``), initialised as a
  copy of the query encoder;
* SGD momentum 0.9, lr 0.03 × B/256 (the README's linear scaling rule),
  weight decay 1e-4 on every parameter, batch 256, no warm-up, cosine to 0
  (``--cos``), 800 epochs;
* views ``'moco_v2'`` (``--aug-plus``: crop area U[0.2, 1], jitter
  0.4/0.4/0.4/0.1 with p 0.8, grayscale 0.2, PIL blur p 0.5 σ U[0.1, 2],
  flip); float32.

Deviations: no shuffling BN (``_batch_shuffle_ddp``): BatchNorm statistics
are those of the global batch (per-crop-batch in the official 8-GPU run);
the lr steps per step (official: once per epoch); the queue starts from
random unit keys, as the official ``queue`` buffer; our offline linear probe
(official: 100 epochs of SGD lr 30 on augmented crops).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=800.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "moco"
  c.data.augmentation = "moco_v2"
  c.data.batch_size = 256
  c.optim.name = "sgd"
  c.optim.base_lr = 0.03
  c.optim.lr_scaling = "linear"
  c.optim.momentum = 0.9
  c.optim.weight_decay = 1e-4
  c.optim.decay_all = True
  c.optim.warmup_epochs = 0.0
  c.optim.schedule = "cosine"
  c.optim.min_lr = 0.0
  c.model.dtype = "float32"
  presets.heads(c, "2048-128", bn=False)
  presets.ema_target(c, 0.999)
  c.model.target_ema_schedule = "constant"
  c.loss.terms = {"moco": {"weight": 1.0, "queue_size": 65536, "temperature": 0.2,
                           "symmetric": False}}
  return presets.finish(c, a)
