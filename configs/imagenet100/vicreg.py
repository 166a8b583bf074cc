r"""VICReg on ImageNet-100, ResNet-18, 400 epochs: solo-learn's recipe.

Table rows (experiments/paper_tables.md): solo-learn ImageNet-100 benchmark,
VICReg 79.22 top-1 (online linear; 79.40 offline; solo-learn's README); the
VICReg baseline of CorInfoMax's ImageNet-100 table (79.22 in an older
solo-learn README too; unverified).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/vicreg.py --workdir=runs/in100_vicreg
  python -m ssljax.main --config=configs/imagenet100/vicreg.py --workdir=runs/in100_vicreg --mode=evaluate

Hyper-parameters: ``vturrisi/solo-learn``
``scripts/pretrain/imagenet-100/vicreg.yaml`` (commit 07f8c3b) and
solo-learn's defaults (`presets.solo_learn`):

* ResNet-18 (ImageNet stem); expander 512-2048-2048-2048 with BatchNorm;
* solo-learn's 25 / 25 / 1 with the variance term summed over the two
  branches, i.e. ``std_coeff = 50`` in ssljax's official (averaged) form
  (see configs/cifar10/vicreg.py);
* LARS lr 0.3 × B/256, η = 0.02, wd 1e-4; batch 256 (2 GPUs × 128), 10
  warm-up epochs from 3e-5, cosine to 0;
* views ``'vicreg_solo'`` (crop area U[0.2, 1], blur 0.5, solarise 0.1).

Deviations: no LARS ``clip_lr``, bf16 compute (solo-learn: fp16 mixed precision) but no DALI; our offline linear probe. The 🚀 benchmark
runs were "heavily tuned"; the yaml stored at that commit is what is
reproduced here.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=400.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "vicreg"
  c.data.augmentation = "vicreg_solo"
  presets.solo_learn(c, base_lr=0.3, weight_decay=1e-4)
  presets.heads(c, "2048-2048-2048")
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 50.0,
                             "cov_coeff": 1.0}}
  return presets.finish(c, a)
