r"""W-MSE on ImageNet-100, ResNet-18: solo-learn's recipe (400 epochs) or the official one (240).

Table rows (experiments/paper_tables.md): solo-learn's README ImageNet-100
W-MSE, 67.60 online (69.06 offline) top-1, also the W-MSE row of
CorInfoMax's ImageNet-100 table (67.60): the default. ``:official`` runs the
W-MSE paper's own ImageNet-100 commands (W-MSE 2, or W-MSE 4 with
``:official,views=4``), whose numbers no table of ours lists.

Run (and evaluate a finished run again)::

  python -m ssljax.main --config=configs/imagenet100/wmse.py --workdir=runs/in100_wmse
  python -m ssljax.main --config=configs/imagenet100/wmse.py --workdir=runs/in100_wmse --mode=evaluate
  python -m ssljax.main --config=configs/imagenet100/wmse.py:official,views=4 --workdir=runs/in100_wmse4

Default, solo-learn: ``vturrisi/solo-learn``
``scripts/pretrain/imagenet-100/wmse.yaml`` (commit 72c172b),
``augmentations/wmse.yaml`` and ``solo/methods/wmse.py``:

* ResNet-18 (ImageNet stem); projector 512-1024-64 with BatchNorm;
  whitening size 128, 1 iteration, eps 0;
* Adam lr 2e-3 × B/256, batch 256 (2 GPUs × 128), 10 warm-up epochs from 0,
  cosine to 0, 400 epochs; fp16 there, bfloat16 here (`presets.solo_learn`);
* views ``'wmse_solo_imagenet'``: crop U[0.2, 1], jitter 0.8/0.8/0.8/0.2,
  grayscale 0.2, PIL blur p 0.2, no solarisation.

``:official``: ``htdt/self-supervised`` README "ImageNet-100" commands and
``cfg.py`` defaults: ``--epoch 240 --lr 2e-3 --emb 128 --w_size 256
--crop_s0 0.08 --cj0 0.8 --cj1 0.8 --cj2 0.8 --cj3 0.2 --gs_p 0.2``, batch 512
(W-MSE 2) or ``--num_samples 4 --bs 256`` (W-MSE 4); w_iter 1; Adam not
scaled by the batch, 500 warm-up iterations from lr/500; head
512-1024-128 with BatchNorm; torchvision ResNet-18; views ``'simclr'``
(exactly ``datasets/imagenet.py``: crop U[0.08, 1], jitter
0.8/0.8/0.8/0.2, grayscale 0.2, PIL blur p 0.5 σ U[0.1, 2]); float32.

Deviations: solo-learn's yaml also makes 6 crops of 96 px, which its W-MSE
loss never reads (it whitens the 2 large crops only): not made here;
solo-learn whitens each GPU's batch of 128 (= one sub-batch), we random
sub-batches of 128 of the global batch; Adam without the 1e-6 L2 penalty
(both recipes); ``eps=1e-5`` shrinkage (both official values 0); official
recipe: constant lr after warm-up (official ×0.2 at epochs 190 and 215);
our offline linear probe.
"""

from ssljax import config as config_lib
from ssljax import presets

NUM_TRAIN = 126_689
WARMUP_STEPS = 500
OFFICIAL_BATCH = {2: 512, 4: 256}   # views -> --bs of the README command


def get_config(arg=None):
  # epochs=0: the recipe's own length (solo-learn 400, official 240).
  a = presets.arguments(arg, epochs=0.0, datasets=("imagenet100",), official=False, views=2)
  if a.views not in OFFICIAL_BATCH or (a.views != 2 and not a.official):
    raise ValueError("configs/imagenet100/wmse.py: views=2, or views=4 with official "
                     "(W-MSE 4 is the paper's recipe; solo-learn has W-MSE 2 only)")
  epochs = a.epochs or (240.0 if a.official else 400.0)
  c = presets.imagenet(config_lib.base_config(), dataset="imagenet100", epochs=epochs)
  c.method = "wmse" if a.views == 2 else f"wmse{a.views}"
  if not a.official:
    presets.wmse_solo(c, augmentation="wmse_solo_imagenet")  # Adam's L2 penalty not applied: see Deviations
    return presets.finish(c, a)
  batch = OFFICIAL_BATCH[a.views]
  c.data.batch_size = batch
  c.data.augmentation = "simclr"
  if a.views != 2:
    c.data.num_views = a.views
  presets.heads(c, "1024-128")
  c.optim.name = "adam"
  c.optim.base_lr = 2e-3
  c.optim.lr_scaling = "none"
  c.optim.schedule = "constant"
  c.optim.warmup_epochs = WARMUP_STEPS / (NUM_TRAIN // batch)
  c.optim.warmup_start_lr = 2e-3 / WARMUP_STEPS
  c.loss.terms = {"wmse": {"weight": 1.0, "w_size": 256, "w_iter": 1, "eps": 1e-5}}
  return presets.finish(c, a)
