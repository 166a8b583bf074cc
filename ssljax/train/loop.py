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
import time
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from ssljax import parallel
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

log = logging.getLogger("ssljax")


class NonFiniteLossError(FloatingPointError):
  """The loss or a gradient became NaN/Inf; training was stopped."""


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
    workdir: run directory: ``config.json``, ``metrics.jsonl``, ``tensorboard/``,
      ``checkpoints/``, ``results.json``. An existing checkpoint is resumed.
    stop_after_steps: stop (with a checkpoint) once the step reaches this value,
      as a pre-emption would; used by the resume tests.
    progress: show a tqdm progress bar (process 0).
  """
  maybe_initialize_distributed(config.distributed)
  run = setup_lib.build(config)
  mesh, info, total_steps = run.mesh, run.dataset, run.total_steps
  state = run.init_state(jax.random.key(config.seed))
  is_main = jax.process_index() == 0
  if is_main:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))

  data_it = loader.make_train_loader(config.data.name, global_batch_size=config.data.batch_size,
                                     seed=config.seed, data_dir=config.data.data_dir,
                                     worker_count=config.data.worker_count,
                                     cache_in_memory=config.data.cache_in_memory)
  ckpt = ckpt_lib.Checkpointer(workdir, keep=config.checkpoint.keep)
  pseudo = None  # PID-SSL pseudo-labels of the training split, int32 [num_train]
  start = ckpt.latest_step()
  if start is not None:
    state, data_state = ckpt.restore(start, run.abstract_state())
    data_it.set_state(data_state["iterator"])
    pseudo = _decode_labels(data_state.get("pid_pseudo_labels"))
    log.info("resumed from step %d in %s", start, ckpt.directory)
  step = int(_host(state.step))
  refresh_at = set(pid_ssl.refresh_steps(config.pid, steps_per_epoch=run.steps_per_epoch,
                                         total_steps=total_steps)) if config.pid.enabled else set()
  monitor = (pid_monitor_lib.PIDMonitor(config, run.net, info, step_lib.view_configs(config.data),
                                        num_classes=run.num_classes)
             if config.pid_monitor.every_steps else None)

  jitted = run.jitted_step()
  rng = jax.random.key(config.seed + 1)
  writer = metrics_writer.MetricsWriter(workdir)
  embed_fn = evaluation.make_embed_fn(run.net, mean=info.mean, std=info.std,
                                      image_size=config.data.image_size, mesh=mesh)
  bar = None
  if progress and is_main:
    from tqdm import tqdm
    bar = tqdm(total=total_steps, initial=step, desc="pretrain", unit="step", dynamic_ncols=True)

  last_eval = {}
  t0, steps_timed = time.time(), 0
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
      steps_timed += 1
      if bar is not None:
        bar.update(1)
      is_last = step == total_steps
      if step % config.log_every_steps == 0 or is_last:
        m = _host(metrics)
        if int(_host(state.nonfinite_steps)):
          _raise_nonfinite(step, ckpt, writer, m)
        dt = time.time() - t0
        m["lr"] = float(run.schedule(step))
        m["steps_per_second"] = steps_timed / dt
        m["images_per_second"] = steps_timed * config.data.batch_size / dt
        m["epoch"] = step / run.steps_per_epoch
        writer.write(step, m)
        if bar is not None:
          bar.set_postfix(loss=f"{float(m['loss']):.4f}", img_s=f"{m['images_per_second']:.0f}")
        t0, steps_timed = time.time(), 0
      if monitor is not None and (step % config.pid_monitor.every_steps == 0 or is_last):
        writer.write(step, monitor(state))
      if config.eval.every_steps and step % config.eval.every_steps == 0 and not is_last:
        last_eval = evaluate(run, state, embed_fn, final=False)
        writer.write(step, last_eval)
      preempted = sigterm.raised or ckpt.reached_preemption(step)
      stop_now = stop_after_steps is not None and step >= stop_after_steps
      if step % config.checkpoint.every_steps == 0 or is_last or preempted or stop_now:
        if int(_host(state.nonfinite_steps)):
          _raise_nonfinite(step, ckpt, writer, _host(metrics))
        ckpt.save(step, state, {"iterator": data_it.get_state(),
                                "pid_pseudo_labels": _encode_labels(pseudo)}, force=True)
      if preempted or stop_now:
        ckpt.wait()
        if bar is not None:
          bar.close()
        writer.close()
        log.warning("stopping at step %d (%s); the checkpoint is saved, rerun the same command "
                    "to resume", step, "pre-emption" if preempted else "stop_after_steps")
        return {"stopped_at_step": step}
  if bar is not None:
    bar.close()
  ckpt.wait()
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
    with open(os.path.join(workdir, "results.json"), "w", encoding="utf-8") as f:
      json.dump(results, f, indent=2, sort_keys=True)
    if spectra is not None:
      run_plots.write_run_plots(workdir, spectra)
  return results


def embedding_spectra(run: setup_lib.RunSetup, state, embed_fn) -> dict[str, np.ndarray]:
  """Covariance eigenvalues of eval-split backbone embeddings and projections (collapse check).

  ``embed_fn``: the run's `evaluation.make_embed_fn` for embeddings (reused, not recompiled).
  """
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
  run = setup_lib.build(config)
  ckpt = ckpt_lib.Checkpointer(workdir, keep=config.checkpoint.keep)
  step = ckpt.latest_step() if step is None else step
  if step is None:
    raise FileNotFoundError(f"no checkpoint in {ckpt.directory}; train first with the same "
                            "--config and --workdir")
  state, _ = ckpt.restore(step, run.abstract_state())
  ckpt.close()
  embed_fn = evaluation.make_embed_fn(run.net, mean=run.dataset.mean, std=run.dataset.std,
                                      image_size=config.data.image_size, mesh=run.mesh)
  results = evaluate(run, state, embed_fn, final=True)
  results["train/steps"] = step
  if jax.process_index() == 0:
    with open(os.path.join(workdir, f"eval_results_{step}.json"), "w", encoding="utf-8") as f:
      json.dump(results, f, indent=2, sort_keys=True)
  return results


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
  raise NonFiniteLossError(
      f"the loss or a gradient became NaN/Inf before step {step} (non-finite metrics: {bad}). "
      f"Training stopped; no update with NaN/Inf was applied, so the latest checkpoint is clean. "
      f"Lower optim.base_lr, add optim.grad_clip_norm, or check the loss hyper-parameters.")


def evaluate(run: setup_lib.RunSetup, state, embed_fn, *, final: bool) -> dict[str, float]:
  """Online probe + kNN (always) and the offline linear probe (final, if enabled)."""
  config, info, mesh = run.config, run.dataset, run.mesh
  params = state.params["online"]
  bs = state.batch_stats
  ecfg = config.eval
  kw = dict(mesh=mesh, batch_size=ecfg.batch_size)
  train_f, train_y = evaluation.extract(embed_fn, params, bs, config.data, info.labeled_split,
                                        max_examples=ecfg.knn_train_examples, **kw)
  test_f, test_y = evaluation.extract(embed_fn, params, bs, config.data, info.eval_split, **kw)
  nc = run.num_classes
  out = {}
  out.update(evaluation.online_probe_accuracy(_host(state.params["probe"]), test_f, test_y, nc))
  out.update(evaluation.knn_accuracy(train_f, train_y, test_f, test_y, num_classes=nc,
                                     k=ecfg.knn_k, temperature=ecfg.knn_temperature))
  if final and ecfg.linear:
    n = ecfg.linear_train_examples
    lf, ly = (train_f, train_y) if n < 0 else (train_f[:n], train_y[:n])
    out.update(evaluation.linear_accuracy(lf, ly, test_f, test_y, num_classes=nc,
                                          epochs=ecfg.linear_epochs, batch_size=ecfg.linear_batch_size,
                                          learning_rate=ecfg.linear_lr, seed=config.seed))
  if final and ecfg.pixel_baseline:
    out.update(pixel_baseline(run))
  return {f"eval/{k}": v for k, v in out.items()}


def pixel_features(run: setup_lib.RunSetup):
  """Normalised, flattened raw pixels ``(train_x, train_y, eval_x, eval_y)`` of the probe splits."""
  config, info = run.config, run.dataset
  xs, ys = loader.load_split_arrays(config.data.name, info.labeled_split, config.data.data_dir)
  xt, yt = loader.load_split_arrays(config.data.name, info.eval_split, config.data.data_dir)
  norm = lambda x: ((x.astype(np.float32) / 255.0 - np.asarray(info.mean)) / np.asarray(info.std)
                    ).reshape(len(x), -1)
  return norm(xs), ys, norm(xt), yt


def pixel_baseline(run: setup_lib.RunSetup, features=None) -> dict[str, float]:
  """The same linear-probe recipe on raw pixels (``features``: `pixel_features`' output, reused)."""
  config = run.config
  xs, ys, xt, yt = pixel_features(run) if features is None else features
  n = config.eval.linear_train_examples
  if n > 0:
    xs, ys = xs[:n], ys[:n]
  e = config.eval
  return evaluation.linear_accuracy(xs, ys, xt, yt, num_classes=run.num_classes,
                                    epochs=e.linear_epochs, batch_size=e.linear_batch_size,
                                    learning_rate=e.linear_lr, seed=config.seed, prefix="pixels_linear")


def format_results(results: dict[str, float], title: str = "") -> str:
  """A small markdown table of the evaluation metrics."""
  rows = [(k.removeprefix("eval/"), v) for k, v in sorted(results.items()) if k.startswith("eval/")]
  lines = [f"### {title}" if title else "", "| metric | value |", "|---|---|"]
  lines += [f"| {k} | {100 * v:.2f}% |" for k, v in rows]
  return "\n".join(l for l in lines if l)
