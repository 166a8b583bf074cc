r"""CorInfoMax on CIFAR-100, ResNet-18, 1000 epochs: the official run.

Paper: Ozsoy et al., "Self-Supervised Learning with an Information
Maximization Criterion", NeurIPS 2022, Table 1 (CIFAR-100): 71.61 linear top-1
(verified: ``serdarozsoy/corinfomax-ssl`` README); its 5-NN value was not
recovered.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar100/corinfomax.py --workdir=runs/cifar100_corinfomax
  python -m ssljax.main --config=configs/cifar100/corinfomax.py --workdir=runs/cifar100_corinfomax --mode=evaluate

Hyper-parameters: the README's CIFAR-100 command plus parser defaults
(``cifars-tiny/parsing_file.py``); the shared set-up is `presets.corinfomax` (see configs/cifar10/corinfomax.py):

* ResNet-18, CIFAR stem (padding 1, no max-pool), zero-init residual BN;
  projector 512-4096-4096-128, no BatchNorm, no output bias;
* α = 1000, λ_R = λ_μ = 0.01, ε = 1e-8, R_ini = 1;
* SGD lr 0.5 (unscaled), wd 1e-4 on all parameters, 10 warm-up epochs from
  3e-3, cosine to 1e-6; batch 512; views ``'corinfomax'``.

Deviations: as configs/cifar10/corinfomax.py (per-step schedule, exact
Gaussian blur, our offline linear probe and cosine 5-NN).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar100",))
  c = presets.cifar(config_lib.base_config(), dataset="cifar100", epochs=a.epochs)
  c.method = "corinfomax"
  presets.corinfomax(c, batch_size=512, projector="4096-4096-128", alpha=1000.0, la=0.01,
                     base_lr=0.5, min_lr=1e-6)
  return presets.finish(c, a)
