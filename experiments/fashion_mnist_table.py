"""Every method of ssljax on Fashion-MNIST: one encoder, one batch, one wall-clock budget, tuned on validation.

  python experiments/fashion_mnist_table.py                       # everything (≈ 15 h on 2 cores)
  python experiments/fashion_mnist_table.py --rows vicreg,simclr  # some rows (all phases)
  python experiments/fashion_mnist_table.py --phase sweep         # only the validation sweeps
  python experiments/fashion_mnist_table.py --jobs 2              # 2 rows at once, 1 core each (1.2–1.7×)
  python experiments/fashion_mnist_table.py --phase report        # only rewrite the markdown
  python experiments/fashion_mnist_table.py --quick --rows vicreg,supervised  # smoke, minutes

Protocol (per row of `ROWS`: every SSL config of ``configs/fashion_mnist/``,
the PID-SSL variants of SimCLR and VICReg, and the supervised reference):

1. **Budget.** Every run gets the same wall-clock of pre-training on an idle
   machine (``--minutes``, default 5). Each row's steps/s is measured once
   (``--phase calibrate``, `calibrate`): its real step and input pipeline,
   after compilation, timed in alternating blocks with the README demo's step
   in one process, so the ratio holds on a busy machine; times the demo's idle
   rate `REFERENCE_STEPS_PER_SECOND`. PID rows also time one pseudo-label
   refresh. The rates are committed in
   ``experiments/results/fashion_mnist_calibration.json``, so every clone
   trains the same step counts: ``total_steps = budget × steps/s`` (minus the
   PID refreshes), every learning-rate schedule completes, and a busy machine
   makes a run slower but does not change it. Compilation, periodic and final
   evaluation are not counted.
2. **Validation sweep** (``--phase sweep``): a two-stage coordinate search
   (`grid`): the recipe's learning rate × `LR_FACTORS` at the recipe's main
   coefficient (×3 steps outwards, at most 4 times, while the best is at an
   end: `edge_extension`), then the row's other coefficients (`ROWS`) at the
   winning learning rate; 1 seed, a ``--sweep-minutes`` budget (default 2.5: half of
   the final budget, with the same schedule proportions), pre-trained and
   probed on train[:50000] and evaluated on the held-out train[50000:]
   (config argument ``val``). The
   point with the best validation linear top-1 wins (kNN top-1 breaks ties).
   The test split is never read here.
3. **Final runs** (``--phase final``): the chosen point, ``--seeds`` seeds,
   pre-trained on the 60k training images, evaluated on the 10k test images.
   In seed 0's run, every ``total_steps // 8`` steps a kNN evaluation (full
   bank, the final recipe) gives the time to reach the raw-pixel kNN (in
   seconds of pre-training, steps / calibrated steps/s; resolution one eighth
   of the budget), and the table shows the online linear probe's top-1 at the
   end of that run (it trains alongside the encoder on moving features, so it
   reads below the offline probe: it does not reach the raw-pixel linear probe
   within 5 minutes for any row, which is why it is not shown as a time). The
   other seeds skip these periodic evaluations (each costs about half a
   minute).
4. **References**: the random-init encoder and raw pixels with the same kNN
   and linear probe (`ssljax.train.loop.baselines`), per seed.

Common to every row: the encoder, batch and crop area of the README demo
(``configs/fashion_mnist/corinfomax.py``: ConvNet 64-128-256, batch 128, crop
area U[0.7, 1]), linear warm-up over the first 10 % of the
run then the recipe's schedule (SwAV freezes its prototypes for the same 10 %;
PID-SSL: warm-up 10 %, refresh every 25 % of the run), offline linear probe
and kNN (k = 20, T = 0.1) of the recipe. Each run is a work directory; a run
with ``results.json`` and an identical ``config.json`` is reused, an
interrupted one resumes from its checkpoint, so the table can be completed
across sessions. ``experiments/results/fashion_mnist.md`` is regenerated from
whatever is cached after every invocation (missing cells: "pending"), with
the reading computed from the numbers.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import inspect
import json
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ssljax import allocator  # noqa: E402

PIN_CPUS_ENV = "SSLJAX_TABLE_CPUS"  # a `run_jobs` job's CPUs, set before XLA sizes its thread pool

if __name__ == "__main__":  # not when imported (by a test): that would re-exec the importer
  if os.environ.get(PIN_CPUS_ENV):
    os.sched_setaffinity(0, {int(c) for c in os.environ.pop(PIN_CPUS_ENV).split(",")})
  allocator.maybe_reexec()  # the runs use the CLI's malloc setting (glibc reads it at start-up)

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ssljax import configs_util, errors  # noqa: E402
from ssljax.train import evaluation, loop, objectives, pid_ssl, run_plots  # noqa: E402
from ssljax.train import setup as setup_lib  # noqa: E402
from ssljax.train import workdir as workdir_lib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEMO_CONFIG = "configs/fashion_mnist/corinfomax.py"  # the README job: its encoder is every row's
LR_FACTORS = (1 / 3, 1.0, 3.0)                   # × the recipe's optim.base_lr
WARMUP_FRACTION = 0.1
PID_REFRESH_FRACTION = 0.25
EVALS_PER_FINAL_RUN = 8
# lr × 1/243 .. 243 at most. Was 2 (× 27): SimCLR, BYOL and Barlow Twins all chose × 27, BYOL
# with +1.3 points over × 9 on validation, so the optimum was not bracketed.
MAX_EDGE_EXTENSIONS = 4

# key -> (label, config file, config argument, coefficient name, config paths set to the
# coefficient, its grid). The recipe's own value is in every grid.
ROWS = {
    "simclr": ("SimCLR", "simclr", "", "temperature", ("loss.terms.simclr.temperature",),
               (0.1, 0.2, 0.5)),
    "byol": ("BYOL", "byol", "", "EMA τ_base", ("model.target_ema",), (0.97, 0.99, 0.996)),
    "barlow_twins": ("Barlow Twins", "barlow_twins", "", "λ", ("loss.terms.barlow_twins.lambd",),
                     (0.002, 0.0051, 0.013)),
    "vicreg": ("VICReg", "vicreg", "", "sim coeff (std 25, cov 1)",
               ("loss.terms.vicreg.sim_coeff",), (10.0, 25.0, 50.0)),
    "vicreg_logdet": ("VICReg + LogDet entropy", "vicreg_entropy", "estimator=logdet",
                      "entropy coeff", ("loss.terms.vicreg_entropy.entropy_coeff",),
                      (0.3, 1.0, 3.0)),
    "vicreg_pairwise_kl": ("VICReg + pairwise-KL entropy", "vicreg_entropy",
                           "estimator=pairwise_kl", "entropy coeff",
                           ("loss.terms.vicreg_entropy.entropy_coeff",), (0.3, 1.0, 3.0)),
    "corinfomax": ("CorInfoMax", "corinfomax", "", "α", ("loss.terms.corinfomax.alpha",),
                   (100.0, 250.0, 500.0)),
    "ssl_hsic": ("SSL-HSIC", "ssl_hsic", "", "γ", ("loss.terms.ssl_hsic.gamma",), (1.0, 3.0, 10.0)),
    "superinfo": ("SuperInfo", "superinfo", "", "superfluous coeffs",
                  ("loss.terms.superinfo.coef_superfluous1", "loss.terms.superinfo.coef_superfluous2"),
                  (1e-4, 1e-3, 1e-2)),
    "wmse": ("W-MSE", "wmse", "", "w_size", ("loss.terms.wmse.w_size",), (64, 128)),
    "moco": ("MoCo v2", "moco", "", "temperature", ("loss.terms.moco.temperature",),
             (0.1, 0.2, 0.5)),
    "nnclr": ("NNCLR", "nnclr", "", "temperature", ("loss.terms.nnclr.temperature",),
              (0.1, 0.2, 0.5)),
    "swav": ("SwAV", "swav", "", "temperature", ("loss.terms.swav.temperature",),
             (0.05, 0.1, 0.2)),
    "mmcr": ("MMCR", "mmcr", "", "λ (local)", ("loss.terms.mmcr.lmbda",), (0.0, 0.01, 0.1)),
    "align_uniform": ("Alignment + uniformity", "align_uniform", "", "uniformity weight",
                      ("loss.terms.uniformity.weight",), (0.5, 1.0, 2.0)),
    "vicreg_koleo": ("VICReg + KoLeo", "vicreg_koleo", "", "KoLeo weight",
                     ("loss.terms.koleo.weight",), (0.03, 0.1, 0.3)),
    "lejepa": ("LeJEPA", "lejepa", "", "SIGReg λ", ("loss.terms.sigreg.weight",),
               (0.01, 0.02, 0.05)),
    "simclr_pid": ("SimCLR + PID", "simclr", "pid", "temperature",
                   ("loss.terms.simclr.temperature",), (0.1, 0.2, 0.5)),
    "vicreg_pid": ("VICReg + PID", "vicreg", "pid", "sim coeff (std 25, cov 1)",
                   ("loss.terms.vicreg.sim_coeff",), (10.0, 25.0, 50.0)),
    "supervised": ("Supervised (cross-entropy, light aug.)", "supervised", "", "weight decay",
                   ("optim.weight_decay",), (5e-5, 5e-4)),
}


# ----------------------------------------------------------------------------
# Configs
# ----------------------------------------------------------------------------

def _set(config, path, value):
  """``config.<path> = value``, cast to the field's type; a loss term's default may be unset."""
  *parents, leaf = path.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = type(node[leaf])(value) if leaf in node else value


def steps_per_epoch(config) -> int:
  """Fashion-MNIST's 60k training images, less the validation hold-out, per batch."""
  return (60000 - config.data.validation_holdout) // config.data.batch_size


def recipe_config(key: str, *, val: bool, quick: bool):
  """The row's config file with the common settings, before the run length is known."""
  _, file, arg, *_ = ROWS[key]
  args = [a for a in (arg, "val" if val else "", "runlocal" if quick else "") if a]
  config = configs_util.load_config(f"configs/fashion_mnist/{file}.py", ",".join(args))
  demo = configs_util.load_config(DEMO_CONFIG, "runlocal" if quick else "")
  with config.unlocked():
    config.model.encoder = demo.model.encoder
    config.model.encoder_kwargs = demo.model.encoder_kwargs
    config.data.batch_size = demo.data.batch_size
    config.eval.pixel_baseline = False  # the reference rows compute them once per seed
    config.eval.random_init_baseline = False
    config.pid_monitor.every_steps = 0
  return config


def make_config(key: str, *, seed: int, total_steps: int, lr_factor: float, coef, val: bool,
                quick: bool):
  """A run's full config: the recipe, the grid point, the run length and its schedule fractions."""
  config = recipe_config(key, val=val, quick=quick)
  with config.unlocked():
    config.seed = seed
    config.total_steps = total_steps
    config.optim.base_lr = config.optim.base_lr * lr_factor
    for path in ROWS[key][4]:
      _set(config, path, coef)
    run_epochs = total_steps / steps_per_epoch(config)  # warm-up etc. are set in epochs
    config.optim.warmup_epochs = WARMUP_FRACTION * run_epochs
    if "swav" in config.loss.terms:
      config.loss.terms.swav.freeze_prototypes_steps = int(WARMUP_FRACTION * total_steps)
    if config.pid.enabled:
      config.pid.warmup_epochs = WARMUP_FRACTION * run_epochs
      config.pid.refresh_every_epochs = PID_REFRESH_FRACTION * run_epochs
    config.checkpoint.every_steps = max(total_steps // 4, 1)
    periodic = not val and seed == 0  # time-to-reach is read from seed 0's run
    config.eval.every_steps = max(total_steps // EVALS_PER_FINAL_RUN, 1) if periodic else 0
    config.eval.plots = not val  # the spectra (effective rank) of the final runs
  return config


def recipe_coef(key: str):
  """The row's main coefficient in its recipe (the config file, else the kernel's default)."""
  config = recipe_config(key, val=True, quick=False)
  *parents, leaf = ROWS[key][4][0].split(".")
  node = config
  for p in parents:
    node = node[p]
  if leaf in node:
    return node[leaf]
  term = parents[-1]  # loss.terms.<term>.<hyper-parameter> left at the kernel's default
  return inspect.signature(objectives.TERMS[term].kernel).parameters[leaf].default


def grid(key: str, quick: bool, best_lr=None):
  """The row's sweep points [(lr_factor, coefficient)], a coordinate search in two stages.

  Stage 1 (``best_lr`` None): every `LR_FACTORS` at the recipe's coefficient.
  Stage 2: the other coefficients of the row's grid at the stage-1 winner's
  learning rate. 5 points for a 3×3 grid instead of 9 (quick: 2 points, one
  stage).
  """
  coefs, own = ROWS[key][5], recipe_coef(key)
  if own not in coefs:
    raise ValueError(f"{key}: the recipe's coefficient {own} is not in its grid {coefs}")
  if quick:
    return [] if best_lr is not None else [(1.0, own), (LR_FACTORS[0], own)]
  if best_lr is None:
    return [(f, own) for f in LR_FACTORS]
  return [(best_lr, c) for c in coefs if c != own]


def edge_extension(best_lr: float, tried, quick: bool):
  """The next learning-rate factor when stage 1's winner is the end of what was tried, else None.

  One step of the grid's ratio outwards (×9 after ×3, ×1/9 after ×1/3, ...),
  at most `MAX_EDGE_EXTENSIONS` times, so a recipe whose best rate lies
  outside the grid is not reported under-tuned.

  >>> edge_extension(3.0, [1 / 3, 1.0, 3.0], False), edge_extension(1.0, [1 / 3, 1.0, 3.0], False)
  (9.0, None)
  >>> round(edge_extension(1 / 3, [1 / 3, 1.0, 3.0], False), 4)
  0.1111
  """
  step = LR_FACTORS[-1] / LR_FACTORS[-2]
  if quick or best_lr not in (min(tried), max(tried)):
    return None
  return best_lr * step if best_lr == max(tried) else best_lr / step


# ----------------------------------------------------------------------------
# Calibration: steps per second of each row's real training step
# ----------------------------------------------------------------------------

# The README demo's pre-training rate on an idle 2-core machine (README command 1
# from a fresh clone, allocator on: 936 steps in 181 s including compilation;
# docs/runs.md). Every row's rate is this times its step-time ratio to the
# demo's step, measured side by side in one process (`calibrate`), so the
# budget does not depend on what else the machine runs during calibration.
REFERENCE_ROW = "corinfomax"
REFERENCE_STEPS_PER_SECOND = 936 / 181
CALIBRATION_BLOCK = 5  # steps per timed block; row and reference blocks alternate


def _step_runner(key: str, *, quick: bool):
  """(run one step, the RunSetup) for the row's real jitted step and input pipeline."""
  config = make_config(key, seed=0, total_steps=10 ** 6, lr_factor=1.0, coef=recipe_coef(key),
                       val=True, quick=quick)
  run = setup_lib.build(config)
  holder = {"state": run.init_state(jax.random.key(0))}
  data_it = loop.make_train_loader(run)
  jitted, rng = run.jitted_step(), jax.random.key(1)

  def step():
    batch = next(data_it)
    batch.pop("index")
    if config.pid.enabled:
      batch["pseudo_label"] = np.zeros_like(batch["label"])
    holder["state"] = jitted(holder["state"],
                             {k: evaluation.to_global(run.mesh, v) for k, v in batch.items()},
                             rng)[0]

  def block():
    """Seconds per step over `CALIBRATION_BLOCK` steps (dispatch pipelined, one sync)."""
    t = time.perf_counter()
    for _ in range(CALIBRATION_BLOCK):
      step()
    jax.block_until_ready(holder["state"])
    return (time.perf_counter() - t) / CALIBRATION_BLOCK

  for _ in range(3):  # compile and warm up
    step()
  jax.block_until_ready(holder["state"])
  return block, run, holder


_REFERENCE = {}


def calibrate(key: str, *, quick: bool, seconds: float) -> dict:
  """The row's idle steps/s: its step time relative to the demo's, timed in alternating blocks.

  Both steps run in this process, block after block, so a busy machine slows
  both alike; the median ratio times `REFERENCE_STEPS_PER_SECOND` is the row's
  rate. PID rows also time one pseudo-label refresh, scaled by the same
  reference (its step time now vs idle).
  """
  if "block" not in _REFERENCE:
    _REFERENCE["block"] = _step_runner(REFERENCE_ROW, quick=quick)[0]
  ref_block = _REFERENCE["block"]
  block, run, holder = _step_runner(key, quick=quick) if key != REFERENCE_ROW else (
      ref_block, None, None)
  row_times, ref_times, t = [], [], time.time()
  while time.time() - t < seconds or len(row_times) < 3:
    row_times.append(block())
    ref_times.append(ref_block())
  ratio = statistics.median(r / o for r, o in zip(ref_times, row_times))
  out = {"steps_per_second": REFERENCE_STEPS_PER_SECOND * ratio, "ratio_to_reference": ratio,
         "reference": f"{REFERENCE_ROW} at {REFERENCE_STEPS_PER_SECOND:.3f} steps/s",
         "timed_blocks": len(row_times), "loadavg_1_5_15": list(os.getloadavg()),
         "cpus": os.cpu_count(), "date": datetime.datetime.now().isoformat(timespec="seconds"),
         "refresh_seconds": 0.0}
  config = run.config if run is not None else None
  if config is not None and config.pid.enabled:
    embed_fn = evaluation.make_embed_fn(run.net, mean=run.dataset.mean, std=run.dataset.std,
                                        image_size=config.data.image_size, mesh=run.mesh)
    t = time.time()
    loop.compute_pseudo_labels(run, holder["state"], embed_fn, previous=None)
    elapsed = time.time() - t
    slowdown = statistics.median(ref_times) * REFERENCE_STEPS_PER_SECOND  # now vs idle
    out["refresh_seconds"] = elapsed / max(slowdown, 1.0)
  return out


def budget_steps(key: str, cal: dict, minutes: float, *, quick: bool) -> int:
  """Training steps that fill ``minutes`` of pre-training (PID: minus its refreshes)."""
  seconds = 60 * minutes
  steps = int(seconds * cal["steps_per_second"])
  if cal["refresh_seconds"]:
    config = make_config(key, seed=0, total_steps=steps, lr_factor=1.0, coef=ROWS[key][5][0],
                         val=True, quick=quick)
    n = len(pid_ssl.refresh_steps(config.pid, steps_per_epoch=steps_per_epoch(config),
                                  total_steps=steps))
    steps = int(max(seconds - n * cal["refresh_seconds"], 0.1 * seconds) * cal["steps_per_second"])
  return max(steps, 8)


class Cache:
  """``<workroot>``: calibration.json, sweep/<row>/<point>/, final/<row>/<point>_s<seed>/, reference_s<seed>/.

  A final run's directory names its sweep point, so a point chosen anew (the
  sweep was extended) trains in a new directory instead of meeting the old
  point's checkpoints.
  """

  def __init__(self, root: str, cal_path: str = ""):
    self.root = root
    os.makedirs(root, exist_ok=True)
    self.cal_path = cal_path or os.path.join(root, "calibration.json")

  def calibrations(self) -> dict:
    try:
      with open(self.cal_path, encoding="utf-8") as f:
        return json.load(f)
    except FileNotFoundError:
      return {}

  def calibration(self, key, *, quick, seconds, run_missing):
    cals = self.calibrations()
    if "ratio_to_reference" not in cals.get(key, {"ratio_to_reference": 0}):
      del cals[key]  # an absolute timing from before the side-by-side calibration
    if key not in cals and run_missing:
      cals[key] = calibrate(key, quick=quick, seconds=seconds)
      workdir_lib.write_atomic(self.cal_path, json.dumps(cals, indent=2, sort_keys=True))
      print(f"calibrated {key}: {cals[key]['ratio_to_reference']:.3f} × {REFERENCE_ROW}'s step"
            f" rate = {cals[key]['steps_per_second']:.2f} steps/s"
            f" (load {cals[key]['loadavg_1_5_15'][0]:.1f})", flush=True)
    return cals.get(key)

  def sweep_dir(self, key, lr_factor, coef):
    return os.path.join(self.root, "sweep", key, f"lr{lr_factor:.3g}_c{coef:g}")

  def final_dir(self, key, seed, chosen):
    return os.path.join(self.root, "final", key, f"lr{chosen[0]:.3g}_c{chosen[1]:g}_s{seed}")

  def reference_dir(self, seed):
    return os.path.join(self.root, f"reference_s{seed}")


def same_run(saved: dict, current: dict) -> bool:
  """Whether a run saved with config ``saved`` is the run ``current`` describes.

  Equal, except for fields added to ssljax since the run was saved that sit
  at their default (`workdir.added_at_default`, the rule resuming uses): the
  table survives library changes across sessions.
  """
  old, new = workdir_lib.flatten(saved), workdir_lib.flatten(current)
  return (set(old) <= set(new) and all(old[k] == new[k] for k in old)
          and set(new) - set(old) == workdir_lib.added_at_default(old, new))


def cached_results(workdir: str, config) -> dict | None:
  """``results.json`` of a finished run with the same config (`same_run`) and, where it recorded
  them, the same resolved loss hyper-parameters (`workdir.check_loss_hparams`), else None."""
  try:
    with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
      res = json.load(f)
    with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
      same = same_run(json.load(f), json.loads(config.to_json_best_effort()))
  except FileNotFoundError:
    return None
  if same:  # a loss kernel default changed since the run (config.json does not record defaults)
    hparams = workdir_lib.loss_hparams_json(objectives.make_objective(config.loss.terms).terms)
    try:
      workdir_lib.check_loss_hparams(workdir, hparams)
    except errors.WorkdirError:
      same = False  # `train` then resumes it, which refuses loudly with the changed values
  # Not an interrupted run's record: a training run's evaluation, a reference's probes, or a failure.
  finished = any(k in res for k in ("failed", "eval/linear/top1", "pixels_linear/top1"))
  return res if same and finished else None


# SIGTERMs that arrived outside a training loop (which checkpoints on its own): during a run's
# set-up or final evaluation, or a reference's probes. The run in progress finishes and is kept.
_STOP_REQUESTED: list[int] = []


def _request_stop(signum, _frame):
  _STOP_REQUESTED.append(signum)


def stop_between_runs() -> None:
  """Makes SIGTERM stop the table at the next run boundary (`exit_if_stop_requested`).

  Without it a SIGTERM during a run's final evaluation killed the job and the
  next invocation evaluated that run again (the training loop's own handler
  covers training only and restores this one afterwards).
  """
  signal.signal(signal.SIGTERM, _request_stop)


def exit_if_stop_requested(where: str) -> None:
  if _STOP_REQUESTED:
    sys.exit(f"stopped by signal {_STOP_REQUESTED[0]} {where}; run again to resume")


def train(config, workdir: str) -> dict:
  """Runs (or resumes) one training run; a diverged run is recorded as failed, not retried."""
  res = cached_results(workdir, config)
  if res is not None:
    return res
  exit_if_stop_requested(f"before {workdir}")
  t = time.time()
  try:
    res = loop.train_and_evaluate(config, workdir, progress=False)
  except errors.NonFiniteLossError as e:
    res = {"failed": str(e).split(".")[0]}
  if "stopped_at_step" in res:  # SIGTERM/SIGINT: checkpointed, not finished; resumes next time
    sys.exit(f"stopped at step {res['stopped_at_step']} of {workdir}; run again to resume")
  res["wall_seconds"] = time.time() - t
  res["cpus"] = len(os.sched_getaffinity(0))  # XLA:CPU's thread count (`run_jobs`)
  workdir_lib.write_atomic(os.path.join(workdir, "results.json"),
                           json.dumps(res, indent=2, sort_keys=True))
  exit_if_stop_requested(f"after finishing {workdir}")
  return res


def reference(seed: int, *, quick: bool, root: Cache) -> dict:
  """Random-init encoder (with its spectrum) and raw pixels on the test split, seed ``seed``."""
  config = make_reference_config(seed, quick)
  workdir = root.reference_dir(seed)
  res = cached_results(workdir, config)
  if res is not None:
    return res
  run = setup_lib.build(config)
  embed_fn = evaluation.make_embed_fn(run.net, mean=run.dataset.mean, std=run.dataset.std,
                                      image_size=config.data.image_size, mesh=run.mesh)
  res = loop.baselines(run, embed_fn)
  spectra = loop.embedding_spectra(run, run.init_state(jax.random.key(seed)), embed_fn)
  res.update({f"random_init_{k}": v for k, v in run_plots.spectrum_summary(spectra).items()})
  os.makedirs(workdir, exist_ok=True)
  workdir_lib.write_atomic(os.path.join(workdir, "config.json"), config.to_json_best_effort())
  workdir_lib.write_atomic(os.path.join(workdir, "results.json"),
                           json.dumps(res, indent=2, sort_keys=True))
  exit_if_stop_requested(f"after finishing {workdir}")
  return res


# ----------------------------------------------------------------------------
# Phases
# ----------------------------------------------------------------------------

def sweep_points(key, a, root, *, run_missing):
  """[(lr_factor, coef, results or None)] of the row's sweep; runs the missing ones if asked.

  Stage 2's points are listed once stage 1 is complete (they depend on its winner).
  """
  cal = root.calibration(key, quick=a.quick, seconds=a.calibration_seconds, run_missing=run_missing)
  if cal is None:
    return [(f, c, None) for f, c in grid(key, a.quick)]
  steps = budget_steps(key, cal, a.sweep_minutes, quick=a.quick)

  def run(points):
    out = []
    for f, c in points:
      config = make_config(key, seed=0, total_steps=steps, lr_factor=f, coef=c, val=True,
                           quick=a.quick)
      workdir = root.sweep_dir(key, f, c)
      res = train(config, workdir) if run_missing else cached_results(workdir, config)
      if run_missing:
        print(f"sweep {key} lr×{f:.3g} {ROWS[key][3]}={c:g}: " + _short(res), flush=True)
      out.append((f, c, res))
    return out

  stage1 = run(grid(key, a.quick))
  best = choose(stage1)
  if best is None:
    return stage1
  for _ in range(MAX_EDGE_EXTENSIONS):  # the best rate is at an end: ×3 steps outwards
    edge = edge_extension(best[0], [f for f, _, _ in stage1], a.quick)
    if edge is None:
      break
    stage1 += run([(edge, best[1])])
    best = choose(stage1)
    if best is None:
      return stage1
  return stage1 + run(grid(key, a.quick, best_lr=best[0]))


def _short(res):
  if "failed" in res:
    return "failed (" + res["failed"] + ")"
  return f"linear {res['eval/linear/top1']:.4f} kNN {res['eval/knn/top1']:.4f}"


def choose(points):
  """The best finished, non-diverged sweep point by (val linear top-1, val kNN top-1); None if pending."""
  if not points or any(r is None for _, _, r in points):
    return None
  ok = [(f, c, r) for f, c, r in points if "failed" not in r]
  if not ok:
    return None
  return max(ok, key=lambda p: (p[2]["eval/linear/top1"], p[2]["eval/knn/top1"]))


def final_runs(key, chosen, a, root, *, run_missing):
  """[results or None] per seed of the row's test runs at the chosen point."""
  cal = root.calibration(key, quick=a.quick, seconds=a.calibration_seconds, run_missing=False)
  if chosen is None or cal is None:
    return [None] * a.seeds
  steps = budget_steps(key, cal, a.minutes, quick=a.quick)
  out = []
  for seed in range(a.seeds):
    config = make_config(key, seed=seed, total_steps=steps, lr_factor=chosen[0], coef=chosen[1],
                         val=False, quick=a.quick)
    workdir = root.final_dir(key, seed, chosen)
    res = train(config, workdir) if run_missing else cached_results(workdir, config)
    if res is not None and seed == 0:  # only seed 0 has the periodic evaluations
      res = dict(res, **time_to_reach(workdir, cal, a, root, seed))
    if res is not None and run_missing:
      print(f"final {key} seed {seed}: " + _short(res), flush=True)
    out.append(res)
  return out


def time_to_reach(workdir, cal, a, root, seed) -> dict:
  """Seconds until the periodic kNN first reaches the raw-pixel kNN; the online probe's last top-1."""
  ref_config_res = cached_results(root.reference_dir(seed), make_reference_config(seed, a.quick))
  if ref_config_res is None or not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return {}
  records = run_plots.read_metrics(workdir)
  steps, values = run_plots.series(records, "eval/knn/top1")
  hit = [s for s, v in zip(steps, values) if v >= ref_config_res["pixels_knn/top1"]]
  out = {"time_to_pixels_knn": (hit[0] / cal["steps_per_second"]) if hit else None}
  _, probe = run_plots.series(records, "eval/online_probe/top1")
  if len(probe):
    out["online_probe_top1"] = float(probe[-1])
  return out


def make_reference_config(seed, quick):
  """The references' config: the common settings, both baselines on, the test split."""
  config = make_config("vicreg", seed=seed, total_steps=1, lr_factor=1.0, coef=25.0, val=False,
                       quick=quick)
  with config.unlocked():
    config.eval.pixel_baseline = True
    config.eval.random_init_baseline = True
  return config


# ----------------------------------------------------------------------------
# The markdown table
# ----------------------------------------------------------------------------

def _pct(values):
  values = [100 * v for v in values]
  if not values:
    return "—"
  if len(values) == 1:
    return f"{values[0]:.2f}"
  return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def _stats(values):
  values = [100 * v for v in values]
  return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _seconds(values, budget_s):
  """'t' (mean over seeds that reached it) or '> budget' and the count that reached it."""
  hit = [v for v in values if v is not None]
  if not hit:
    return f"> {budget_s:.0f}"
  txt = f"{statistics.mean(hit):.0f}"
  return txt if len(hit) == len(values) else f"{txt} ({len(hit)}/{len(values)} seeds)"


def render(rows, refs, a, root, elapsed_min) -> str:
  budget_s = 60 * a.minutes
  cals = root.calibrations()
  demo = configs_util.load_config(DEMO_CONFIG, "runlocal" if a.quick else "")
  lines = [
      "# Fashion-MNIST: every ssljax method, one encoder, one wall-clock budget, tuned on validation",
      "",
      f"Produced by `python experiments/fashion_mnist_table.py{' --quick' if a.quick else ''}`"
      f" (last invocation {datetime.date.today()}, {elapsed_min:.0f} min) on a {os.cpu_count()}-core"
      " CPU shared with other jobs; the protocol is the script's docstring. Every row:"
      f" ConvNet {'-'.join(map(str, demo.model.encoder_kwargs.widths))} (the README demo's"
      f" encoder), batch {demo.data.batch_size}, **{a.minutes:g} min of pre-training** (steps ="
      " budget × the row's calibrated steps/s), learning rate (× 1/3, 1, 3, extended by ×3 steps"
      f" up to × 1/{3 ** (MAX_EDGE_EXTENSIONS + 1)} or {3 ** (MAX_EDGE_EXTENSIONS + 1)} while an"
      " end wins) then the main"
      f" coefficient chosen by a {a.sweep_minutes:g}-min coordinate sweep on a validation split held out of"
      " the training images (train[50000:]), then"
      f" {a.seeds} seeds on the test split. Linear probe and kNN (k = 20, T = 0.1) on frozen"
      " backbone embeddings of the 60k training images, top-1 on the 10k test images (mean ± std"
      " over seeds). \"pending\": not computed yet (run the script again; it resumes).",
      "",
      "| method | chosen lr, coefficient | linear top-1 (%) | kNN top-1 (%) | eff. rank (embedding) |"
      " images/s | steps | t → pixel kNN (s) | online probe top-1 (%, end) |",
      "|---|---|---|---|---|---|---|---|---|",
  ]
  means = {}
  for key, (points, chosen, finals) in rows.items():
    label, _, _, coef_name, paths, _ = ROWS[key]
    cal = cals.get(key)
    if chosen is None:
      choice = "pending" if any(r is None for *_, r in points) else "all diverged"
    else:
      recipe = recipe_config(key, val=True, quick=a.quick)
      choice = (f"lr {recipe.optim.base_lr * chosen[0]:.3g} (×{chosen[0]:.3g}), "
                f"{coef_name} {chosen[1]:g}")
      tried = {f for f, _, _ in points}
      if len(tried) == len(LR_FACTORS) + MAX_EDGE_EXTENSIONS and chosen[0] in (min(tried),
                                                                              max(tried)):
        choice += " (lr at the sweep's end)"
      coefs = ROWS[key][5]
      if len(coefs) > 2 and chosen[1] in (min(coefs), max(coefs)):
        choice += " (coefficient at the grid's end)"
    done = [r for r in finals if r is not None and "failed" not in r]
    img_s = f"{cal['steps_per_second'] * demo.data.batch_size:.0f}" if cal else "pending"
    steps = str(budget_steps(key, cal, a.minutes, quick=a.quick)) if cal else "pending"
    if len(done) == len(finals) and done:
      lin, knn = [r["eval/linear/top1"] for r in done], [r["eval/knn/top1"] for r in done]
      er = statistics.mean(r["spectrum/embedding/effective_rank"] for r in done)
      dim = int(done[0]["spectrum/embedding/dim"])
      means[label] = (_stats(lin), _stats(knn))
      cells = [_pct(lin), _pct(knn), f"{er:.1f} / {dim}",
               _seconds([r["time_to_pixels_knn"] for r in done if "time_to_pixels_knn" in r],
                        budget_s),
               _pct([r["online_probe_top1"] for r in done if "online_probe_top1" in r])]
    else:
      failed = [r for r in finals if r is not None and "failed" in r]
      cells = ["diverged" if failed else "pending"] * 5
    lines.append(f"| {label} | {choice} | {cells[0]} | {cells[1]} | {cells[2]} | {img_s} | "
                 f"{steps} | {cells[3]} | {cells[4]} |")
  if refs and all(r is not None for r in refs):
    for name, prefix, er_key in (("Random-init encoder", "random_init_",
                                  "random_init_spectrum/embedding/effective_rank"),
                                 ("Raw pixels (784-d)", "pixels_", None)):
      lin = [r[f"{prefix}linear/top1"] for r in refs]
      knn = [r[f"{prefix}knn/top1"] for r in refs]
      means[name] = (_stats(lin), _stats(knn))
      er = (f"{statistics.mean(r[er_key] for r in refs):.1f} / "
            f"{int(refs[0]['random_init_spectrum/embedding/dim'])}" if er_key else "—")
      lines.append(f"| {name} | — | {_pct(lin)} | {_pct(knn)} | {er} | — | 0 | — | — |")
  else:
    lines.append("| Random-init encoder | — | pending | pending | pending | — | 0 | — | — |")
    lines.append("| Raw pixels (784-d) | — | pending | pending | — | — | 0 | — | — |")
  lines += [
      "",
      "Effective rank: exp(entropy of the normalised eigenvalues) of the test-set backbone"
      " embedding covariance (Roy & Vetterli 2007); low values mean dimensional collapse."
      " images/s: the calibrated training throughput (augmentation + step, 2 views or SwAV's"
      " multi-crop). t → pixel (seed 0's run): seconds of pre-training (step / steps/s) at the first periodic"
      f" evaluation (every 1/{EVALS_PER_FINAL_RUN} of the run, and the end) whose kNN top-1 (full"
      f" bank) reaches the raw-pixel kNN of the same seed; \"> {budget_s:.0f}\": not within the"
      " budget. Online probe (seed 0's run): top-1 of the linear head trained on stop-gradient"
      " features alongside the encoder, at the last step; it lags the offline linear probe"
      f" because its features move under it. {_cpu_counts(rows)}",
      "",
      "## Reading",
      "",
  ] + reading(means) + ["", "## Validation sweep (1 seed, train[:50000] → train[50000:])", "",
                        "| method | calibrated steps/s (load avg) | lr × | coefficient |"
                        " val linear / kNN top-1 (%) |", "|---|---|---|---|---|"]
  for key, (points, chosen, _) in rows.items():
    cal = cals.get(key)
    cal_txt = (f"{cal['steps_per_second']:.2f} ({cal['loadavg_1_5_15'][0]:.1f})" if cal
               else "pending")
    for f, c, r in points:
      mark = "**" if chosen is not None and (f, c) == chosen[:2] else ""
      cell = ("pending" if r is None else "diverged" if "failed" in r else
              f"{mark}{100 * r['eval/linear/top1']:.2f} / {100 * r['eval/knn/top1']:.2f}{mark}")
      lines.append(f"| {ROWS[key][0]} | {cal_txt} | {f:.3g} | {ROWS[key][3]} {c:g} | {cell} |")
  lines += ["", "Bold: the chosen point (best validation linear top-1, kNN breaks ties);"
            " \"lr at the sweep's end\": the best rate is the last ×3 extension, so a"
            " rate beyond it may be better still; \"coefficient at the grid's end\": likewise for"
            " the coefficient's fixed grid (not extended). The"
            " other coefficients' lines appear once the learning-rate stage has finished."]
  return "\n".join(lines) + "\n"


def _cpu_counts(rows) -> str:
  """Which thread counts trained the cached runs (``--jobs`` pins each run to fewer CPUs)."""
  counts = collections.Counter(r.get("cpus") for points, _, finals in rows.values()
                               for r in [r for *_, r in points] + list(finals) if r is not None)
  if not counts:
    return ""
  parts = [f"{v} on {k} CPU{'s' if k != 1 else ''}" for k, v in sorted(
      (k, v) for k, v in counts.items() if k is not None)]
  if None in counts:  # runs from before the count was recorded, all on this 2-core machine
    parts.append(f"{counts[None]} on both CPUs (before the count was recorded)")
  return ("Runs by the CPUs they were trained on (`--jobs`; another thread count reorders"
          " XLA:CPU's float sums, so a run is not bit-identical across CPU counts, like a"
          " change of seed; the protocol is the same): " + ", ".join(parts) + ".")


def reading(means) -> list[str]:
  """Comparisons computed from the table, so the text stays true when it is rerun."""
  pixels, rand = "Raw pixels (784-d)", "Random-init encoder"
  ssl = [k for k in means if k not in (pixels, rand) and not k.startswith("Supervised")]
  if not ssl:
    return ["* No finished method row yet."]
  ranked = sorted(ssl, key=lambda k: -means[k][0][0])
  out = ["* Linear top-1, best to worst: "
         + ", ".join(f"{k} {means[k][0][0]:.2f}" for k in ranked) + "."]
  for base, name in ((pixels, "raw pixels"), (rand, "the random-init encoder")):
    if base not in means:
      out.append(f"* {name}: pending.")
      continue
    for i, probe in enumerate(("linear", "kNN")):
      ref = means[base][i][0]
      above = [k for k in ranked if means[k][i][0] - means[k][i][1] > ref]
      out.append(f"* {probe} top-1 above {name} ({ref:.2f}) by more than one std: "
                 f"{', '.join(above) if above else 'none'} ({len(above)} of {len(ranked)}).")
  sup = next((k for k in means if k.startswith("Supervised")), None)
  if sup:
    best = ranked[0]
    out.append(f"* Supervised reference: linear {means[sup][0][0]:.2f}, kNN {means[sup][1][0]:.2f};"
               f" best SSL row ({best}) is {means[best][0][0] - means[sup][0][0]:+.2f} points linear"
               " from it.")
  for base in ("SimCLR", "VICReg"):
    if base in means and f"{base} + PID" in means:
      (m0, s0), (m1, s1) = means[base][0], means[f"{base} + PID"][0]
      out.append(f"* PID-SSL on {base}: {m1 - m0:+.2f} points linear (pooled std "
                 f"{((s0 ** 2 + s1 ** 2) / 2) ** 0.5:.2f}).")
  return out


def run_jobs(wanted, a) -> int:
  """Trains ``wanted`` rows in ``a.jobs`` child processes, each pinned to its own CPUs; 0 if all finished.

  Small steps like these use a second core poorly: on the 2-core machine two
  single-core processes did 1.67× the steps per second of one process on
  both cores for the README demo's step and 1.20× for SimCLR's
  (`benchmarks/parallel_runs.py [--row simclr]`). A run's
  result does not depend on which job trained it (fixed step counts, seeded),
  but XLA:CPU sums in another order with another thread count: the loss of
  a 1-CPU and a 2-CPU run agrees to 6e-7 after 2 steps and drifts apart
  like a change of seed over training (`benchmarks/parallel_runs.py` prints
  both). Each run records its CPU count (``cpus``). Rows are
  handed out in `ROWS` order to the next free job; a job's output lines are
  prefixed with its row. SIGTERM/SIGINT reach every job as SIGTERM: a job in
  training checkpoints, one in an evaluation finishes and keeps that run
  (`stop_between_runs`); the next invocation resumes. No new row starts after
  a job fails.
  """
  cpus = sorted(os.sched_getaffinity(0))
  todo, lock, procs, failed = queue.Queue(), threading.Lock(), set(), []
  for key in wanted:
    todo.put(key)
  scratch = tempfile.mkdtemp(prefix="fashion_mnist_table_jobs_")  # the jobs' own reports

  def command(key):
    return [sys.executable, os.path.abspath(__file__), "--phase", a.phase, "--rows", key,
            "--jobs", "1", "--minutes", repr(a.minutes), "--sweep-minutes", repr(a.sweep_minutes),
            "--seeds", str(a.seeds), "--calibration-seconds", repr(a.calibration_seconds),
            "--workroot", a.workroot, "--calibration", a.calibration,
            "--out", os.path.join(scratch, key)] + (["--quick"] if a.quick else [])

  def worker(job_cpus):
    while not failed:
      try:
        key = todo.get_nowait()
      except queue.Empty:
        return
      with lock:
        if failed:
          return
        # The job pins itself (PIN_CPUS_ENV): a preexec_fn would fork this threaded process.
        env = dict(os.environ, **{PIN_CPUS_ENV: ",".join(map(str, sorted(job_cpus)))})
        proc = subprocess.Popen(command(key), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, env=env,
                                start_new_session=True)  # signals come from `stop` only
        procs.add(proc)
      for line in proc.stdout:
        if not line.startswith("wrote "):  # the job's own report, in `scratch`: not the table
          print(f"[{key}] {line}", end="", flush=True)
      with lock:
        procs.discard(proc)
        if proc.wait():
          failed.append(f"{key} (exit {proc.returncode})")

  def stop(signum, _frame):
    with lock:
      failed.append(f"signal {signum}")
      for proc in procs:
        proc.send_signal(signal.SIGTERM)  # the jobs checkpoint and exit

  previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
  threads = [threading.Thread(target=worker, args=(set(cpus[j::a.jobs]),))
             for j in range(a.jobs)]
  try:
    for t in threads:
      t.start()
    for t in threads:
      t.join()
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
    shutil.rmtree(scratch, ignore_errors=True)
  if failed:
    print("stopped: " + ", ".join(failed) + "; run again to resume", file=sys.stderr)
    return 1
  return 0


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--rows", default="", help=f"comma-separated rows to run (default all): {','.join(ROWS)}")
  ap.add_argument("--phase", choices=("calibrate", "sweep", "final", "all", "report"),
                  default="all", help="calibrate: only time the rows' steps; report: run"
                  " nothing, rewrite the markdown from the cache")
  ap.add_argument("--minutes", type=float, default=5.0, help="pre-training budget of a final run")
  ap.add_argument("--sweep-minutes", type=float, default=2.5, help="... of a sweep run")
  ap.add_argument("--seeds", type=int, default=3)
  ap.add_argument("--calibration-seconds", type=float, default=20.0)
  ap.add_argument("--workroot", default="runs/fashion_mnist_table")
  ap.add_argument("--calibration", default=os.path.join(HERE, "results", "fashion_mnist_calibration.json"),
                  help="the rows' calibrated steps/s (committed, so every clone trains the same"
                  " step counts; '' = <workroot>/calibration.json)")
  ap.add_argument("--out", default=os.path.join(HERE, "results"))
  ap.add_argument("--jobs", type=int, default=1,
                  help="rows trained in parallel, each in its own process pinned to its share"
                  " of the CPUs (see `run_jobs`; 2 on a 2-core machine)")
  ap.add_argument("--quick", action="store_true",
                  help="smoke: runlocal-sized model, 2-point sweeps, seconds-long budgets")
  a = ap.parse_args(argv)
  if a.quick:
    a.minutes, a.sweep_minutes, a.calibration_seconds = 0.05, 0.05, 2.0
    a.seeds = min(a.seeds, 2)
    if a.workroot == ap.get_default("workroot"):
      a.workroot += "_quick"
  wanted = [k for k in a.rows.split(",") if k] or list(ROWS)
  unknown = sorted(set(wanted) - set(ROWS))
  if unknown:
    ap.error(f"unknown rows {unknown}; valid: {', '.join(ROWS)}")
  if a.jobs < 1 or a.jobs > len(os.sched_getaffinity(0)):
    ap.error(f"--jobs {a.jobs}: must be between 1 and this process's {len(os.sched_getaffinity(0))}"
             " CPUs")
  root = Cache(a.workroot, "" if a.quick else a.calibration)
  if a.phase != "report":
    stop_between_runs()  # `run_jobs` installs its own forwarding handler while jobs run
  t0 = time.time()
  if a.phase in ("calibrate", "sweep", "all") and (a.phase == "calibrate" or a.jobs > 1):
    for key in wanted:  # before any parallel job: one writer of the calibration file
      root.calibration(key, quick=a.quick, seconds=a.calibration_seconds, run_missing=True)

  final = a.phase in ("final", "all")
  if a.jobs > 1 and a.phase in ("sweep", "final", "all"):
    for s in range(a.seeds if final else 0):  # the jobs read them (time to reach the probes)
      reference(s, quick=a.quick, root=root)
    code = run_jobs(wanted, a)
    if code:
      sys.exit(code)
    wanted = []  # everything is cached now: the table below is read from the work root
  refs = [reference(s, quick=a.quick, root=root) if final
          else cached_results(root.reference_dir(s), make_reference_config(s, a.quick))
          for s in range(a.seeds)]
  rows = {}
  for key in ROWS:  # every row, so the table shows what is cached and what is pending
    points = sweep_points(key, a, root, run_missing=key in wanted and a.phase in ("sweep", "all"))
    chosen = choose(points)
    rows[key] = (points, chosen, final_runs(key, chosen, a, root, run_missing=key in wanted and final))

  os.makedirs(a.out, exist_ok=True)
  path = os.path.join(a.out, "fashion_mnist_quick.md" if a.quick else "fashion_mnist.md")
  workdir_lib.write_atomic(path, render(rows, refs, a, root, (time.time() - t0) / 60))
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
