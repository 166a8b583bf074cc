"""The base config every `configs/<dataset>/<method>.py` starts from, and its validation.

Configs are `ml_collections.ConfigDict`s; `base_config()` lists *every* field
with its default, and is locked so that a typo in a config file or a
``--config.some.key=value`` override fails immediately instead of being
silently ignored.
"""

from __future__ import annotations

from typing import Mapping, TypeVar

import ml_collections
from ml_collections import config_dict

from ssljax import errors

T = TypeVar("T")


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.num_epochs = 10.0          # pretraining length; `total_steps` > 0 overrides it
  c.total_steps = -1
  c.log_every_steps = 50
  c.method = ""                # informational: the method name shown in tables

  c.data = ml_collections.ConfigDict()
  c.data.name = "fashion_mnist"
  c.data.data_dir = config_dict.placeholder(str)
  c.data.batch_size = 256      # GLOBAL batch, split over every device of every process
  c.data.image_size = 28       # side of the augmented views
  c.data.augmentation = "fashion_mnist"   # view preset: 'byol' | 'fashion_mnist' | 'none' |
  # the papers' recipes 'cifar' | 'simclr' | 'vicreg_cifar' | 'vicreg_solo' | 'corinfomax'
  c.data.num_classes = -1      # -1: the dataset's (resolved into RunSetup.num_classes)
  c.data.cache_in_memory = "auto"
  c.data.worker_count = config_dict.placeholder(int)  # grain workers; None: auto (loader.resolve_worker_count)
  # ImageNet: random resized crops cut on the host from the whole JPEG (ssljax/data/crops.py),
  # as in the papers; False: from the centre 256 square, on the device.
  c.data.host_crops = True
  # Their resize to the view size: 'opencv' (bicubic without antialiasing, as BYOL/SimCLR's TF
  # code; ~10x faster) | 'pillow' (antialiased, as torchvision on PIL images: solo-learn, VICReg).
  c.data.host_resize = "opencv"
  c.data.crop_scale = config_dict.placeholder(tuple)  # overrides the preset's crop area range
  # > 2: that many views of each image, the preset's views repeated in turn (W-MSE 4: 4);
  # None: the preset's own views (2, or multi-crop's 2 + M).
  c.data.num_views = config_dict.placeholder(int)
  # > 0: hold out that many labelled training records and evaluate on them instead of the
  # test split (hyper-parameter choice; `datasets.with_validation_holdout`, config argument `val`).
  c.data.validation_holdout = 0
  c.data.image_folder = config_dict.placeholder(str)  # <root> of train/<wnid>/, val/<wnid>/

  c.model = ml_collections.ConfigDict()
  c.model.encoder = "convnet"
  c.model.encoder_kwargs = ml_collections.ConfigDict()
  c.model.projector_hidden = (512,)
  c.model.projector_dim = 128
  c.model.projector_bn = True
  c.model.projector_last_bias = True
  c.model.predictor_hidden = ()
  c.model.predictor_dim = 0
  c.model.variance_head = False
  c.model.use_target = False
  c.model.target_ema = 0.99
  c.model.target_ema_end = 1.0          # where the cosine schedule ends (BYOL: 1)
  c.model.target_ema_schedule = "cosine"  # 'cosine' (BYOL) | 'constant' (MoCo)
  c.model.target_init = "copy"  # 'copy' (BYOL) | 'independent' (SSL-HSIC's code)
  # Compute dtype of the network: 'float32' | 'bfloat16' (parameters, optimiser state and
  # BatchNorm statistics stay float32; the losses compute in float32). docs/mixed_precision.md
  c.model.dtype = "float32"

  c.loss = ml_collections.ConfigDict()
  c.loss.terms = ml_collections.ConfigDict()

  c.optim = ml_collections.ConfigDict()
  c.optim.name = "lars"
  c.optim.base_lr = 0.3
  c.optim.lr_scaling = "linear"
  c.optim.weight_decay = 1e-6
  c.optim.momentum = 0.9
  c.optim.trust_coefficient = 1e-3
  c.optim.warmup_epochs = 1.0
  c.optim.warmup_start_lr = 0.0
  c.optim.schedule = "cosine"
  c.optim.min_lr = 0.0
  c.optim.grad_clip_norm = 0.0
  c.optim.decay_all = False
  c.optim.loss_params_lr = 3e-4
  # Learnable loss parameters: 'adam' = Adam(loss_params_lr) (SSL-HSIC's kernel scale);
  # 'ssl' = the network's optimiser and schedule (SwAV's prototypes, under LARC officially).
  c.optim.loss_params_optimizer = "adam"

  c.probe = ml_collections.ConfigDict()
  c.probe.learning_rate = 1e-3
  c.probe.weight_decay = 0.0

  c.eval = ml_collections.ConfigDict()
  c.eval.every_steps = 0        # 0: only at the end
  c.eval.batch_size = 1000
  c.eval.knn_k = 200
  c.eval.knn_temperature = 0.1
  c.eval.knn_train_examples = -1   # -1: the whole training split as the kNN bank
  c.eval.linear = True             # offline linear probe at the end
  c.eval.linear_epochs = 30
  c.eval.linear_lr = 0.1
  c.eval.linear_batch_size = 256
  c.eval.linear_train_examples = -1
  c.eval.pixel_baseline = False    # also run the kNN and linear-probe recipe on raw pixels
  c.eval.random_init_baseline = False  # ... and on the untrained encoder (what pre-training added)
  c.eval.plots = True              # loss / accuracy / covariance-spectrum PNGs in workdir/plots
  c.eval.spectrum_examples = 5000  # eval-split images for the embedding covariance spectrum
  # Transfer evaluation (--mode=evaluate): kNN + linear probe on another dataset, its
  # images resized to the view size ('' = the pretraining dataset).
  c.eval.dataset = ""
  c.eval.data_dir = config_dict.placeholder(str)
  c.eval.image_folder = config_dict.placeholder(str)

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000
  c.checkpoint.keep = 2

  c.parallel = ml_collections.ConfigDict()
  c.parallel.loss_mode = "auto"    # 'auto' (global arrays, XLA collectives) | 'shard_map'
  c.parallel.fsdp = False          # shard params / optimiser state over 'data' (ZeRO-3)
  c.parallel.fsdp_min_size = 2**14  # arrays with fewer elements stay replicated under fsdp

  c.distributed = ml_collections.ConfigDict()
  c.distributed.initialize = False
  c.distributed.coordinator_address = ""
  c.distributed.num_processes = 0
  c.distributed.process_id = -1
  c.distributed.local_device_ids = config_dict.placeholder(str)

  # PID-SSL pipeline (ssljax/train/pid_ssl.py); add the 'pid_unique' term too.
  c.pid = ml_collections.ConfigDict()
  c.pid.enabled = False
  c.pid.num_clusters = -1           # -1: the number of classes
  c.pid.warmup_epochs = 100.0       # phase 1 (baseline only)
  c.pid.refresh_every_epochs = 100.0
  c.pid.alpha_start = 1e-5
  c.pid.alpha_end = 1e-1
  c.pid.ramp = "geometric"          # 'geometric' | 'linear' | 'cosine' | 'constant'
  c.pid.ramp_epochs = -1.0          # -1: until the end of training
  c.pid.kmeans_iters = 100

  # PID monitor: PID atoms of (view-1 embedding, view-2 embedding; label).
  c.pid_monitor = ml_collections.ConfigDict()
  c.pid_monitor.every_steps = 0     # 0: off
  c.pid_monitor.num_examples = 2048
  c.pid_monitor.dim = 8             # Gaussian estimator: PCA dimension per view
  c.pid_monitor.num_clusters = 8    # discrete estimator: k-means symbols per view
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Locks ``c`` so unknown keys raise (call at the end of each `get_config`)."""
  c.lock()
  return c


def parse_arg(arg: str | None, **defaults) -> ml_collections.ConfigDict:
  """big_vision-style ``'runlocal,epochs=2'`` → ConfigDict of typed values.

  Each comma-separated part is ``key=value`` (parsed as the default's type)
  or a bare ``key`` (a boolean flag set to True). Config files call it
  through `ssljax.presets.arguments`, which adds the arguments every file
  accepts.

  >>> a = parse_arg("runlocal,epochs=2", runlocal=False, epochs=10.0)
  >>> a.runlocal, a.epochs
  (True, 2.0)
  """
  out = ml_collections.ConfigDict(defaults)
  for part in (arg or "").split(","):
    if not part:
      continue
    key, _, value = part.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config argument {key!r}; valid: {sorted(defaults)}")
    kind = type(defaults[key])
    if kind is bool:
      if value.lower() not in ("", "1", "true", "yes", "0", "false", "no"):
        raise ValueError(f"config argument {part!r}: expected a boolean, e.g. {key} or {key}=false")
      out[key] = value.lower() in ("", "1", "true", "yes")
    elif not value:
      raise ValueError(f"config argument {key!r} needs a value: {key}=...")
    else:
      try:
        out[key] = kind(value)
      except ValueError:
        raise ValueError(f"config argument {part!r}: expected a {kind.__name__}") from None
  return out


def choose(table: Mapping[str, T], value: str, field: str) -> T:
  """``table[value]``, or a ValueError naming the config ``field`` and the valid values.

  Every enumerated config field is validated where its table lives (the
  optimisers in `ssljax.train.optim`, the view presets in
  `ssljax.data.augment`, ...), so the list of valid values exists once.

  >>> choose({"sgd": 1, "adam": 2}, "adam", "config.optim.name")
  2
  >>> choose({"sgd": 1, "adam": 2}, "lamb", "config.optim.name")
  Traceback (most recent call last):
  ...
  ssljax.errors.ConfigError: config.optim.name='lamb'; expected one of ['adam', 'sgd']
  """
  if value not in table:
    raise errors.ConfigError(f"{field}={value!r}; expected one of {sorted(table)}")
  return table[value]


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the field and the fix for settings that are wrong on their own.

  Checks that need other tables (loss-term names and keys, enumerated fields,
  the device count) happen when `ssljax.train.setup.build` resolves the config.
  """
  if not c.loss.terms:
    raise errors.ConfigError("config.loss.terms is empty: name at least one loss term, e.g. "
                     "config.loss.terms = {'vicreg': {'weight': 1.0}}")
  if c.data.batch_size <= 0:
    raise errors.ConfigError(f"config.data.batch_size={c.data.batch_size} must be positive")
  if c.total_steps <= 0 and c.num_epochs <= 0:
    raise errors.ConfigError("set config.num_epochs > 0 or config.total_steps > 0")
  has_term = "pid_unique" in c.loss.terms
  if c.pid.enabled != has_term:
    raise errors.ConfigError("the PID-SSL pipeline needs both config.pid.enabled=True and a 'pid_unique' "
                     "entry in config.loss.terms (e.g. {'pid_unique': {'weight': 1.0}}); "
                     f"got pid.enabled={c.pid.enabled}, pid_unique term={has_term}")
  if c.model.projector_dim <= 0:
    raise errors.ConfigError("config.model.projector_dim must be positive")
