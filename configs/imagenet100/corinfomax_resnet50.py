r"""CorInfoMax on ImageNet-100, ResNet-50, 200 epochs: the official run.

Paper: Ozsoy et al., "Self-Supervised Learning with an Information
Maximization Criterion", NeurIPS 2022, ImageNet-100 table: 82.64 linear top-1
with a ResNet-50 (verified: ``serdarozsoy/corinfomax-ssl`` README).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/corinfomax_resnet50.py --workdir=runs/in100_corinfomax_r50
  python -m ssljax.main --config=configs/imagenet100/corinfomax_resnet50.py --workdir=runs/in100_corinfomax_r50 --mode=evaluate

Hyper-parameters: the README's ImageNet-100 ResNet-50 command plus parser
defaults (``imagenet100_resnet50/``); the shared set-up is
`presets.corinfomax`:

* ResNet-50, ImageNet stem, zero-init residual BN; projector
  2048-4096-4096-128, no BatchNorm, no output bias;
* α = 500, λ_R = λ_μ = 0.01, ε = 1e-8, R_ini = 1;
* SGD lr 1.0 (unscaled), wd 1e-4 on all parameters, 5 warm-up epochs from
  3e-3, cosine to 5e-3; batch 1024, 200 epochs; views ``'corinfomax'``.

Deviations: as configs/imagenet100/corinfomax.py.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=200.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "corinfomax"
  c.model.encoder = "resnet50"
  presets.corinfomax(c, batch_size=1024, projector="4096-4096-128", alpha=500.0, la=0.01,
                     base_lr=1.0, min_lr=5e-3, warmup_epochs=5.0)
  return presets.finish(c, a)
