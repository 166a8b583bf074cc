"""``experiments/paper_tables.md`` against the config files, plus pinned paper hyper-parameters.

Every row whose Config column is a config string (``file.py[:args]``) must
load, and its dataset, backbone, global batch and epochs must equal the
table's columns; every config file under the paper-table folders must appear
in the table; the measured column must stay empty. The spot checks pin values
written in the papers / official code (see each config's docstring), so a
changed config fails here. No train step is built here (tests/test_configs.py
does that for every config string of the table).
"""

from __future__ import annotations

import functools
import os
import re

import pytest

from ssljax import configs_util
from ssljax.train import step as step_lib

TABLE = os.path.join(configs_util.REPO_ROOT, "experiments", "paper_tables.md")
DIRS = ("cifar10", "cifar100", "tiny_imagenet", "imagenet100", "imagenet")
DATASETS = {"CIFAR-10": "cifar10", "CIFAR-100": "cifar100", "Tiny-ImageNet": "tiny_imagenet",
            "ImageNet-100": "imagenet100", "ImageNet-1K": "imagenet2012"}
BACKBONES = {"ResNet-18": "resnet18", "ResNet-50": "resnet50", "ViT-S/16": "vit_small",
             "ViT-B/16": "vit_base"}
MEASURED = "—, needs an accelerator"
CONFIG_RE = re.compile(r"^`(configs/[\w/]+\.py)(?::([\w=,.]+))?`$")


def parse_rows(text: str) -> list[dict[str, str]]:
  """Rows of every markdown table whose header has a 'Config' column."""
  rows, header = [], None
  for line in text.splitlines():
    if not line.startswith("|"):
      header = None
      continue
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if header is None:
      header = cells
    elif set("".join(cells)) <= set("-: "):
      continue
    elif "Config" in header:
      assert len(cells) == len(header), line
      rows.append(dict(zip(header, cells)))
  return rows


@functools.lru_cache(maxsize=None)
def load(path: str, arg: str | None):
  return configs_util.load_config(path, arg)


def config_rows():
  with open(TABLE, encoding="utf-8") as f:
    rows = parse_rows(f.read())
  return [r for r in rows if CONFIG_RE.match(r["Config"])]


def test_table_parses_and_measured_column_is_empty():
  with open(TABLE, encoding="utf-8") as f:
    rows = parse_rows(f.read())
  assert len(rows) >= 90
  header = ("Table", "Dataset", "Method", "Backbone", "Epochs", "Batch", "Reported top-1", "Config",
            "Measured top-1")
  for row in rows:
    assert tuple(row) == header
    assert row["Measured top-1"] == MEASURED, row  # Never a number we did not measure.
    cfg = row["Config"]
    assert (CONFIG_RE.match(cfg) or cfg.startswith(("not implemented", "not configured"))
            or cfg == "recipe unknown"), cfg
    if not CONFIG_RE.match(cfg):
      assert row["Epochs"] == row["Batch"] == "—", row


@pytest.mark.parametrize("row", config_rows(), ids=lambda r: f"{r['Config']}:{r['Method']}")
def test_row_matches_its_config(row):
  path, arg = CONFIG_RE.match(row["Config"]).groups()
  assert os.path.isfile(os.path.join(configs_util.REPO_ROOT, path)), path
  c = load(path, arg)
  # A transfer row ("ImageNet-1K → CIFAR-10") pre-trains on the dataset before the arrow.
  assert c.data.name == DATASETS[row["Dataset"].split(" → ")[0]], row
  assert c.model.encoder == BACKBONES[row["Backbone"]], row
  assert c.data.batch_size == int(row["Batch"]), row
  assert c.num_epochs == float(row["Epochs"]), row
  assert c.total_steps <= 0, row
  method = row["Method"].lower()
  assert ("+pid" in c.method) == ("+ pid" in method), row
  assert ("no_target" in c.method) == ("w/o target" in method), row


def test_every_paper_config_is_in_the_table():
  listed = {CONFIG_RE.match(r["Config"]).group(1) for r in config_rows()}
  files = {p for p in configs_util.config_files() if p.split(os.sep)[1] in DIRS}
  assert len(files) >= 20 and len({r["Config"] for r in config_rows()}) >= 50
  assert files == listed, (sorted(files - listed), sorted(listed - files))


# ----------------------------------------------------------------------------
# Spot checks of paper / official-code hyper-parameters.
# ----------------------------------------------------------------------------

# (file, batch, epochs, projector hidden, projector dim, α, λ, base lr, min lr, warm-up,
# projector BN): serdarozsoy/corinfomax-ssl README commands.
CORINFOMAX = [
    ("cifar10", 512, 1000, (2048, 2048), 64, 250.0, 0.01, 0.5, 1e-6, 10.0, False),
    ("cifar100", 512, 1000, (4096, 4096), 128, 1000.0, 0.01, 0.5, 1e-6, 10.0, False),
    ("tiny_imagenet", 1024, 800, (4096, 4096), 128, 500.0, 0.1, 0.5, 1e-6, 10.0, False),
    ("imagenet100", 1024, 400, (4096, 4096), 128, 500.0, 0.01, 1.0, 5e-3, 10.0, False),
    ("imagenet100/corinfomax_resnet50", 1024, 200, (4096, 4096), 128, 500.0, 0.01, 1.0, 5e-3,
     5.0, False),
    ("imagenet", 1536, 100, (8192, 8192), 512, 2000.0, 0.1, 0.2, 1e-6, 10.0, True),
]


@pytest.mark.parametrize("row", CORINFOMAX, ids=lambda r: r[0])
def test_corinfomax_official_hyper_parameters(row):
  name, batch, epochs, hidden, dim, alpha, la, lr, min_lr, warmup, bn = row
  path = f"configs/{name}.py" if "/" in name else f"configs/{name}/corinfomax.py"
  c = load(path, None)
  t = c.loss.terms.corinfomax
  assert (t.alpha, t.la_R, t.la_mu, t.eps, t.r_init) == (alpha, la, la, 1e-8, 1.0)
  assert (c.data.batch_size, c.num_epochs) == (batch, epochs)
  assert (c.model.projector_hidden, c.model.projector_dim) == (hidden, dim)
  assert c.model.projector_bn == bn and not c.model.projector_last_bias
  assert (c.optim.name, c.optim.lr_scaling, c.optim.base_lr, c.optim.min_lr) == (
      "sgd", "none", lr, min_lr)
  assert (c.optim.weight_decay, c.optim.decay_all, c.optim.momentum) == (1e-4, True, 0.9)
  assert (c.optim.warmup_epochs, c.optim.warmup_start_lr) == (warmup, 3e-3)
  assert c.data.augmentation == "corinfomax" and c.model.encoder_kwargs.zero_init_residual
  if name in ("cifar10", "cifar100"):
    assert c.model.encoder_kwargs.stem == "cifar" and "stem_padding" not in c.model.encoder_kwargs
  if name == "tiny_imagenet":  # ResNet-50 with the standard stem on 64x64 (README command).
    assert c.model.encoder == "resnet50" and c.model.encoder_kwargs.stem == "imagenet"


def test_ssl_hsic_imagenet_hyper_parameters():
  c = load("configs/imagenet/ssl_hsic.py", None)
  t = c.loss.terms.ssl_hsic
  assert (t.gamma, t.num_rff_features, t.kernel, t.estimator) == (3.0, 512, "imq", "rff")
  assert (c.data.batch_size, c.num_epochs, c.model.encoder) == (4096, 1000.0, "resnet50")
  assert (c.model.projector_hidden, c.model.projector_dim) == ((4096,), 256)
  assert (c.model.predictor_hidden, c.model.predictor_dim) == ((4096,), 256)
  assert not c.model.projector_last_bias
  assert (c.model.use_target, c.model.target_ema, c.model.target_init) == (True, 0.99,
                                                                         "independent")
  o = c.optim
  assert (o.name, o.base_lr, o.lr_scaling, o.weight_decay, o.trust_coefficient) == (
      "lars", 0.4, "linear", 1e-6, 1e-3)
  assert (o.warmup_epochs, o.min_lr, o.loss_params_lr) == (10.0, 0.0, 3e-4)
  assert (c.eval.linear_epochs, c.eval.linear_batch_size) == (90, 4096)
  nt = load("configs/imagenet/ssl_hsic.py", "no_target")
  assert not nt.model.use_target and nt.model.predictor_dim == 0
  assert nt.loss.terms.to_dict() == c.loss.terms.to_dict()


def test_vicreg_coefficients():
  # Official form (25 / 25 / 1, variance averaged over the branches) on ImageNet ...
  t = load("configs/imagenet/vicreg.py", None).loss.terms.vicreg
  assert (t.sim_coeff, t.std_coeff, t.cov_coeff) == (25.0, 25.0, 1.0)
  # ... and solo-learn's 25 / 25 / 1 with the variance SUMMED over the branches
  # (solo/losses/vicreg.py) = 25 / 50 / 1 in the official form, on CIFAR / ImageNet-100.
  for path, arg in (("configs/cifar10/vicreg.py", None),
                    ("configs/cifar10/vicreg.py", "dataset=cifar100"),
                    ("configs/imagenet100/vicreg.py", None)):
    t = load(path, arg).loss.terms.vicreg
    assert (t.sim_coeff, t.std_coeff, t.cov_coeff) == (25.0, 50.0, 1.0), (path, arg)
  c = load("configs/cifar10/vicreg.py", None)
  assert (c.model.projector_hidden, c.model.projector_dim) == ((2048, 2048), 2048)
  assert c.data.augmentation == "vicreg_cifar"


def test_solo_learn_cifar_recipes():
  expected = {  # solo-learn scripts/pretrain/cifar/*.yaml: (lr, wd, views, head).
      "simclr": (0.4, 1e-4, "simclr", (2048,), 256),
      "byol": (1.0, 1e-5, "cifar", (4096,), 256),
      "barlow_twins": (0.3, 1e-4, "cifar", (2048, 2048), 2048),
      "vicreg": (0.3, 1e-4, "vicreg_cifar", (2048, 2048), 2048),
  }
  for method, (lr, wd, views, hidden, dim) in expected.items():
    c = load(f"configs/cifar10/{method}.py", None)
    o = c.optim
    assert (o.name, o.base_lr, o.weight_decay, o.trust_coefficient, o.lr_scaling) == (
        "lars", lr, wd, 0.02, "linear"), method
    assert (o.warmup_epochs, o.warmup_start_lr, o.min_lr) == (10.0, 3e-5, 0.0), method
    assert (c.data.batch_size, c.data.augmentation) == (256, views), method
    assert (c.model.projector_hidden, c.model.projector_dim) == (hidden, dim), method
    assert c.model.encoder_kwargs.to_dict() == {"stem": "cifar", "stem_padding": 2}, method
    # CIFAR-100 and Tiny-ImageNet reuse it with only the data changed.
    for other in ("cifar100", "tiny_imagenet"):
      v = load(f"configs/cifar10/{method}.py", f"dataset={other}").to_dict()
      base = c.to_dict()
      assert v.pop("data") != base.pop("data")
      assert v == base, (method, other)
  simclr = load("configs/cifar10/simclr.py", None)
  assert simclr.loss.terms.simclr.temperature == 0.2 and not simclr.model.projector_bn
  byol = load("configs/cifar10/byol.py", None)
  assert (byol.model.target_ema, byol.model.predictor_hidden) == (0.99, (4096,))
  barlow = load("configs/cifar10/barlow_twins.py", None).loss.terms.barlow_twins
  assert (barlow.lambd, barlow.scale_loss) == (0.0051, 0.1)


def test_official_imagenet_baselines():
  byol = load("configs/imagenet/byol.py", None)
  assert (byol.model.target_ema, byol.optim.base_lr, byol.optim.weight_decay) == (0.996, 0.2, 1.5e-6)
  barlow = load("configs/imagenet/barlow_twins.py", None)
  assert barlow.loss.terms.barlow_twins.lambd == 0.0051
  assert (barlow.model.projector_hidden, barlow.model.projector_dim) == ((8192, 8192), 8192)
  # Cosine to 0.001 x the peak lr 0.2 x 2048 / 256 (main.py::adjust_learning_rate).
  assert barlow.optim.min_lr == pytest.approx(0.001 * 0.2 * 2048 / 256)
  simclr = load("configs/imagenet/simclr.py", None)
  assert (simclr.loss.terms.simclr.temperature, simclr.optim.base_lr) == (0.1, 0.3)
  for m in ("simclr", "byol", "barlow_twins", "vicreg", "ssl_hsic", "corinfomax"):
    c = load(f"configs/imagenet/{m}.py", None)
    assert c.model.encoder_kwargs.zero_init_residual and c.model.encoder_kwargs.stem == "imagenet"


def test_pid_variants_keep_the_paper_proportions():
  for d, arg in (("cifar10", None), ("cifar10", "dataset=cifar100"),
                 ("cifar10", "dataset=tiny_imagenet"), ("imagenet", None)):
    for m in ("simclr", "byol", "barlow_twins", "vicreg"):
      base = load(f"configs/{d}/{m}.py", arg)
      c = load(f"configs/{d}/{m}.py", ",".join(a for a in ("pid", arg) if a))
      assert c.pid.enabled and "pid_unique" in c.loss.terms
      assert c.method == f"{m}+pid" and c.data.to_dict() == base.data.to_dict()
      # 100 warm-up epochs and a refresh every 100 of 1000 (PID-SSL, arXiv 2412.02121).
      assert (c.pid.warmup_epochs, c.pid.refresh_every_epochs) == (100.0, 100.0), (d, m)
      assert (c.pid.alpha_start, c.pid.alpha_end, c.pid.num_clusters) == (1e-5, 1e-1, -1)
      assert c.loss.terms[m].to_dict() == base.loss.terms[m].to_dict()


def test_entropy_variants():
  for est in ("logdet", "pairwise_kl", "pairwise_bhattacharyya"):
    c = load("configs/cifar10/vicreg_entropy.py", f"estimator={est}")
    # σ = 1 recorded for the pairwise bounds (docs/methods/vicreg_entropy.md: σ² = D collapsed).
    pairwise = {} if est == "logdet" else {"sigma": 1.0}
    assert c.loss.terms.to_dict() == {"vicreg_entropy": {"weight": 1.0, "estimator": est,
                                                         "sim_coeff": 25.0, **pairwise}}
    assert c.method == f"vicreg_{est}"
    base = load("configs/cifar10/vicreg.py", None)
    assert c.optim.to_dict() == base.optim.to_dict() and c.model.to_dict() == base.model.to_dict()


def test_swav_hyper_parameters():
  # facebookresearch/swav scripts/swav_800ep_pretrain.sh + main_swav.py.
  c = load("configs/imagenet/swav.py", None)
  t = c.loss.terms.swav
  assert (t.temperature, t.epsilon, t.sinkhorn_iters, t.num_prototypes) == (0.1, 0.05, 3, 3000)
  assert (t.freeze_prototypes_steps, t.queue_size) == (313, 0)
  assert (c.data.augmentation, c.data.image_size, c.data.batch_size) == ("multicrop", 224, 4096)
  assert (c.model.projector_hidden, c.model.projector_dim) == ((2048,), 128)
  o = c.optim
  assert (o.name, o.base_lr * 4096 / 256, o.min_lr, o.warmup_start_lr) == ("lars", 4.8, 0.0048, 0.3)
  assert (o.weight_decay, o.trust_coefficient, o.warmup_epochs) == (1e-6, 1e-3, 10.0)
  # vturrisi/solo-learn scripts/pretrain/cifar/swav.yaml (195 steps per epoch).
  t = load("configs/cifar10/swav.py", None).loss.terms.swav
  assert (t.num_prototypes, t.queue_size, t.queue_start_steps, t.freeze_prototypes_steps) == (
      3000, 3840, 50 * 195, 2 * 195)
  c = load("configs/cifar10/swav.py", None)
  assert (c.optim.base_lr, c.optim.weight_decay, c.data.augmentation) == (0.6, 1e-6, "simclr")
  assert (c.model.projector_hidden, c.model.projector_dim) == ((2048,), 128)

def test_moco_and_nnclr_solo_learn_recipes():
  # solo-learn scripts/pretrain/cifar/{mocov2plus,nnclr}.yaml, imagenet-100/nnclr.yaml.
  moco = load("configs/cifar10/moco.py", None)
  assert moco.loss.terms.moco.to_dict() == {"weight": 1.0, "queue_size": 32768,
                                            "temperature": 0.2, "symmetric": True}
  o = moco.optim
  assert (o.name, o.base_lr, o.weight_decay, o.decay_all, o.lr_scaling) == (
      "sgd", 0.3, 1e-4, True, "linear")
  assert (moco.model.projector_hidden, moco.model.projector_dim, moco.model.projector_bn) == (
      (2048,), 256, False)
  assert (moco.model.use_target, moco.model.target_ema, moco.model.predictor_dim) == (True, 0.99, 0)
  for path in ("configs/cifar10/nnclr.py", "configs/imagenet100/nnclr.py"):
    c = load(path, None)
    assert c.loss.terms.nnclr.to_dict() == {"weight": 1.0, "queue_size": 65536, "temperature": 0.2}
    assert (c.optim.name, c.optim.base_lr, c.optim.weight_decay, c.optim.trust_coefficient) == (
        "lars", 0.4, 1e-5, 0.02)
    assert (c.model.projector_hidden, c.model.projector_dim) == ((2048, 2048), 256)
    assert (c.model.predictor_hidden, c.model.predictor_dim) == ((4096,), 256)
    assert not c.model.use_target and c.data.batch_size == 256
# (dataset argument, lr, embedding, w_size, w_iter): htdt/self-supervised README "W-MSE 2".
WMSE = [("cifar10", 3e-3, 64, 128, 1), ("cifar100", 3e-3, 64, 128, 1),
        ("tiny_imagenet", 2e-3, 128, 256, 4)]


# (views, dataset argument, lr, embedding, w_size, w_iter, batch): the README "W-MSE 2" / "W-MSE 4".
WMSE = [(2, *r, 512) for r in WMSE] + [
    (4, "cifar10", 3e-3, 64, 128, 1, 256), (4, "cifar100", 3e-3, 64, 128, 1, 256),
    (4, "tiny_imagenet", 2e-3, 128, 256, 1, 256)]


@pytest.mark.parametrize("row", WMSE, ids=lambda r: f"{r[0]}_{r[1]}")
def test_wmse_official_hyper_parameters(row):
  views, dataset, lr, emb, w_size, w_iter, batch = row
  c = load("configs/cifar10/wmse.py", f"views={views},dataset={dataset}")
  assert len(step_lib.view_configs(c.data)) == views and c.data.augmentation == "wmse"
  t = c.loss.terms.wmse
  assert (t.w_size, t.w_iter, c.model.projector_dim) == (w_size, w_iter, emb)
  assert c.model.projector_hidden == (1024,) and c.model.projector_bn
  assert (c.optim.name, c.optim.base_lr, c.optim.lr_scaling) == ("adam", lr, "none")
  assert (c.data.batch_size, c.num_epochs) == (batch, 1000.0)


def test_wmse_imagenet100_and_solo_learn_recipes():
  # solo-learn scripts/pretrain/{cifar,imagenet-100}/wmse.yaml: Adam 2e-3 x B/256, wd 1e-6.
  for path, arg, views, epochs in (("configs/cifar10/wmse.py", "solo", "wmse_solo", 1000.0),
                                   ("configs/imagenet100/wmse.py", None, "wmse_solo_imagenet",
                                    400.0)):
    c = load(path, arg)
    t = c.loss.terms.wmse
    assert (t.w_size, t.w_iter, c.model.projector_hidden, c.model.projector_dim) == (
        128, 1, (1024,), 64)
    o = c.optim
    assert (o.name, o.base_lr, o.lr_scaling, o.schedule, o.warmup_epochs, o.warmup_start_lr) == (
        "adam", 2e-3, "linear", "cosine", 10.0, 0.0)
    assert (c.data.batch_size, c.num_epochs, c.data.augmentation) == (256, epochs, views)
  # htdt/self-supervised README "ImageNet-100" W-MSE 4 command.
  c = load("configs/imagenet100/wmse.py", "official,views=4")
  t = c.loss.terms.wmse
  assert (t.w_size, t.w_iter, c.model.projector_dim, c.data.num_views) == (256, 1, 128, 4)
  assert (c.data.batch_size, c.num_epochs, c.data.augmentation) == (256, 240.0, "simclr")
  assert (c.optim.base_lr, c.optim.lr_scaling, c.optim.schedule) == (2e-3, "none", "constant")


def test_moco_v2_imagenet_official_recipe():
  # facebookresearch/moco: main_moco.py --lr 0.03 --batch-size 256 --mlp --moco-t 0.2 --aug-plus --cos.
  c = load("configs/imagenet/moco.py", None)
  assert c.loss.terms.moco.to_dict() == {"weight": 1.0, "queue_size": 65536,
                                         "temperature": 0.2, "symmetric": False}
  o = c.optim
  assert (o.name, o.base_lr, o.lr_scaling, o.momentum, o.weight_decay, o.decay_all) == (
      "sgd", 0.03, "linear", 0.9, 1e-4, True)
  assert (o.warmup_epochs, o.schedule, o.min_lr) == (0.0, "cosine", 0.0)
  assert (c.model.target_ema, c.model.target_ema_schedule, c.model.target_init) == (
      0.999, "constant", "copy")
  assert (c.model.projector_hidden, c.model.projector_dim, c.model.projector_bn) == (
      (2048,), 128, False)
  assert (c.data.batch_size, c.num_epochs, c.data.augmentation) == (256, 800.0, "moco_v2")
  assert not c.model.encoder_kwargs.get("zero_init_residual", False)


def test_swav_prototypes_train_under_the_network_optimiser():
  # main_swav.py (LARC over every parameter) and solo-learn (prototypes in the LARS groups).
  for path in ("configs/imagenet/swav.py", "configs/cifar10/swav.py"):
    c = load(path, None)
    assert (c.optim.name, c.optim.loss_params_optimizer) == ("lars", "ssl"), path
