r"""W-MSE 2 / W-MSE 4 on CIFAR-10 (also CIFAR-100, Tiny-ImageNet), ResNet-18, 1000 epochs.

Paper: Ermolov, Siarohin, Sangineto & Sebe, "Whitening for Self-Supervised
Representation Learning", ICML 2021, Table 1 (W-MSE 2 and W-MSE 4 rows; also
the W-MSE rows of CorInfoMax Table 1 and the W-MSE 2 (+ PID) baselines of
PID-SSL, experiments/paper_tables.md).

Run (``:dataset=cifar100`` / ``:dataset=tiny_imagenet`` switch to that
dataset's README command; ``:views=4`` is W-MSE 4; ``:pid`` adds PID-SSL;
``:solo`` is solo-learn's W-MSE recipe instead of the official one)::

  python -m ssljax.main --config=configs/cifar10/wmse.py --workdir=runs/cifar10_wmse
  python -m ssljax.main --config=configs/cifar10/wmse.py:views=4 --workdir=runs/cifar10_wmse4
  python -m ssljax.main --config=configs/cifar10/wmse.py:dataset=tiny_imagenet,pid --workdir=runs/tin_wmse_pid
  python -m ssljax.main --config=configs/cifar10/wmse.py:solo,dataset=cifar100 --workdir=runs/c100_wmse_solo

Official recipe (default): the README commands of ``htdt/self-supervised``
("W-MSE 2" / "W-MSE 4") plus the parser defaults of ``cfg.py``:

* W-MSE 2, CIFAR-10/100: ``--epoch 1000 --lr 3e-3 --emb 64 --w_size 128``
  (w_iter 1), batch 512 (``--bs`` default); Tiny-ImageNet: ``--lr 2e-3
  --emb 128 --w_size 256 --w_iter 4``;
* W-MSE 4 (``:views=4``): ``--num_samples 4 --bs 256``, CIFAR-10/100
  ``--lr 3e-3 --emb 64 --w_size 128``, Tiny-ImageNet ``--lr 2e-3 --emb 128
  --w_size 256`` (w_iter 1); the loss averages the 6 view pairs
  (``methods/w_mse.py``, ``docs/methods/wmse.md``); the 4 views are drawn
  from the same transform (``datasets/transforms.py::MultiSample``);
* Adam (lr not scaled by the batch), 500 warm-up iterations from lr/500
  (``train.py``), ``--w_eps 0``;
* head Linear(512, 1024)-BN-ReLU-Linear(1024, emb) (``--head_size 1024``,
  ``--head_layers 2``); ResNet-18 with a 3x3/1 stem, no max-pool on CIFAR;
* views ``'wmse'``: the ``cfg.py`` defaults (crop area U[0.2, 1], jitter
  0.4/0.4/0.4/0.1 with p 0.8, grayscale 0.1, flip 0.5, no blur).

Deviations: the constant lr after warm-up keeps the peak for the whole run
(official ``--lr_step step``: ×0.2 at 50 and 25 epochs before the end); Adam
without its 1e-6 L2 penalty; ``eps=1e-5`` shrinkage (official 0,
``ssljax/losses/wmse.py``); Tiny-ImageNet without W-MSE's max-pool
(`presets.tiny_imagenet`); linear top-1 from our offline probe; 5-NN is a
cosine vote (W-MSE: L2).

``:solo`` (the W-MSE rows of solo-learn's README: 88.67 CIFAR-10, 61.33
CIFAR-100; W-MSE 2 only, CIFAR only): ``vturrisi/solo-learn``
``scripts/pretrain/cifar/wmse.yaml`` and ``solo/methods/wmse.py``: projector
1024-64 with BatchNorm, whitening size 128, 1 iteration, eps 0; Adam lr
2e-3 × B/256, batch 256, 10 warm-up epochs from 0, cosine to 0; views
``'wmse_solo'`` (crop U[0.2, 1], jitter 0.8/0.8/0.8/0.2, grayscale 0.2, no
blur); fp16 there, bfloat16 here (`presets.solo_learn`). Deviations: Adam
without solo-learn's 1e-6 L2 penalty; ``eps=1e-5``; solo-learn whitens each
GPU's batch (one GPU in its yaml), we the global batch.
"""

from ssljax import config as config_lib
from ssljax import presets

# (views, dataset) -> (lr, emb, w_size, w_iter, batch, training images): the README commands.
RECIPES = {
    (2, "cifar10"): (3e-3, 64, 128, 1, 512, 50_000),
    (2, "cifar100"): (3e-3, 64, 128, 1, 512, 50_000),
    (2, "tiny_imagenet"): (2e-3, 128, 256, 4, 512, 100_000),
    (4, "cifar10"): (3e-3, 64, 128, 1, 256, 50_000),
    (4, "cifar100"): (3e-3, 64, 128, 1, 256, 50_000),
    (4, "tiny_imagenet"): (2e-3, 128, 256, 1, 256, 100_000),
}
WARMUP_STEPS = 500


def get_config(arg=None):
  a = presets.arguments(arg, epochs=1000.0, datasets=("cifar10", "cifar100", "tiny_imagenet"),
                        views=2, solo=False)
  if (a.views, a.dataset) not in RECIPES:
    raise ValueError(f"configs/cifar10/wmse.py: views={a.views}; the paper has W-MSE 2 and "
                     "W-MSE 4 (views=2 or views=4)")
  if a.solo and (a.views != 2 or a.dataset == "tiny_imagenet"):
    raise ValueError("configs/cifar10/wmse.py:solo is solo-learn's CIFAR W-MSE 2 recipe: "
                     "views=2 and dataset cifar10 or cifar100 only")
  c = config_lib.base_config()
  if a.dataset == "tiny_imagenet":
    presets.tiny_imagenet(c, epochs=a.epochs)
  else:
    presets.cifar(c, dataset=a.dataset, epochs=a.epochs)
  c.method = "wmse" if a.views == 2 else f"wmse{a.views}"
  if a.solo:
    presets.wmse_solo(c, augmentation="wmse_solo")  # Adam's L2 penalty not applied: see Deviations
    return presets.finish(c, a)
  lr, emb, w_size, w_iter, batch, num_train = RECIPES[a.views, a.dataset]
  c.data.batch_size = batch
  c.data.augmentation = "wmse"
  if a.views != 2:
    c.data.num_views = a.views
  presets.heads(c, f"1024-{emb}")
  c.optim.name = "adam"
  c.optim.base_lr = lr
  c.optim.lr_scaling = "none"
  c.optim.schedule = "constant"
  c.optim.warmup_epochs = WARMUP_STEPS / (num_train // batch)
  c.optim.warmup_start_lr = lr / WARMUP_STEPS
  c.loss.terms = {"wmse": {"weight": 1.0, "w_size": w_size, "w_iter": w_iter, "eps": 1e-5}}
  return presets.finish(c, a)
