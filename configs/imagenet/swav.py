r"""SwAV on ImageNet-1K, ResNet-50, 800 epochs, multi-crop 2x224 + 6x96: the official run.

Table row (experiments/paper_tables.md): the SwAV (multi-crop) baseline of the
SSL-HSIC paper's ImageNet linear-evaluation table, 75.3 top-1 (Caron et al.
2020, Table 1; recalled, not checked against the PDF).

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet/swav.py --workdir=runs/imagenet_swav
  python -m ssljax.main --config=configs/imagenet/swav.py --workdir=runs/imagenet_swav --mode=evaluate

Hyper-parameters: ``facebookresearch/swav`` ``scripts/swav_800ep_pretrain.sh``
and ``main_swav.py`` (``docs/methods/swav.md``):

* ResNet-50 (no zero-init residual BN); projection head 2048-2048-128 with
  BatchNorm, L2-normalised output; K = 3000 prototypes;
* τ = 0.1, ε = 0.05, 3 Sinkhorn iterations, codes on the 2 global crops;
  no queue (``--queue_length 0`` at batch 4096); prototypes frozen for the
  first 313 iterations (one epoch at batch 4096);
* views ``'multicrop'``: 2 crops of 224 (area U[0.14, 1]) + 6 of 96
  (U[0.05, 0.14]), SwAV's colour distortion and blur;
* LARC (trust 0.001, no clip) on SGD momentum 0.9, lr 4.8 at batch 4096
  (= 0.3 × B/256), wd 1e-6, 10 warm-up epochs from 0.3, cosine to 0.0048.

The prototypes (``main_swav.py``): a bias-free ``nn.Linear(128, 3000)`` of
the model, under the same LARC (adapted, wd 1e-6), re-normalised in place
before every iteration and left out of the update (gradient ``None``) for the
first 313 iterations. Here: a loss parameter under a second instance of the
network's LARS and schedule (``optim.loss_params_optimizer='ssl'``), so
adapted and decayed like the official ones, and normalised inside the loss.

Deviations: LARS here excludes biases and BN from the adaptation and the
weight decay (LARC does not); the prototypes are normalised inside the loss
instead of in place, so their gradient is the official one projected onto the
tangent of each unit row, divided by its norm (the same first-order update
direction; LARS's trust ratio uses the projected gradient's norm) and their
norm drifts (the loss reads only directions); while frozen their gradient is
zero, so LARS still applies the weight decay, which shrinks them without
turning them (official: untouched); each crop's BatchNorm statistics come
from its own batch (SwAV runs the crops of one resolution together); our
offline linear probe.
"""

from ssljax import config as config_lib
from ssljax import presets


def get_config(arg=None):
  a = presets.arguments(arg, epochs=800.0, datasets=("imagenet2012",))
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet2012", epochs=a.epochs)
  c.method = "swav"
  c.data.augmentation = "multicrop"
  presets.lars_imagenet(c, batch_size=4096, base_lr=0.3, weight_decay=1e-6,
                        end_lr_fraction=0.001)
  c.optim.warmup_start_lr = 0.3
  c.model.encoder_kwargs.zero_init_residual = False
  presets.heads(c, "2048-128")
  c.loss.terms = {"swav": {"weight": 1.0, "temperature": 0.1, "epsilon": 0.05,
                           "sinkhorn_iters": 3, "num_prototypes": 3000,
                           "freeze_prototypes_steps": 313, "queue_size": 0}}
  c.optim.loss_params_optimizer = "ssl"   # the prototypes under LARS, as main_swav.py's LARC
  return presets.finish(c, a)
