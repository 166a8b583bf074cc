r"""CorInfoMax on ImageNet-100, ResNet-18, 400 epochs: the official run.

Paper: Ozsoy et al., "Self-Supervised Learning with an Information
Maximization Criterion", NeurIPS 2022, ImageNet-100 table: 80.48 linear top-1
with a ResNet-18 (verified: ``serdarozsoy/corinfomax-ssl`` README). The table's baselines are solo-learn's
ImageNet-100 ResNet-18 runs (configs/imagenet100/{simclr,byol,barlow_twins,vicreg}.py).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/corinfomax.py --workdir=runs/in100_corinfomax
  python -m ssljax.main --config=configs/imagenet100/corinfomax.py --workdir=runs/in100_corinfomax --mode=evaluate

Hyper-parameters: the README's ImageNet-100 ResNet-18 command plus parser
defaults (``imagenet100_resnet18/``); the shared set-up is
`presets.corinfomax`:

* ResNet-18, ImageNet stem, zero-init residual BN; projector
  512-4096-4096-128, no BatchNorm, no output bias;
* α = 500, λ_R = λ_μ = 0.01, ε = 1e-8, R_ini = 1;
* SGD lr 1.0 (unscaled), wd 1e-4 on all parameters, 10 warm-up epochs from
  3e-3, cosine to 5e-3; batch 1024 (8 GPUs, synced BN and gathered loss as
  here), 400 epochs; views ``'corinfomax'`` at 224 px.

Deviations: per-step schedule (official: per epoch); exact Gaussian for PIL's
blur; our
offline linear probe instead of 100 epochs of SGD (lr 0.2) on augmented crops.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=400.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "corinfomax"
  presets.corinfomax(c, batch_size=1024, projector="4096-4096-128", alpha=500.0, la=0.01,
                     base_lr=1.0, min_lr=5e-3)
  return presets.finish(c, a)
