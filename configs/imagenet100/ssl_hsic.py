r"""SSL-HSIC on ImageNet-100, ResNet-18, 400 epochs: BYOL's ImageNet-100 recipe with the SSL-HSIC loss.

No published ImageNet-100 recipe exists for SSL-HSIC (the paper and
``deepmind/ssl_hsic`` report ImageNet-1K only; configs/imagenet/ssl_hsic.py).
This row is OUR CHOICE: the network, views and optimiser of
configs/imagenet100/byol.py (solo-learn's BYOL ImageNet-100 yaml: ResNet-18,
projector 512-4096-256, predictor 256-8192-256, EMA target τ 0.99 → 1, LARS
0.5 × B/256, η = 0.02, wd 1e-6, batch 256, bf16) with the official SSL-HSIC
loss (γ = 3, IMQ kernel, 512 random Fourier features, K = 4 views, kernel
scale trained by Adam 3e-4; ``ssl_hsic/config.py``) and the official
independent target initialisation and bias-free heads.

Run (also with a ViT-S/16 backbone and its AdamW recipe, `presets.vit`)::

  python -m ssljax.main --config=configs/imagenet100/ssl_hsic.py --workdir=runs/in100_ssl_hsic
  python -m ssljax.main --config=configs/imagenet100/ssl_hsic.py:encoder=vit_small --workdir=runs/in100_ssl_hsic_vits
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=400.0, datasets=("imagenet100",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=a.epochs)
  c.method = "ssl_hsic"
  presets.solo_learn(c, base_lr=0.5, weight_decay=1e-6)
  presets.heads(c, "4096-256", predictor="8192-256", last_bias=False)
  presets.ema_target(c, 0.99, init="independent")
  c.optim.loss_params_lr = 3e-4
  c.loss.terms = {"ssl_hsic": {"weight": 1.0, "gamma": 3.0, "num_rff_features": 512,
                               "kernel": "imq", "learn_scale": True}}
  return presets.finish(c, a)
