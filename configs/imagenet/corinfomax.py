r"""CorInfoMax on ImageNet-1K, ResNet-50, 100 epochs: the official run.

Paper: Ozsoy et al., "Self-Supervised Learning with an Information
Maximization Criterion", NeurIPS 2022, ImageNet-1K table: 69.08 linear top-1
after 100 epochs (verified: ``serdarozsoy/corinfomax-ssl`` README); the
table's 100-epoch baselines were not recovered.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/corinfomax.py --workdir=runs/imagenet_corinfomax
  python -m ssljax.main --config=configs/imagenet/corinfomax.py --workdir=runs/imagenet_corinfomax --mode=evaluate

Hyper-parameters: the README's ImageNet-1K command plus parser defaults
(``imagenet1k/``); the shared set-up is `presets.corinfomax`:

* ResNet-50, zero-init residual BN; projector 2048-8192-8192-512 WITH
  BatchNorm (``model_base_resnet_bn.py::CovModel6``), no output bias;
* α = 2000, λ_R = λ_μ = 0.1, ε = 1e-8, R_ini = 1;
* SGD lr 0.2 (unscaled), wd 1e-4 on all parameters, 10 warm-up epochs from
  3e-3, cosine to 1e-6; batch 1536 (8 GPUs, synced BN, gathered loss);
  views ``'corinfomax'`` at 224 px.

Deviations: float32 (the official run uses AMP); per-step schedule (official:
per epoch); exact Gaussian for PIL's blur; our offline linear probe instead of the official one (lr 25, step
decay every 20 epochs, ``main_linear_multi_offline_t4.py``).
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=100.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "corinfomax"
  presets.corinfomax(c, batch_size=1536, projector="8192-8192-512", alpha=2000.0, la=0.1,
                     base_lr=0.2, min_lr=1e-6, projector_bn=True)
  return presets.finish(c, a)
