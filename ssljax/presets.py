"""Dataset presets and recipe helpers shared by the files in ``configs/``.

A config file's ``get_config(arg)`` parses its argument with `arguments`,
starts from a dataset preset, calls recipe helpers with its row's numbers and
ends with `finish`, which applies the common arguments:

* ``dataset=NAME``: the same recipe on another dataset (only the data change);
* ``runlocal``: the seconds-long smoke shrink (`runlocal`);
* ``pid``: + PID-SSL with the paper's proportions (`add_pid`);
* ``epochs=N``: the pre-training length (read by the dataset preset).

Dataset presets: `fashion_mnist` (the embedded CPU default) and, for the paper
tables (``experiments/paper_tables.md``), `cifar`, `tiny_imagenet`,
`imagenet`; recipe helpers: `solo_learn`, `lars_imagenet`, `corinfomax`,
`heads`, `ema_target`.

Example (as ``--config=configs/cifar10/byol.py:dataset=cifar100,pid,runlocal``):

  >>> from ssljax import configs_util
  >>> c = configs_util.load_config("configs/cifar10/byol.py", "dataset=cifar100,pid,runlocal")
  >>> c.method, c.data.name, c.total_steps, c.pid.enabled
  ('byol+pid', 'cifar100', 4, True)
"""

from __future__ import annotations

import ml_collections


def fashion_mnist(c: ml_collections.ConfigDict, *,
                  epochs: float = 10.0) -> ml_collections.ConfigDict:
  """The embedded CPU default: Fashion-MNIST (offline, Debian package), small ConvNet.

  Sized so the whole run (pretraining + evaluation) takes a few minutes on a
  2-core CPU.
  """
  c.data.name = "fashion_mnist"
  c.data.image_size = 28
  c.data.augmentation = "fashion_mnist"
  # Batch 128 and crop area U[0.7, 1] (instead of 256 and the view preset's U[0.2, 1]): each
  # gave +0.5 to +1.3 points of validation kNN / linear top-1 at a 2-epoch budget (CorInfoMax;
  # experiments/results/demo_sweep.md, validation split held out of the training images).
  c.data.batch_size = 128
  c.data.crop_scale = (0.7, 1.0)
  c.model.encoder = "convnet"
  # (64, 128, 256): at (32, 64, 128) the 10-epoch VICReg probe (83.4%) did not beat raw
  # pixels (83.9%); at this width it reaches 86.0%.
  c.model.encoder_kwargs = ml_collections.ConfigDict({"widths": (64, 128, 256)})
  c.model.projector_hidden = (1024,)
  c.model.projector_dim = 256
  c.num_epochs = epochs
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.weight_decay = 1e-6
  c.optim.warmup_epochs = 1.0
  c.log_every_steps = 50
  c.checkpoint.every_steps = 500
  c.eval.batch_size = 1000
  c.eval.knn_k = 20
  c.eval.linear_epochs = 20
  c.eval.linear_lr = 0.1
  return c


def add_pid(c: ml_collections.ConfigDict, *, warmup_epochs: float, refresh_every_epochs: float,
            num_clusters: int = -1) -> ml_collections.ConfigDict:
  """Turns a baseline config into baseline + PID-SSL (unique-information supervision).

  Mohamadi, Doretto & Adjeroh (arXiv 2412.02121): α(t)·[CE(g(h1), ŷ) +
  CE(g(h2), ŷ)] with k-means pseudo-labels ŷ on un-augmented training images
  (`ssljax.train.pid_ssl`). ``:pid`` calls it with the paper's proportions
  (`PID_FRACTION`); the paper's CIFAR schedule is 100 warm-up epochs and a
  pseudo-label refresh every 100 epochs of 1000, α ramped 1e-5 → 1e-1.
  """
  c.method = f"{c.method}+pid"
  c.pid.enabled = True
  c.pid.warmup_epochs = warmup_epochs
  c.pid.refresh_every_epochs = refresh_every_epochs
  c.pid.num_clusters = num_clusters
  c.loss.terms["pid_unique"] = ml_collections.ConfigDict({"weight": 1.0})
  return c


# ----------------------------------------------------------------------------
# Paper-table presets (configs/{cifar10,cifar100,tiny_imagenet,imagenet100,imagenet}).
# A config file calls one dataset preset, then recipe helpers with its row's
# numbers, then `finish`; see experiments/paper_tables.md for the rows.
# ----------------------------------------------------------------------------

_CIFARS = ("cifar10", "cifar100")
_IMAGENETS = ("imagenet2012", "imagenet100")


def _resnet(c: ml_collections.ConfigDict, name: str, **kwargs) -> None:
  c.model.encoder = name
  c.model.encoder_kwargs = ml_collections.ConfigDict(kwargs)


def _small_image_eval(c: ml_collections.ConfigDict) -> None:
  # Linear: 100 epochs, batch 256 (solo-learn / CorInfoMax linear eval); our
  # probe runs on pre-computed, standardised features, hence its own lr.
  # kNN: the tables (CorInfoMax Table 1, PID-SSL) use W-MSE's 5-NN majority
  # vote (htdt/self-supervised eval/knn.py); T = 1000 makes our weighted
  # cosine kNN an unweighted vote (ties to the nearer neighbours).
  c.eval.batch_size = 1000
  c.eval.knn_k = 5
  c.eval.knn_temperature = 1000.0
  c.eval.linear_epochs = 100
  c.eval.linear_batch_size = 256
  c.eval.linear_lr = 0.1


def cifar(c: ml_collections.ConfigDict, *, dataset: str = "cifar10",
          epochs: float = 1000.0) -> ml_collections.ConfigDict:
  """CIFAR-10/100 at 32x32 with a ResNet-18 CIFAR stem (3x3/1 conv, no max-pool).

  Sets the data, the backbone and the evaluation; the method file sets the
  optimiser (`solo_learn` or `corinfomax`), heads and loss. Views default to
  ``'cifar'`` (solo-learn's CIFAR asymmetric recipe, no blur).

  Args:
    c: a `ssljax.config.base_config()`.
    dataset: ``'cifar10'`` or ``'cifar100'``.
    epochs: pre-training epochs (the tables: 1000).
  """
  if dataset not in _CIFARS:
    raise ValueError(f"presets.cifar: dataset={dataset!r}; use one of {_CIFARS}")
  return _small_images(c, dataset, image_size=32, epochs=epochs)


def tiny_imagenet(c: ml_collections.ConfigDict, *, epochs: float = 1000.0) -> ml_collections.ConfigDict:
  """Tiny-ImageNet (200 classes, 64x64; `ssljax.data.tiny_imagenet`), ResNet-18.

  The backbone is a ResNet-18 with the CIFAR stem (3x3/1 conv, no max-pool),
  the closest of ours to W-MSE's Tiny-ImageNet ResNet-18 (3x3/1 conv; W-MSE's
  ``model.py`` keeps the max-pool there, which we do not have). CorInfoMax
  uses a ResNet-50 with the ImageNet stem instead (set in its file).
  """
  return _small_images(c, "tiny_imagenet", image_size=64, epochs=epochs)


def _small_images(c: ml_collections.ConfigDict, dataset: str, *, image_size: int,
                  epochs: float) -> ml_collections.ConfigDict:
  """CIFAR and Tiny-ImageNet: ResNet-18 CIFAR stem, 'cifar' views, batch 256, the tables' eval."""
  c.data.name = dataset
  c.data.image_size = image_size
  c.data.augmentation = "cifar"
  c.data.batch_size = 256
  _resnet(c, "resnet18", stem="cifar")
  c.num_epochs = epochs
  c.log_every_steps = 100
  c.checkpoint.every_steps = 2000
  _small_image_eval(c)
  return c


def imagenet(c: ml_collections.ConfigDict, *, dataset: str = "imagenet2012",
             epochs: float = 100.0) -> ml_collections.ConfigDict:
  """ImageNet-1K (ResNet-50) or ImageNet-100 (ResNet-18), 224x224 views, BYOL's views.

  Training views are random resized crops of the whole image, cut on the
  host from one decode per image (``config.data.host_crops``,
  `ssljax.data.crops`; area and aspect as the papers); the rest of each
  view's augmentation runs on the device. Evaluation: resize 256, centre 224 crop; linear probe 100 epochs,
  batch 256 on pre-computed features (the papers re-augment every epoch);
  weighted kNN k = 200, T = 0.1 (a monitor; the ImageNet tables report
  linear top-1 only).
  """
  if dataset not in _IMAGENETS:
    raise ValueError(f"presets.imagenet: dataset={dataset!r}; use one of {_IMAGENETS}")
  c.data.name = dataset
  c.data.image_size = 224
  c.data.augmentation = "byol"
  c.data.batch_size = 256
  _resnet(c, "resnet50" if dataset == "imagenet2012" else "resnet18", stem="imagenet")
  c.num_epochs = epochs
  c.log_every_steps = 100
  c.checkpoint.every_steps = 1000
  c.eval.batch_size = 500
  c.eval.knn_k = 200
  c.eval.knn_temperature = 0.1
  c.eval.linear_epochs = 100
  c.eval.linear_batch_size = 256
  c.eval.linear_lr = 0.1
  return c


def heads(c: ml_collections.ConfigDict, projector: str, *, predictor: str = "", bn: bool = True,
          last_bias: bool = True) -> ml_collections.ConfigDict:
  """Projector / predictor from the papers' ``"h1-h2-D"`` width strings.

  Args:
    c: the config.
    projector: e.g. ``"2048-2048-2048"``: hidden widths then the output width.
    predictor: e.g. ``"4096-256"``; empty for none.
    bn: BatchNorm after each hidden Linear (both heads).
    last_bias: bias in the output Linear (both heads).
  """
  *hidden, dim = (int(w) for w in projector.split("-"))
  c.model.projector_hidden = tuple(hidden)
  c.model.projector_dim = dim
  c.model.projector_bn = bn
  c.model.projector_last_bias = last_bias
  if predictor:
    *p_hidden, p_dim = (int(w) for w in predictor.split("-"))
    c.model.predictor_hidden = tuple(p_hidden)
    c.model.predictor_dim = p_dim
  return c


def ema_target(c: ml_collections.ConfigDict, tau_base: float, *,
               init: str = "copy") -> ml_collections.ConfigDict:
  """EMA target network, τ from ``tau_base`` to 1 along BYOL's cosine."""
  c.model.use_target = True
  c.model.target_ema = tau_base
  c.model.target_init = init
  return c


def wmse_solo(c: ml_collections.ConfigDict, *, augmentation: str) -> ml_collections.ConfigDict:
  """solo-learn's W-MSE recipe (``scripts/pretrain/*/wmse.yaml``) on top of a dataset preset.

  Adam 2e-3 (torch Adam's 1e-6 L2 penalty is not applied), projector
  1024-64, W-MSE with ``w_size`` 128, ``w_iter`` 1, eps 1e-5.
  """
  solo_learn(c, base_lr=2e-3, weight_decay=1e-6)
  c.optim.name = "adam"
  c.optim.warmup_start_lr = 0.0
  c.data.augmentation = augmentation
  heads(c, "1024-64")
  c.loss.terms = {"wmse": {"weight": 1.0, "w_size": 128, "w_iter": 1, "eps": 1e-5}}
  return c


def solo_learn(c: ml_collections.ConfigDict, *, base_lr: float,
               weight_decay: float) -> ml_collections.ConfigDict:
  """solo-learn's optimiser for its CIFAR / ImageNet-100 recipes.

  LARS (momentum 0.9, η = 0.02, biases and BN excluded), peak lr
  ``base_lr · B/256`` (``solo/args/pretrain.py``), 10 warm-up epochs from
  3e-5 then cosine to 0, stepped per step (``solo/methods/base.py``
  defaults). Not reproduced: LARS ``clip_lr`` (the adaptive lr is not
  capped at the global lr). Mixed precision: solo-learn's yamls train with
  ``precision: 16`` (PyTorch AMP fp16, e.g.
  ``scripts/pretrain/imagenet-100/vicreg.yaml``); the accelerator analogue
  here is ``model.dtype='bfloat16'`` (no loss scaling needed;
  ``docs/mixed_precision.md``). On CIFAR, solo-learn's stem conv has padding 2
  (``solo/methods/base.py``), set here.

  The CIFAR-10 files also run on CIFAR-100 and Tiny-ImageNet
  (``:dataset=...``) with only the data changed: solo-learn runs its
  CIFAR-10 yamls on CIFAR-100 that way ("change here for cifar100"); no
  published Tiny-ImageNet recipe exists for these methods in solo-learn or in
  the papers' code, so running them on 64x64 images is OUR CHOICE (W-MSE's
  Tiny-ImageNet runs use Adam, lr 2e-3, and a 3x3 stem that keeps the
  max-pool, ``model.py``).
  """
  c.optim.name = "lars"
  c.optim.base_lr = base_lr
  c.optim.lr_scaling = "linear"
  c.optim.weight_decay = weight_decay
  c.optim.momentum = 0.9
  c.optim.trust_coefficient = 0.02
  c.optim.warmup_epochs = 10.0
  c.optim.warmup_start_lr = 3e-5
  c.optim.schedule = "cosine"
  c.optim.min_lr = 0.0
  c.model.dtype = "bfloat16"
  if c.data.name in _CIFARS:
    c.model.encoder_kwargs.stem_padding = 2
  return c


def lars_imagenet(c: ml_collections.ConfigDict, *, batch_size: int, base_lr: float,
                  weight_decay: float, end_lr_fraction: float = 0.0) -> ml_collections.ConfigDict:
  """The official ImageNet LARS recipes (BYOL, SimCLR, Barlow Twins, VICReg, SSL-HSIC).

  LARS (momentum 0.9, η = 1e-3, biases and BN excluded), peak lr
  ``base_lr · B/256``, 10 warm-up epochs from 0, cosine to
  ``end_lr_fraction`` × peak (0 for BYOL / SimCLR / SSL-HSIC, 0.001 for
  Barlow Twins / VICReg). ResNet-50 with zero-init residual BN (all four
  codes do it). Compute dtype from `IMAGENET_DTYPES` by ``c.method`` (set
  ``c.method`` first).
  """
  c.data.batch_size = batch_size
  c.optim.name = "lars"
  c.optim.base_lr = base_lr
  c.optim.lr_scaling = "linear"
  c.optim.weight_decay = weight_decay
  c.optim.momentum = 0.9
  c.optim.trust_coefficient = 1e-3
  c.optim.warmup_epochs = 10.0
  c.optim.warmup_start_lr = 0.0
  c.optim.schedule = "cosine"
  # optim.min_lr is absolute: recompute it when overriding --config.data.batch_size.
  c.optim.min_lr = end_lr_fraction * base_lr * batch_size / 256.0
  c.model.encoder_kwargs.zero_init_residual = True
  c.model.dtype = IMAGENET_DTYPES.get(c.method.removesuffix("_no_target"), "float32")
  return c


# The compute dtype of each ImageNet-1K LARS recipe, as its official code trains
# (docs/mixed_precision.md has the sources): bf16 where the code computes in half
# precision, float32 where it does not or where we have not checked.
IMAGENET_DTYPES = {
    "byol": "bfloat16",          # deepmind-research/byol (JAX, TPU): bf16 compute, f32 params
    "ssl_hsic": "bfloat16",      # deepmind/ssl_hsic: BYOL's JAX pipeline
    "barlow_twins": "bfloat16",  # facebookresearch/barlowtwins main.py: torch.cuda.amp.autocast
    "vicreg": "float32",         # not checked
    "simclr": "float32",         # not checked
}


def corinfomax(c: ml_collections.ConfigDict, *, batch_size: int, projector: str, alpha: float,
               la: float, base_lr: float, min_lr: float, warmup_epochs: float = 10.0,
               projector_bn: bool = False) -> ml_collections.ConfigDict:
  """The official CorInfoMax set-up; the arguments are the row's README command.

  Shared by every run of ``serdarozsoy/corinfomax-ssl`` (README commands and
  the parser defaults of each folder): plain SGD (momentum 0.9, weight decay
  1e-4 on every parameter), lr NOT scaled by the batch, linear warm-up from
  3e-3 then cosine to ``min_lr``; ε = 1e-8, R_ini = 1, λ_R = λ_μ = ``la``,
  L2-normalised outputs (in the kernel); projector "h1-h2-D" whose last
  Linear has no bias, BatchNorm only in the ImageNet-1K model; backbone with
  zero-init residual BN; the 'corinfomax' views; float32 (the CIFAR /
  Tiny-ImageNet code has no autocast; the ImageNet-1K code has an optional
  ``amp`` flag, off unless passed). Deviation: the official scheduler steps
  once per epoch, ours per step.
  """
  c.data.batch_size = batch_size
  c.data.augmentation = "corinfomax"
  c.model.encoder_kwargs.zero_init_residual = True
  heads(c, projector, bn=projector_bn, last_bias=False)
  c.optim.name = "sgd"
  c.optim.base_lr = base_lr
  c.optim.lr_scaling = "none"
  c.optim.weight_decay = 1e-4
  c.optim.decay_all = True
  c.optim.momentum = 0.9
  c.optim.warmup_epochs = warmup_epochs
  c.optim.warmup_start_lr = 3e-3
  c.optim.schedule = "cosine"
  c.optim.min_lr = min_lr
  c.model.dtype = "float32"
  c.loss.terms = {"corinfomax": {"weight": 1.0, "alpha": alpha, "la_R": la, "la_mu": la,
                                 "eps": 1e-8, "r_init": 1.0}}
  return c


def vit(c: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """Swaps the backbone for a ViT (``'vit_tiny' | 'vit_small' | 'vit_base'``) with its optimiser.

  Backbone: `ssljax.models.ViT` with the CLS token, patch 16 (patch 4 for
  views of at most 32 px, patch 8 up to 64 px: our choice, so that CIFAR and
  Tiny-ImageNet give 64 tokens). Optimiser: solo-learn's ViT recipe for
  ImageNet-100 (``scripts/pretrain/imagenet-100/mocov3_vit.yaml``, the one
  ViT-S yaml with a tuned optimiser): AdamW, lr 3e-4 × B/256 (solo-learn
  scales every lr by the global batch / 256), weight decay 0.1, warm-up
  cosine (10 epochs from 3e-5, to 0), as `solo_learn`'s schedule. Applying it
  to VICReg, BYOL, CorInfoMax and SSL-HSIC (whose papers have no ViT recipe) is
  OUR CHOICE; the method's loss, heads, views, batch and dtype are kept.
  Weight decay skips 1-D parameters (biases, LayerNorm; `optim.decay_mask`)
  but, unlike timm's ``no_weight_decay`` list, decays the CLS token and the
  position embedding.
  """
  from ssljax import models  # pylint: disable=g-import-not-at-top
  if not name.startswith("vit_") or name not in models.ENCODERS:
    raise ValueError(f"presets.vit: {name!r} is not a ViT; use one of "
                     f"{sorted(k for k in models.ENCODERS if k.startswith('vit_'))}")
  size = c.data.image_size
  patch = 4 if size <= 32 else 8 if size <= 64 else 16
  c.model.encoder = name
  c.model.encoder_kwargs = ml_collections.ConfigDict({"patch_size": patch, "pool": "cls"})
  c.optim.name = "adamw"
  c.optim.base_lr = 3e-4
  c.optim.lr_scaling = "linear"
  c.optim.weight_decay = 0.1
  c.optim.warmup_epochs = 10.0
  c.optim.warmup_start_lr = 3e-5
  c.optim.schedule = "cosine"
  c.optim.min_lr = 0.0
  return c


# ----------------------------------------------------------------------------
# The arguments every config file accepts (``configs/<dataset>/<method>.py:arg``).
# ----------------------------------------------------------------------------

PID_FRACTION = 0.1  # PID-SSL warm-up and refresh period, as a fraction of the run


def arguments(arg: str | None, *, epochs: float, datasets: tuple[str, ...],
              **extra) -> ml_collections.ConfigDict:
  """Parses a config file's argument: the common ones plus the file's own ``extra``.

  Common arguments, composable in any order (``'pid,runlocal,epochs=2'``):
  ``runlocal``, ``pid``, ``epochs=N`` (default ``epochs``), ``val`` (evaluate on
  a validation split held out of the training split, as many records as the
  test split: for choosing hyper-parameters; `validation`),
  ``dataset=NAME``, one of ``datasets`` (``datasets[0]`` is the file's own
  dataset, the others run its recipe with only the data changed), and
  ``encoder=vit_small`` (or ``vit_tiny`` / ``vit_base``: the recipe with a
  ViT backbone and its optimiser, `vit`); see `finish`.

  Args:
    arg: the text after the colon of ``--config=file.py:arg`` (None or '' for none).
    epochs: the recipe's pre-training epochs.
    datasets: the datasets the file's recipe supports, its own first.
    **extra: the file's own arguments and their defaults (their type is the
      parsed type; booleans are flags).
  Returns:
    A ConfigDict of the arguments.
  Raises:
    ValueError: an unknown argument, or a dataset not in ``datasets``.

  >>> a = arguments("runlocal,epochs=2", epochs=1000.0, datasets=("cifar10", "cifar100"))
  >>> a.runlocal, a.pid, a.epochs, a.dataset
  (True, False, 2.0, 'cifar10')
  """
  from ssljax import config as config_lib  # pylint: disable=g-import-not-at-top
  a = config_lib.parse_arg(arg, runlocal=False, pid=False, epochs=float(epochs),
                           dataset=datasets[0], encoder="", val=False, **extra)
  if a.dataset not in datasets:
    raise ValueError(f"config argument dataset={a.dataset!r} is not supported by this config "
                     f"file; valid: {list(datasets)}")
  return a


def runlocal(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The ``runlocal`` smoke shrink of every config: the same recipe, a run of seconds on a CPU.

  Keeps every setting but the sizes: 4 steps of batch 32, a width-8 backbone
  (the ConvNet: stages (8, 16); a ViT: 2 blocks of width 16), heads of at most 64 hidden / 32 output
  units, views of at most 64 px and 2000-example evaluation sets.
  """
  c.total_steps = 4
  c.data.batch_size = 32
  c.data.image_size = min(c.data.image_size, 64)
  if c.model.encoder == "convnet":
    c.model.encoder_kwargs.widths = (8, 16)
  elif c.model.encoder.startswith("vit_"):
    c.model.encoder_kwargs.update({"embed_dim": 16, "depth": 2, "num_heads": 2})
  else:
    c.model.encoder_kwargs.width = 8
  c.model.projector_hidden = tuple(min(h, 64) for h in c.model.projector_hidden)
  c.model.projector_dim = min(c.model.projector_dim, 32)
  c.model.predictor_hidden = tuple(min(h, 64) for h in c.model.predictor_hidden)
  c.model.predictor_dim = min(c.model.predictor_dim, 32)
  c.log_every_steps = 2
  c.checkpoint.every_steps = 2
  c.eval.batch_size = 500
  c.eval.knn_train_examples = 2000
  c.eval.linear_train_examples = 2000
  c.eval.linear_epochs = 2
  c.eval.linear_batch_size = 256
  return c


def validation(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Evaluates on a validation split held out of the training split (the ``val`` argument).

  Holds out as many labelled training records as the dataset's test split has
  (Fashion-MNIST: the last 10,000 of the 60,000), pre-trains and fits the
  probes on the rest, and reports every evaluation on the held-out records:
  hyper-parameters are chosen on them, never on the test split
  (`ssljax.data.datasets.with_validation_holdout`).
  """
  from ssljax.data import datasets  # pylint: disable=g-import-not-at-top
  c.data.validation_holdout = datasets.get_dataset_info(c.data.name).num_eval
  return c


def finish(c: ml_collections.ConfigDict, a: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Ends every ``get_config``: applies the common arguments ``a`` (from `arguments`), then locks.

  In order: ``dataset`` (only ``data.name`` and the view size of
  `ssljax.data.datasets` change; backbone, heads, optimiser, epochs and
  evaluation stay the recipe's), ``encoder`` (`vit`), ``runlocal``
  (`runlocal`), ``val`` (`validation`), ``pid`` (`add_pid`, warm-up and refresh every `PID_FRACTION`
  of the run).
  """
  from ssljax import config as config_lib  # pylint: disable=g-import-not-at-top
  from ssljax.data import datasets  # pylint: disable=g-import-not-at-top
  c.unlock()
  if a.dataset != c.data.name:
    c.data.name = a.dataset
    c.data.image_size = datasets.get_dataset_info(a.dataset).view_size
  if a.encoder:
    vit(c, a.encoder)
  if a.runlocal:
    runlocal(c)
  if a.val:
    validation(c)
  if a.pid:
    # A runlocal run counts steps, not epochs: proportions of one epoch.
    epochs = c.num_epochs if c.total_steps <= 0 else 1.0
    add_pid(c, warmup_epochs=PID_FRACTION * epochs, refresh_every_epochs=PID_FRACTION * epochs)
  return config_lib.finalize(c)
