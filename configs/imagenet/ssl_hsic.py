r"""SSL-HSIC on ImageNet-1K, ResNet-50, 1000 epochs (with or without the target network).

Paper: Li, Pogodin, Sutherland & Gretton, "Self-Supervised Learning with Kernel
Dependence Maximization", NeurIPS 2021, table "Linear evaluation, ImageNet,
ResNet-50": SSL-HSIC w/ target 74.8 top-1 (also the official README's expected
value), w/o target 72.2 (recalled, not checked against the PDF).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/ssl_hsic.py --workdir=runs/imagenet_ssl_hsic
  python -m ssljax.main --config=configs/imagenet/ssl_hsic.py:no_target --workdir=runs/imagenet_ssl_hsic_nt
  python -m ssljax.main --config=configs/imagenet/ssl_hsic.py --workdir=runs/imagenet_ssl_hsic --mode=evaluate

Hyper-parameters: released ``deepmind/ssl_hsic`` ``ssl_hsic/config.py`` (key
``default``) unless stated:

* ResNet-50 v1, zero-init last BN of each block (Haiku BYOL ResNet);
  projector 2048-4096-256 and predictor 256-4096-256, BN, no output bias
  (BYOL ``networks.py``);
* loss: γ = 3, IMQ kernel, 512 random Fourier features, K = 4 views (two
  online predictions, two stop-gradient target projections), kernel scale
  initialised at 1 and trained by Adam 3e-4 on the log-slope objective;
* target: EMA τ 0.99 → 1 (cosine), initialised independently of the online
  network (``ssl_hsic/experiment.py``);
* LARS: base lr 0.4 × B/256 (= 6.4 at B = 4096), momentum 0.9, η = 1e-3,
  wd 1e-6, biases and BN excluded; 10 warm-up epochs, cosine to 0;
  batch 4096, 1000 epochs (``epochs=`` overrides);
* views: BYOL's (``'byol'``: blur 1.0 / 0.1, solarise 0.0 / 0.2);
* evaluation (``ssl_hsic/eval_config.py``): linear probe 90 epochs, batch 4096.

Deviations / unknowns:

* no-target variant (``:no_target``): how the paper sets it up is unresolved
  (the paper does not say); here K = 2 online projections, no predictor, no target;
* data: the released config pre-trains on "train+valid", which in BYOL's
  input pipeline is the whole ImageNet ``train`` split (1,281,167 images;
  its "valid" is 10k images held out of ``train``), as here; linear top-1 is
  measured on the 50k ``validation`` images;
* evaluation uses the raw online weights, not a Polyak EMA (0.999) of them,
  and our probe trains on pre-computed center-crop features (standardised, SGD
  lr 0.1) instead of SGD lr 8.0 on augmented crops with an EMA classifier;
* TPU specifics of the original are not reproduced.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("imagenet2012",), no_target=False)
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "ssl_hsic" + ("_no_target" if a.no_target else "")
  presets.lars_imagenet(c, batch_size=4096, base_lr=0.4, weight_decay=1e-6)
  if a.no_target:
    presets.heads(c, "4096-256", last_bias=False)
  else:
    presets.heads(c, "4096-256", predictor="4096-256", last_bias=False)
    presets.ema_target(c, 0.99, init="independent")
  c.optim.loss_params_lr = 3e-4
  c.loss.terms = {"ssl_hsic": {"weight": 1.0, "gamma": 3.0, "num_rff_features": 512,
                               "kernel": "imq", "estimator": "rff"}}
  c.eval.linear_epochs = 90
  c.eval.linear_batch_size = 4096
  return presets.finish(c, a)
