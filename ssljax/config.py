"""The base config every `configs/<dataset>/<method>.py` starts from, and its validation.

Configs are `ml_collections.ConfigDict`s; `base_config()` lists *every* field
with its default, and is locked so that a typo in a config file or a
``--config.some.key=value`` override fails immediately instead of being
silently ignored.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict


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
  c.data.num_classes = -1      # filled from the dataset registry when < 0
  c.data.cache_in_memory = "auto"
  c.data.worker_count = 0
  # ImageNet: random resized crops cut on the host from the whole JPEG (ssljax/data/crops.py),
  # as in the papers; False: from the centre 256 square, on the device.
  c.data.host_crops = True
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
  c.model.target_init = "copy"  # 'copy' (BYOL) | 'independent' (SSL-HSIC's code)

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
  c.eval.pixel_baseline = False    # also train the probe recipe on raw pixels
  c.eval.plots = True              # loss / accuracy / covariance-spectrum PNGs in workdir/plots
  c.eval.spectrum_examples = 5000  # eval-split images for the embedding covariance spectrum

  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000
  c.checkpoint.keep = 2

  c.parallel = ml_collections.ConfigDict()
  c.parallel.loss_mode = "auto"    # 'auto' (global arrays, XLA collectives) | 'shard_map'

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


def parse_arg(arg: str | None, **defaults):
  """big_vision-style ``'runlocal,epochs=2'`` → ConfigDict of typed values."""
  out = ml_collections.ConfigDict(defaults)
  if not arg:
    return out
  for part in arg.split(","):
    if not part:
      continue
    key, _, value = part.partition("=")
    if key not in defaults:
      raise ValueError(f"unknown config argument {key!r}; valid: {sorted(defaults)}")
    kind = type(defaults[key])
    if not value:
      out[key] = True if kind is bool else value
    elif kind is bool:
      out[key] = value.lower() in ("1", "true", "yes")
    else:
      out[key] = kind(value)
  return out


_ENUMS = {
    "data.augmentation": ("byol", "fashion_mnist", "none", "cifar", "simclr", "vicreg_cifar",
                          "vicreg_solo", "corinfomax"),
    "optim.name": ("lars", "sgd", "adamw", "adam"),
    "optim.lr_scaling": ("linear", "sqrt", "none"),
    "optim.schedule": ("cosine", "constant"),
    "parallel.loss_mode": ("auto", "shard_map"),
    "model.target_init": ("copy", "independent"),
}


def validate(c: ml_collections.ConfigDict, *, num_devices: int | None = None) -> None:
  """Raises ValueError naming the field and the fix for every inconsistent setting."""
  from ssljax import parallel
  from ssljax.train import objectives

  for path, allowed in _ENUMS.items():
    value = c
    for part in path.split("."):
      value = value[part]
    if value not in allowed:
      raise ValueError(f"config.{path}={value!r}; expected one of {list(allowed)}")
  if not c.loss.terms:
    raise ValueError("config.loss.terms is empty: name at least one loss term, e.g. "
                     "config.loss.terms = {'vicreg': {'weight': 1.0}}")
  for name, term_cfg in c.loss.terms.items():
    objectives.split_hparams(name, term_cfg)
  if c.data.batch_size <= 0:
    raise ValueError(f"config.data.batch_size={c.data.batch_size} must be positive")
  if num_devices is not None:
    parallel.check_divisible(c.data.batch_size, num_devices, what="config.data.batch_size")
  if c.total_steps <= 0 and c.num_epochs <= 0:
    raise ValueError("set config.num_epochs > 0 or config.total_steps > 0")
  has_term = "pid_unique" in c.loss.terms
  if c.pid.enabled != has_term:
    raise ValueError("the PID-SSL pipeline needs both config.pid.enabled=True and a 'pid_unique' "
                     "entry in config.loss.terms (e.g. {'pid_unique': {'weight': 1.0}}); "
                     f"got pid.enabled={c.pid.enabled}, pid_unique term={has_term}")
  if c.model.projector_dim <= 0:
    raise ValueError("config.model.projector_dim must be positive")
