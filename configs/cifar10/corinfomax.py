r"""CorInfoMax on CIFAR-10, ResNet-18, 1000 epochs: the official run.

Paper: Ozsoy, Hamdan, Arik, Yuret & Erdogan, "Self-Supervised Learning with
an Information Maximization Criterion", NeurIPS 2022, Table 1 (CIFAR-10):
93.18 linear top-1 (verified: ``serdarozsoy/corinfomax-ssl`` README); its
5-NN value was not recovered.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/cifar10/corinfomax.py --workdir=runs/cifar10_corinfomax
  python -m ssljax.main --config=configs/cifar10/corinfomax.py --workdir=runs/cifar10_corinfomax --mode=evaluate

Hyper-parameters: the README's CIFAR-10 command plus parser defaults
(``cifars-tiny/parsing_file.py``), shared parts in
`presets.corinfomax`:

* ResNet-18, CIFAR stem (3x3/1 conv, padding 1, no max-pool), zero-init
  residual BN; projector 512-2048-2048-64, no BatchNorm, no output bias;
* α = 250, λ_R = λ_μ = 0.01, ε = 1e-8, R_ini = 1, L2-normalised outputs;
* SGD momentum 0.9, lr 0.5 (not scaled by the batch), wd 1e-4 on every
  parameter, 10 warm-up epochs from 3e-3, cosine to 1e-6; batch 512;
* views ``'corinfomax'`` (``transform_utils.py``: blur 1.0 / 0.1 even at
  32 px, solarise 0.0 / 0.2, bicubic crop area U[0.08, 1]).

Deviations: the LR schedule is stepped per step (official: per epoch); PIL
blur approximated by an exact 13-tap Gaussian; the official linear
evaluation (100 epochs SGD lr 0.2 on augmented crops) is replaced by our
offline probe on frozen features; 5-NN is a cosine vote (W-MSE: L2 distance).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10",))
  c = presets.cifar(config_lib.base_config(), dataset="cifar10", epochs=a.epochs)
  c.method = "corinfomax"
  presets.corinfomax(c, batch_size=512, projector="2048-2048-64", alpha=250.0, la=0.01,
                     base_lr=0.5, min_lr=1e-6)
  return presets.finish(c, a)
