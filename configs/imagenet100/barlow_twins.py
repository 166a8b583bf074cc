r"""Barlow Twins on ImageNet-100, ResNet-18, 400 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn ImageNet-100 benchmark,
Barlow Twins 80.38 top-1 (online linear; 80.16 offline; solo-learn's README);
the Barlow Twins baseline of CorInfoMax's ImageNet-100 table (79.70 in an
older solo-learn README; unverified).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/barlow_twins.py --workdir=runs/in100_barlow
  python -m ssljax.main --config=configs/imagenet100/barlow_twins.py --workdir=runs/in100_barlow --mode=evaluate

Hyper-parameters: ``vturrisi/solo-learn``
``scripts/pretrain/imagenet-100/barlow.yaml`` (commit 72c172b) and
solo-learn's defaults (`presets.solo_learn`):

* ResNet-18 (ImageNet stem); projector 512-2048-2048-2048 with BatchNorm;
* loss ``0.1 · [Σ(1 − C_ii)² + 0.0051 Σ_{i≠j} C_ij²]``;
* LARS lr 0.3 × B/256, η = 0.02, wd 1e-4; batch 256 (2 GPUs × 128), 10
  warm-up epochs from 3e-5, cosine to 0;
* views ``'byol'`` (``asymmetric.yaml`` at 224 px = BYOL's views).

Deviations: no LARS ``clip_lr``, bf16 compute (solo-learn: fp16 mixed precision) but no DALI; BYOL's
blur kernel instead of PIL's; our
offline linear probe. The 🚀 benchmark runs were "heavily tuned"; the yaml
stored at that commit is what is reproduced here.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=400.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "barlow_twins"
  presets.solo_learn(c, base_lr=0.3, weight_decay=1e-4)
  presets.heads(c, "2048-2048-2048")
  c.loss.terms = {"barlow_twins": {"weight": 1.0, "lambd": 0.0051, "scale_loss": 0.1}}
  return presets.finish(c, a)
