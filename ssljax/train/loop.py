"""`train_and_evaluate(config, workdir)`: the pretraining loop, read top to bottom.

Set-up (mesh, data, network, optimiser, state) → resume from the latest
checkpoint → steps with progress bar, metrics, periodic evaluation and
checkpoints → final evaluation and a results table. Logging happens on process
0 only; every process runs the same jitted computations in the same order.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils
from tqdm import tqdm

from ssljax import errors
from ssljax import parallel
from ssljax.data import crops as crops_lib
from ssljax.data import datasets, loader
from ssljax.train import checkpoint as ckpt_lib
from ssljax.train import evaluation
from ssljax.train import metrics_writer
from ssljax.train import network as network_lib
from ssljax.train import pid_monitor as pid_monitor_lib
from ssljax.train import pid_ssl
from ssljax.train import run_plots
from ssljax.train import setup as setup_lib
from ssljax.train import step as step_lib
from ssljax.train import workdir as workdir_lib

log = logging.getLogger("ssljax")


NonFiniteLossError = errors.NonFiniteLossError  # kept importable from here


def maybe_initialize_distributed(cfg: ml_collections.ConfigDict) -> None:
  """`jax.distributed.initialize` from ``config.distributed`` (auto-detected when fields are empty)."""
  if not cfg.initialize:
    return
  kwargs = {}
  if cfg.coordinator_address:
    kwargs["coordinator_address"] = cfg.coordinator_address
  if cfg.num_processes > 0:
    kwargs["num_processes"] = cfg.num_processes
  if cfg.process_id >= 0:
    kwargs["process_id"] = cfg.process_id
  if cfg.local_device_ids:
    kwargs["local_device_ids"] = [int(i) for i in cfg.local_device_ids.split(",")]
  jax.distributed.initialize(**kwargs)


def _host(tree):
  """Replicated device values → host floats (multi-host safe)."""
  return jax.tree.map(lambda x: np.asarray(x.addressable_shards[0].data)
                      if isinstance(x, jax.Array) else np.asarray(x), tree)


class _SigtermFlag:
  """Turns SIGTERM (pre-emption) into a flag the loop polls, so it can checkpoint."""

  def __init__(self):
    self.raised = False
    self._prev = None

  def __enter__(self):
    try:
      self._prev = signal.signal(signal.SIGTERM, self._handle)
    except ValueError:  # not the main thread (e.g. a notebook worker): no handler
      self._prev = None
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.raised = True

  def __exit__(self, *exc):
    if self._prev is not None:
      signal.signal(signal.SIGTERM, self._prev)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       stop_after_steps: int | None = None, progress: bool = True) -> dict[str, Any]:
  """Pretrains, evaluates and returns the final metrics.

  Args:
    config: a config from ``configs/`` (validated here).
    workdir: run directory: ``config.json``, ``loss_hparams.json``, ``metrics.jsonl``,
      ``tensorboard/``, ``checkpoints/``, ``results.json``. An existing checkpoint is resumed.
    stop_after_steps: stop (with a checkpoint) once the step reaches this value,
      as a pre-emption would; used by the resume tests.
    progress: show a tqdm progress bar (process 0).
  """
  maybe_initialize_distributed(config.distributed)
  is_main = jax.process_index() == 0
  with workdir_lib.WorkdirLock(workdir, active=is_main):
    return _train_and_evaluate(config, workdir, stop_after_steps=stop_after_steps,
                               progress=progress and is_main)


def host_crops(run: setup_lib.RunSetup):
  """Per-view `HostCrop`s when the random resized crops are cut on the host, else ``None``.

  Variable-size datasets (ImageNet) crop each view from the whole decoded image
  on the host (``config.data.host_crops``, `ssljax.data.crops`), as the papers
  do, resized by ``config.data.host_resize``; this needs every view to have a
  random resized crop of one size (not multi-crop). Otherwise the device crops
  host-size images.
  """
  views = step_lib.view_configs(run.config.data)
  if (not run.config.data.host_crops or not run.dataset.variable_size
      or any(v.crop_scale is None for v in views) or len({v.output_size for v in views}) != 1):
    return None
  return [crops_lib.HostCrop.from_view_config(v, resize=run.config.data.host_resize)
          for v in views]


def make_train_loader(run: setup_lib.RunSetup):
  """The run's checkpointable training iterator."""
  d = run.config.data
  return loader.make_train_loader(d.name, global_batch_size=d.batch_size, seed=run.config.seed,
                                  split=run.dataset.train_split, data_dir=d.data_dir,
                                  worker_count="auto" if d.worker_count is None else d.worker_count,
                                  cache_in_memory=d.cache_in_memory, host_crops=host_crops(run),
                                  image_folder=d.image_folder)


def say(message: str) -> None:
  """A message users must see (resume, fall-back, a phase's end): one line on stderr, process 0.

  Written through tqdm, which lifts an open progress bar above the line.
  """
  if jax.process_index() == 0:
    tqdm.write(f"[ssljax] {message}", file=sys.stderr)
    sys.stderr.flush()


def _train_and_evaluate(config, workdir, *, stop_after_steps, progress):
  run = setup_lib.build(config)  # every config error surfaces here, before anything is written
  mesh, info, total_steps = run.mesh, run.dataset, run.total_steps
  is_main = jax.process_index() == 0
  config_json = config.to_json_best_effort(indent=2, sort_keys=True)
  ckpt = ckpt_lib.Checkpointer(workdir, keep=config.checkpoint.keep)
  hparams_json = workdir_lib.loss_hparams_json(run.objective.terms)
  changes, hparams_recorded = [], False
  if ckpt.all_steps():
    changes = workdir_lib.check_resume(workdir, config_json)
    hparams_recorded = workdir_lib.check_loss_hparams(workdir, hparams_json)

  data_it = make_train_loader(run)
  state = run.init_state(jax.random.key(config.seed))
  pseudo = None  # PID-SSL pseudo-labels of the training split, int32 [num_train]
  restored = ckpt.restore_latest_intact(run.abstract_state(), say=say)
  start = 0
  if restored is not None:
    start, state, data_state = restored
    try:
      data_it.set_state(data_state["iterator"])
      pseudo = _decode_labels(data_state.get("pid_pseudo_labels"))
    except (ValueError, KeyError, TypeError) as e:
      raise errors.CheckpointError(
          f"the data-iterator state of checkpoint step {start} in {ckpt.directory} does not fit "
          f"this loader ({ckpt_lib._one_line(e)}). Rerun with the saved config, or use a new "
          "--workdir.") from None
    if start >= total_steps and os.path.exists(os.path.join(workdir, "results.json")):
      say(f"the run in {workdir} is complete (step {start}); printing its results. Use "
          "--mode=evaluate to evaluate it again.")
      with open(os.path.join(workdir, "results.json"), encoding="utf-8") as f:
        return json.load(f)
    say(f"resumed from step {start} of {total_steps} in {ckpt.directory}")
    for line in changes:
      say(f"changed on resume (safe): {line}")
  if is_main:  # the run record is written only once the resume is known to be valid
    workdir_lib.write_atomic(os.path.join(workdir, workdir_lib.CONFIG_FILE), config_json)
    if not hparams_recorded:  # a fresh run, or one saved before ssljax kept this record
      workdir_lib.write_atomic(os.path.join(workdir, workdir_lib.LOSS_HPARAMS_FILE), hparams_json)
  step = int(_host(state.step))
  refresh_at = set(pid_ssl.refresh_steps(config.pid, steps_per_epoch=run.steps_per_epoch,
                                         total_steps=total_steps)) if config.pid.enabled else set()
  monitor = (pid_monitor_lib.PIDMonitor(config, run.net, info, step_lib.view_configs(config.data),
                                        num_classes=run.num_classes)
             if config.pid_monitor.every_steps else None)

  jitted = run.jitted_step()
  rng = jax.random.key(config.seed + 1)
  # Records past the restored step come from the interrupted attempt; they are redone.
  writer = metrics_writer.MetricsWriter(workdir, keep_until_step=start)
  embed_fn = evaluation.make_embed_fn(run.net, mean=info.mean, std=info.std,
                                      image_size=config.data.image_size, mesh=mesh)
  bar = None
  if progress:
    bar = tqdm(total=total_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True,
               leave=True)
  late = LateMetrics()
  batch_size = config.data.batch_size

  def complete(done, *, closing=False):
    """Host side of a finished step ``(s, device metrics)``: NaN check, log record, bar."""
    nonlocal t_log, steps_logged
    if done is None:
      return
    s, metrics = done
    loss, nonfinite = _host((metrics["loss"], metrics["nonfinite_steps"]))  # waits for step s
    if int(nonfinite):
      _raise_nonfinite(s, ckpt, writer, _host(metrics))
    steps_logged += 1
    if s % config.log_every_steps == 0 or s == total_steps:
      m = _host(metrics)
      del m["nonfinite_steps"]  # checked above; the run stops on any
      dt = time.time() - t_log
      m["lr"] = float(run.schedule(s))
      m["steps_per_second"] = steps_logged / dt
      m["images_per_second"] = steps_logged * batch_size / dt
      m["epoch"] = s / run.steps_per_epoch
      writer.write(s, m)
      t_log, steps_logged = time.time(), 0
    if bar is not None:
      rate = bar.format_dict["rate"]  # tqdm's smoothed completed steps per second
      bar.set_postfix_str(f"loss {float(loss):.4f}" + (f", {rate * batch_size:,.0f} img/s"
                                                        if rate else ""), refresh=False)
      if closing:
        bar.n = s  # close() draws the final bar, once
      else:
        bar.update(s - bar.n)

  last_eval = {}
  t_start, start_step = time.time(), step
  t_log, steps_logged = t_start, 0
  try:
    with _SigtermFlag() as sigterm:
      while step < total_steps:
        if step in refresh_at:
          pseudo = compute_pseudo_labels(run, state, embed_fn, previous=pseudo)
          writer.write(step, {"pid/refreshed": 1.0})
        batch = next(data_it)
        index = batch.pop("index")
        if config.pid.enabled:
          batch["pseudo_label"] = (pseudo[index] if pseudo is not None
                                   else np.zeros_like(batch["label"]))
        global_batch = {k: evaluation.to_global(mesh, v) for k, v in batch.items()}
        state, metrics = jitted(state, global_batch, rng)
        step += 1
        # Step `step` runs while the host waits for step - 1: dispatch is never
        # more than one step ahead, and every step is checked for NaN/Inf.
        complete(late.push(step, metrics))
        is_last = step == total_steps
        if is_last:
          complete(late.flush(), closing=True)
        if monitor is not None and (step % config.pid_monitor.every_steps == 0 or is_last):
          complete(late.flush())  # what reads the state finishes the step first
          writer.write(step, monitor(run.replicated(state)))
        if config.eval.every_steps and step % config.eval.every_steps == 0 and not is_last:
          complete(late.flush())
          t_eval = time.time()
          last_eval = evaluate(run, state, embed_fn, final=False)
          writer.write(step, last_eval)
          say(f"evaluation at step {step} ({_duration(time.time() - t_eval)}): "
              + _accuracies(last_eval))
        preempted = sigterm.raised or ckpt.reached_preemption(step)
        stop_now = stop_after_steps is not None and step >= stop_after_steps
        if step % config.checkpoint.every_steps == 0 or is_last or preempted or stop_now:
          complete(late.flush(), closing=preempted or stop_now)  # the NaN check before saving
          ckpt.save(step, state, {"iterator": data_it.get_state(),
                                  "pid_pseudo_labels": _encode_labels(pseudo)}, force=True)
        if preempted or stop_now:
          ckpt.wait()
          if bar is not None:
            bar.close()
          writer.close()
          say(f"stopping at step {step} ({'pre-emption' if preempted else 'stop_after_steps'}); "
              "the checkpoint is saved, rerun the same command to resume")
          return {"stopped_at_step": step}
  finally:
    data_it.close()  # stops the grain workers (they would prefetch through evaluation)
    if bar is not None:
      bar.close()  # idempotent; the final bar is drawn here, once
  if step > start_step:
    seconds = time.time() - t_start
    say(f"pretrain done: {step - start_step} steps in {_duration(seconds)} "
        f"({(step - start_step) * batch_size / seconds:,.0f} images/s)")
  ckpt.wait()
  t_eval = time.time()
  results = evaluate(run, state, embed_fn, final=True)
  results["train/steps"] = step
  spectra = None
  if config.eval.plots:
    spectra = embedding_spectra(run, state, embed_fn)
    results.update(run_plots.spectrum_summary(spectra))
  writer.write(step, results)
  writer.close()
  ckpt.close()
  if is_main:
    workdir_lib.write_atomic(os.path.join(workdir, "results.json"),
                             json.dumps(results, indent=2, sort_keys=True))
    if spectra is not None:
      run_plots.write_run_plots(workdir, spectra)
  say(f"final evaluation done in {_duration(time.time() - t_eval)}"
      + (f"; plots in {os.path.join(workdir, 'plots')}" if spectra is not None else ""))
  return results


class LateMetrics:
  """Holds the last dispatched step's device metrics until the next step is dispatched.

  The host reads a step's metrics one step late, as the train loop of nanodo
  (``google-deepmind/nanodo``, ``nanodo/train.py``) does: after dispatching
  step ``t`` it fetches step ``t - 1``'s, which blocks only until that step is
  done while ``t`` runs. `_train_and_evaluate` fetches every step's loss and
  non-finite count this way, so the device is never idle between steps,
  dispatch never runs more than one step ahead, every step is checked for
  NaN/Inf, and the progress bar counts completed steps.

  Example:
    >>> late = LateMetrics()
    >>> late.push(1, {"loss": 0.5}) is None   # nothing finished yet
    True
    >>> late.push(2, {"loss": 0.4})           # step 1, fetched while step 2 runs
    (1, {'loss': 0.5})
    >>> late.flush(), late.flush()            # before reading the state, or at the end
    ((2, {'loss': 0.4}), None)
  """

  def __init__(self):
    self._pending = None

  def push(self, step: int, metrics) -> tuple[int, Any] | None:
    """Keeps ``(step, metrics)``; returns the previously pushed pair (``None`` first)."""
    done, self._pending = self._pending, (step, metrics)
    return done

  def flush(self) -> tuple[int, Any] | None:
    """Returns and forgets the pending pair (``None`` if there is none)."""
    done, self._pending = self._pending, None
    return done


def _duration(seconds: float) -> str:
  """``'42 s'``, ``'5 min 12 s'`` or ``'1 h 03 min'``."""
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds} s"
  if seconds < 3600:
    return f"{seconds // 60} min {seconds % 60:02d} s"
  return f"{seconds // 3600} h {seconds // 60 % 60:02d} min"


def _accuracies(results: dict[str, float]) -> str:
  """``'knn 81.20 %, online_probe 79.85 %'`` from ``eval/<name>/top1`` results."""
  return ", ".join(f"{k.removeprefix('eval/').removesuffix('/top1')} {100 * v:.2f} %"
                   for k, v in sorted(results.items()) if k.endswith("/top1"))


def embedding_spectra(run: setup_lib.RunSetup, state, embed_fn) -> dict[str, np.ndarray]:
  """Covariance eigenvalues of eval-split backbone embeddings and projections (collapse check).

  ``embed_fn``: the run's `evaluation.make_embed_fn` for embeddings (reused, not recompiled).
  """
  state = run.replicated(state)  # evaluation reads whole arrays (FSDP shards them)
  config = run.config
  project_fn = evaluation.make_embed_fn(run.net, mean=run.dataset.mean, std=run.dataset.std,
                                        image_size=config.data.image_size, mesh=run.mesh,
                                        output="projection")
  spectra = {}
  for output, fn in (("embedding", embed_fn), ("projection", project_fn)):
    feats, _ = evaluation.extract(fn, state.params["online"], state.batch_stats, config.data,
                                  run.dataset.eval_split, mesh=run.mesh,
                                  batch_size=config.eval.batch_size,
                                  max_examples=config.eval.spectrum_examples)
    spectra[output] = run_plots.covariance_spectrum(feats)
  return spectra


def evaluate_checkpoint(config: ml_collections.ConfigDict, workdir: str,
                        step: int | None = None) -> dict[str, Any]:
  """Offline evaluation of a saved run: linear probe, kNN and online probe from a checkpoint.

  Uses ``config.eval`` (e.g. ``--config.eval.linear_epochs=100``); writes
  ``eval_results_<step>.json`` next to the checkpoints.
  """
  maybe_initialize_distributed(config.distributed)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise errors.CheckpointError(f"no checkpoints in {workdir}; train first with the same "
                                 "--config and --workdir")
  with workdir_lib.WorkdirLock(workdir, active=jax.process_index() == 0):
    return _evaluate_checkpoint(config, workdir, step)


def _evaluate_checkpoint(config, workdir, step):
  run = setup_lib.build(config)
  workdir_lib.check_resume(workdir, config.to_json_best_effort())
  ckpt = ckpt_lib.Checkpointer(workdir, keep=config.checkpoint.keep)
  if step is None:
    restored = ckpt.restore_latest_intact(run.abstract_state(), say=say)
    if restored is None:
      raise errors.CheckpointError(f"no checkpoint in {ckpt.directory}; train first with the "
                                   "same --config and --workdir")
    step, state, _ = restored
  else:
    state, _ = ckpt.restore(step, run.abstract_state())
  ckpt.close()
  embed_fn = evaluation.make_embed_fn(run.net, mean=run.dataset.mean, std=run.dataset.std,
                                      image_size=config.data.image_size, mesh=run.mesh)
  results = evaluate(run, state, embed_fn, final=True)
  results["train/steps"] = step
  if jax.process_index() == 0:
    workdir_lib.write_atomic(eval_results_path(workdir, step, config.eval.dataset),
                             json.dumps(results, indent=2, sort_keys=True))
  return results


def eval_results_path(workdir: str, step: int, dataset: str = "") -> str:
  """Where ``--mode=evaluate`` writes the evaluation of checkpoint ``step`` (on ``dataset``)."""
  return os.path.join(workdir, f"eval_results_{step}{'_' + dataset if dataset else ''}.json")


def _encode_labels(labels):
  if labels is None:
    return None
  return base64.b64encode(np.asarray(labels, np.int32).tobytes()).decode("ascii")


def _decode_labels(blob):
  if blob is None:
    return None
  return np.frombuffer(base64.b64decode(blob), np.int32).copy()


def compute_pseudo_labels(run: setup_lib.RunSetup, state, embed_fn, *, previous):
  """PID-SSL global clustering: k-means on backbone features of un-augmented train images."""
  state = run.replicated(state)  # evaluation reads whole arrays (FSDP shards them)
  t = time.time()
  config = run.config
  feats, _ = evaluation.extract(embed_fn, state.params["online"], state.batch_stats, config.data,
                                run.dataset.train_split, mesh=run.mesh,
                                batch_size=config.eval.batch_size)
  k = run.num_clusters
  labels = pid_ssl.cluster_features(feats, k, seed=config.seed + int(_host(state.step)),
                                    iters=config.pid.kmeans_iters, mesh=run.mesh)
  labels = pid_ssl.align_to_previous(labels, previous, k)
  log.info("PID-SSL: %d pseudo-labels (K=%d) computed in %.1fs", len(labels), k, time.time() - t)
  return labels


def _raise_nonfinite(step, ckpt, writer, metrics):
  writer.write(step, {"nonfinite": 1.0})
  writer.close()
  ckpt.wait()
  bad = sorted(k for k, v in metrics.items() if not np.all(np.isfinite(v)))
  latest = ckpt.latest_step()
  kept = (f"the latest checkpoint (step {latest}) holds only finite values" if latest is not None
          else "no checkpoint was written")
  raise errors.NonFiniteLossError(
      f"the loss, a gradient or the updated state became NaN/Inf before step {step} (non-finite "
      f"metrics: {bad or 'none; the new parameters or optimiser state overflowed'}). Training "
      f"stopped; no such update was applied and {kept}. Lower optim.base_lr, add "
      "optim.grad_clip_norm, or check the loss hyper-parameters.")


def evaluate(run: setup_lib.RunSetup, state, embed_fn, *, final: bool) -> dict[str, float]:
  """Online probe + kNN (always), the offline linear probe and the baselines (final, if enabled).

  Baselines (``config.eval.pixel_baseline`` / ``random_init_baseline``): the
  same kNN and linear-probe recipe on raw pixels (``pixels_knn/``,
  ``pixels_linear/``) and on the untrained encoder of ``config.seed``
  (``random_init_knn/``, ``random_init_linear/``), so a run shows what its
  pre-training added.

  With ``config.eval.dataset`` set (transfer evaluation, e.g. ImageNet → CIFAR-10
  as PID-SSL's transfer table), kNN and the linear probe run on that dataset's
  labelled and evaluation splits, its images resized to the model's view size
  and normalised with the training dataset's statistics (``embed_fn``), and the
  online probe (trained on the pretraining classes) and the baselines are skipped.
  """
  state = run.replicated(state)  # evaluation reads whole arrays (FSDP shards them)
  config = run.config
  ecfg = config.eval
  transfer = bool(ecfg.dataset)
  _, info, nc = _eval_data(run)
  train_f, train_y, test_f, test_y = _features(run, state, embed_fn)
  out = {}
  if not transfer:
    out.update(evaluation.online_probe_accuracy(_host(state.params["probe"]), test_f, test_y, nc))
  out.update(_probes(run, (train_f, train_y, test_f, test_y), linear=final and ecfg.linear))
  if final and not transfer:
    out.update(baselines(run, embed_fn))
  prefix = f"eval/transfer/{info.name}/" if transfer else "eval/"
  return {f"{prefix}{k}": v for k, v in out.items()}


def baselines(run: setup_lib.RunSetup, embed_fn) -> dict[str, float]:
  """The probes on raw pixels and on the random-init encoder, as enabled in ``config.eval``."""
  out = {}
  if run.config.eval.pixel_baseline:
    xs, ys, xt, yt = pixel_features(run)
    n = run.config.eval.knn_train_examples  # the encoder's probes see the same training records
    if n > 0:
      xs, ys = xs[:n], ys[:n]
    out.update(_probes(run, (xs, ys, xt, yt), prefix="pixels_"))
  if run.config.eval.random_init_baseline:
    untrained = run.replicated(run.init_state(jax.random.key(run.config.seed)))
    out.update(_probes(run, _features(run, untrained, embed_fn), prefix="random_init_"))
  return out


def _features(run: setup_lib.RunSetup, state, embed_fn):
  """``(train_f, train_y, eval_f, eval_y)``: embeddings of the kNN-bank / probe and evaluation splits."""
  ecfg = run.config.eval
  data_cfg, info, _ = _eval_data(run)
  kw = dict(mesh=run.mesh, batch_size=ecfg.batch_size)
  params, bs = state.params["online"], state.batch_stats
  train_f, train_y = evaluation.extract(embed_fn, params, bs, data_cfg, info.labeled_split,
                                        max_examples=ecfg.knn_train_examples, **kw)
  test_f, test_y = evaluation.extract(embed_fn, params, bs, data_cfg, info.eval_split, **kw)
  return train_f, train_y, test_f, test_y


def _probes(run: setup_lib.RunSetup, features, *, prefix: str = "",
            linear: bool = True) -> dict[str, float]:
  """Weighted kNN and (if ``linear``) the offline linear probe on ``(train_f, train_y, eval_f, eval_y)``."""
  config = run.config
  ecfg = config.eval
  _, _, nc = _eval_data(run)
  train_f, train_y, test_f, test_y = features
  out = evaluation.knn_accuracy(train_f, train_y, test_f, test_y, num_classes=nc,
                                k=ecfg.knn_k, temperature=ecfg.knn_temperature,
                                prefix=f"{prefix}knn")
  if linear:
    n = ecfg.linear_train_examples
    lf, ly = (train_f, train_y) if n < 0 else (train_f[:n], train_y[:n])
    out.update(evaluation.linear_accuracy(lf, ly, test_f, test_y, num_classes=nc,
                                          epochs=ecfg.linear_epochs,
                                          batch_size=ecfg.linear_batch_size,
                                          learning_rate=ecfg.linear_lr, seed=config.seed,
                                          prefix=f"{prefix}linear"))
  return out


def _eval_data(run: setup_lib.RunSetup):
  """``(data config, DatasetInfo, num_classes)`` of the evaluation dataset."""
  config = run.config
  if not config.eval.dataset:
    return config.data, run.dataset, run.num_classes
  info = datasets.get_dataset_info(config.eval.dataset)
  data_cfg = ml_collections.ConfigDict({"name": info.name, "data_dir": config.eval.data_dir,
                                        "image_folder": config.eval.image_folder})
  return data_cfg, info, info.num_classes


def pixel_features(run: setup_lib.RunSetup):
  """Normalised, flattened raw pixels ``(train_x, train_y, eval_x, eval_y)`` of the probe splits."""
  config, info = run.config, run.dataset
  xs, ys = loader.load_split_arrays(config.data.name, info.labeled_split, config.data.data_dir)
  xt, yt = loader.load_split_arrays(config.data.name, info.eval_split, config.data.data_dir)
  norm = lambda x: ((x.astype(np.float32) / 255.0 - np.asarray(info.mean)) / np.asarray(info.std)
                    ).reshape(len(x), -1)
  return norm(xs), ys, norm(xt), yt


def format_results(results: dict[str, float], title: str = "", *, method: str = "encoder",
                   split: str = "test") -> str:
  """The evaluation as markdown: linear / kNN top-1 of the encoder and of each baseline.

  Rows: the pre-trained encoder (``method``), then the random-init encoder and
  raw pixels when their probes ran (`baselines`); other metrics (online probe,
  transfer, top-5, effective rank) follow as ``metric: value`` lines.

  >>> print(format_results({"eval/linear/top1": 0.88, "eval/knn/top1": 0.875,
  ...                       "eval/pixels_linear/top1": 0.84, "eval/pixels_knn/top1": 0.855},
  ...                      method="vicreg"))
  | test top-1 | linear probe | kNN |
  |---|---|---|
  | vicreg encoder | 88.00% | 87.50% |
  | raw pixels | 84.00% | 85.50% |
  """
  pct = lambda k: f"{100 * results[k]:.2f}%" if k in results else "–"
  rows = [("", f"{method} encoder"), ("random_init_", "random-init encoder"),
          ("pixels_", "raw pixels")]
  used = set()
  lines = [f"### {title}" if title else "", f"| {split} top-1 | linear probe | kNN |", "|---|---|---|"]
  for prefix, name in rows:
    keys = (f"eval/{prefix}linear/top1", f"eval/{prefix}knn/top1")
    if any(k in results for k in keys):
      lines.append(f"| {name} | {pct(keys[0])} | {pct(keys[1])} |")
      used.update(keys)
  rest = [(k, v) for k, v in sorted(results.items())
          if k not in used and (k.startswith("eval/") or k.endswith("effective_rank"))]
  if rest:
    lines.append("")
  for k, v in rest:
    value = f"{v:.1f}" if k.endswith("effective_rank") else f"{100 * v:.2f}%"
    lines.append(f"{k.removeprefix('eval/')}: {value}")
  return "\n".join(l for i, l in enumerate(lines) if l or i)
