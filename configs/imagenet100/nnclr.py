r"""NNCLR on ImageNet-100, ResNet-18, 400 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn ImageNet-100 benchmark,
NNCLR 79.80 top-1 (online linear; solo-learn's README), also the NNCLR row
of CorInfoMax's ImageNet-100 table (79.80).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/nnclr.py --workdir=runs/in100_nnclr
  python -m ssljax.main --config=configs/imagenet100/nnclr.py --workdir=runs/in100_nnclr --mode=evaluate

Hyper-parameters: ``vturrisi/solo-learn``
``scripts/pretrain/imagenet-100/nnclr.yaml`` (commit 8676d22) and
solo-learn's defaults (`presets.solo_learn`):

* ResNet-18 (ImageNet stem); projector 512-2048-2048-256 and predictor
  256-4096-256, BatchNorm after the hidden layers;
* NNCLR loss with temperature 0.2 and a support set of 65536;
* LARS lr 0.4 × B/256, η = 0.02, wd 1e-5; batch 256 (2 GPUs × 128), 10
  warm-up epochs from 3e-5, cosine to 0;
* views ``'byol'`` (solo-learn's ImageNet-100 ``asymmetric.yaml``).

Deviations: no BatchNorm on the projector output (solo-learn has one); the
support set starts empty; no LARS ``clip_lr``, float32 (solo-learn: fp16 and
DALI); our offline linear probe. The
🚀 benchmark runs were "heavily tuned"; the yaml stored at that commit is what
is reproduced here.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=400.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "nnclr"
  presets.solo_learn(c, base_lr=0.4, weight_decay=1e-5)
  presets.heads(c, "2048-2048-256", predictor="4096-256")
  c.loss.terms = {"nnclr": {"weight": 1.0, "queue_size": 65536, "temperature": 0.2}}
  return presets.finish(c, a)
