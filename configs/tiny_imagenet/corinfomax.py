r"""CorInfoMax on Tiny-ImageNet, ResNet-50 (ImageNet stem), 800 epochs: the official run.

Paper: Ozsoy et al., "Self-Supervised Learning with an Information
Maximization Criterion", NeurIPS 2022, Table 1 (Tiny ImageNet): 54.86 linear
top-1 with a ResNet-50 (verified: ``serdarozsoy/corinfomax-ssl`` README;
its 5-NN value was not recovered.
The table's baselines use ResNet-18 (W-MSE's protocol).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/tiny_imagenet/corinfomax.py --workdir=runs/tiny_corinfomax
  python -m ssljax.main --config=configs/tiny_imagenet/corinfomax.py --workdir=runs/tiny_corinfomax --mode=evaluate

Hyper-parameters: the README's Tiny ImageNet command plus parser defaults
(``cifars-tiny/parsing_file.py``); the shared set-up is `presets.corinfomax`:

* ResNet-50 with the standard ImageNet stem (7x7/2 conv + max-pool) on
  64x64 inputs, zero-init residual BN; projector 2048-4096-4096-128, no
  BatchNorm, no output bias;
* α = 500, λ_R = λ_μ = 0.1, ε = 1e-8, R_ini = 1;
* SGD lr 0.5 (unscaled), wd 1e-4 on all parameters, 10 warm-up epochs from
  3e-3, cosine to 1e-6; batch 1024, 800 epochs; views ``'corinfomax'`` at 64 px.

Deviations: per-step schedule (official: per epoch); exact 13-tap Gaussian
for PIL's blur; Tiny-ImageNet normalised with its own statistics (the
official code uses ImageNet's mean/std); our offline linear probe and cosine
5-NN instead of the official 100-epoch linear evaluation.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=800.0, datasets=("tiny_imagenet",))
  c = presets.tiny_imagenet(config_lib.base_config(), epochs=a.epochs)
  c.method = "corinfomax"
  c.model.encoder = "resnet50"
  c.model.encoder_kwargs.stem = "imagenet"
  presets.corinfomax(c, batch_size=1024, projector="4096-4096-128", alpha=500.0, la=0.1,
                     base_lr=0.5, min_lr=1e-6)
  return presets.finish(c, a)
