r"""VICReg on ImageNet-1K, ResNet-50, 1000 epochs: the official recipe.

Table rows (experiments/paper_tables.md): VICReg and, with ``:pid``, VICReg
+ PID on ImageNet (not rows of the PID-SSL paper, whose baselines do not
include VICReg; added for completeness).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/vicreg.py --workdir=runs/imagenet_vicreg
  python -m ssljax.main --config=configs/imagenet/vicreg.py --workdir=runs/imagenet_vicreg --mode=evaluate
  python -m ssljax.main --config=configs/imagenet/vicreg.py:pid --workdir=runs/imagenet_vicreg_pid

Hyper-parameters: ``facebookresearch/vicreg`` ``main_vicreg.py`` (verified):

* ResNet-50 with zero-init residual BN; expander 2048-8192-8192-8192 (BN +
  ReLU after the hidden layers, final Linear without bias);
* official loss 25·inv + 25·[v(Z) + v(Z')]/2 + 1·[c(Z) + c(Z')] on the
  global batch;
* LARS, η = 1e-3, lr 0.2 × B/256, wd 1e-6, biases and BN excluded; batch
  2048, 10 warm-up epochs, cosine to 0.001 × peak; 1000 epochs (the paper;
  the code's default is 100);
* views ``'byol'`` (VICReg's ``augmentations.py`` is BYOL's asymmetric
  recipe with PIL blur).

Deviations: float32 (official: AMP); our offline linear probe (VICReg: 100 epochs of SGD on augmented crops).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "vicreg"
  presets.lars_imagenet(c, batch_size=2048, base_lr=0.2, weight_decay=1e-6,
                        end_lr_fraction=1e-3)
  presets.heads(c, "8192-8192-8192", last_bias=False)
  c.loss.terms = {"vicreg": {"weight": 1.0, "sim_coeff": 25.0, "std_coeff": 25.0,
                             "cov_coeff": 1.0}}
  return presets.finish(c, a)
