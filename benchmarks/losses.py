"""Forward+backward time of every loss kernel in ``ssljax.losses``, by batch and width.

For each loss found in ``ssljax/losses`` (modules are imported defensively, a
missing one is listed and skipped), the script jits ``value_and_grad`` of the
loss with respect to the embeddings, reports the compile time separately,
runs one warm-up call, then reports the median of ``--repeats`` timed calls
(``block_until_ready``). Batch sizes run from 256 to 16384 and widths from 128
to 2048; a combination whose predicted cost (from the last measured size and
the loss's complexity in N and D) exceeds the per-case cap, the remaining
``--max-seconds`` budget or the ``--max-gb`` memory guard is skipped and the
reason is printed.

SSL-HSIC gets its own section: exact vs RFF time per batch size, the log-log
slope of time vs batch (RFF ~1, exact ~2) and the crossover batch. A second
section splits the time of the stats-based kernels into stages (RFF feature
maps vs the F x F moments; Gram matrix vs the rest; covariance moments vs the
log-det; sufficient statistics vs the loss from them).

  python benchmarks/losses.py --quick --out benchmarks/losses_cpu.md
  python benchmarks/losses.py --losses ssl_hsic_rff,ssl_hsic_exact --dims 256
  python benchmarks/losses.py --max-seconds 3600       # full grid, on an accelerator

Conventions: SSL-HSIC uses K = 4 views per image (the official step: 2 online
predictions + 2 target projections), so its N = 4 B; every other loss gets
two [B, D] views (BYOL four: 2 predictions + 2 targets). Inputs are float32
standard normals. Numbers on a shared CPU are noisy: the load average is
printed in the header.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

# ----------------------------------------------------------------------------
# Loss registry
# ----------------------------------------------------------------------------


@dataclass
class Spec:
  """One benchmarked kernel.

  make(B, D) returns (f, args): f(*args) -> scalar; the gradient is taken with
  respect to the first ``n_diff`` arguments (the embeddings; the others, e.g.
  BYOL targets or the CorInfoMax state, are inputs rather than closure
  constants so that compile time does not grow with them). p_n / p_d:
  exponents of the cost in the batch and the width (used only to predict and
  skip). pairwise: number of N x N float32 matrices alive in fwd+bwd as a
  multiple of rows(B)^2 (memory guard). batches: overrides the batch list.
  """
  name: str
  module: str
  make: Callable[[int, int], Tuple[Callable, Tuple]]
  p_n: float
  p_d: float
  rows: Callable[[int], int] = lambda b: 2 * b
  pairwise: float = 0.0
  note: str = ""
  n_diff: Optional[int] = None
  batches: Optional[Sequence[int]] = None


def _normal(shape, seed):
  return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _first(out):
  return out[0] if isinstance(out, tuple) else out


def _two_views(fn, **kw):
  def make(b, d):
    z1 = _normal((b, d), 0)
    z2 = z1 + 0.5 * _normal((b, d), 1)
    return (lambda a, c: _first(fn(jnp.stack([a, c]), **kw))), (z1, z2)
  return make


def _one_view(fn, **kw):
  def make(b, d):
    return (lambda a: _first(fn(a, **kw))), (_normal((b, d), 0),)
  return make


def build_specs(mods: Dict[str, object], hsic_batches: Optional[Sequence[int]] = None
                ) -> List[Spec]:
  specs = []
  if "simclr" in mods:
    specs.append(Spec("nt_xent", "simclr", _two_views(mods["simclr"].nt_xent_loss), 2, 1,
                      pairwise=6))
  if "byol" in mods:
    def make_byol(b, d):
      p1, p2 = _normal((b, d), 0), _normal((b, d), 1)
      t1, t2 = _normal((b, d), 2), _normal((b, d), 3)
      return (lambda a, c, e, f: _first(mods["byol"].byol_loss(jnp.stack([a, c]),
                                                               jnp.stack([e, f])))), (p1, p2, t1, t2)
    specs.append(Spec("byol", "byol", make_byol, 1, 1, n_diff=2,
                      note="grad w.r.t. the 2 predictions"))
  if "barlow_twins" in mods:
    specs.append(Spec("barlow_twins", "barlow_twins",
                      _two_views(mods["barlow_twins"].barlow_twins_loss), 1, 2))
  if "vicreg" in mods:
    specs.append(Spec("vicreg", "vicreg", _two_views(mods["vicreg"].vicreg_loss), 1, 2))
  if "entropy" in mods:
    specs.append(Spec("logdet_entropy", "entropy", _one_view(mods["entropy"].logdet_entropy),
                      1, 3, rows=lambda b: b))
    specs.append(Spec("pairwise_mixture_entropy", "entropy",
                      _one_view(mods["entropy"].pairwise_mixture_entropy), 2, 1,
                      rows=lambda b: b, pairwise=6))
  if "superinfo" in mods:
    specs.append(Spec("superinfo", "superinfo", _two_views(mods["superinfo"].superinfo_loss),
                      2, 1, pairwise=6))
  if "corinfomax" in mods:
    cim = mods["corinfomax"]

    def make_cim(b, d):
      state = cim.corinfomax_init_state(d)
      z1 = _normal((b, d), 0)
      z2 = z1 + 0.5 * _normal((b, d), 1)
      return (lambda a, c, st: cim.corinfomax_loss(jnp.stack([a, c]), state=st)[0]), (z1, z2, state)
    specs.append(Spec("corinfomax", "corinfomax", make_cim, 1, 3, n_diff=2))
  if "hsic" in mods:
    hsic = mods["hsic"]
    key = jax.random.key(0)

    def make_hsic(estimator):
      def make(b, d):
        z = _normal((4, b, d), 0)  # [V=4, N, D]
        return (lambda x: hsic.ssl_hsic_loss(x, key=key, estimator=estimator)[0]), (z,)
      return make
    specs.append(Spec("ssl_hsic_rff", "hsic", make_hsic("rff"), 1, 1, rows=lambda b: 4 * b,
                      note="K=4 views, F=512", batches=hsic_batches))
    specs.append(Spec("ssl_hsic_exact", "hsic", make_hsic("exact"), 2, 1, rows=lambda b: 4 * b,
                      pairwise=6, note="K=4 views", batches=hsic_batches))

    def make_scale(b, d):
      z = _normal((4, b, d), 0)
      return (lambda c, x: hsic.kernel_scale_objective(x, key=key, scale=c)), (jnp.float32(1.0), z)
    specs.append(Spec("ssl_hsic_scale_objective", "hsic", make_scale, 0, 1, n_diff=1,
                      note="1024x1024 samples, grad w.r.t. scale only"))
  return specs


MODULES = ("simclr", "byol", "barlow_twins", "vicreg", "entropy", "superinfo", "corinfomax",
           "hsic")


def import_losses(names: Sequence[str]):
  mods, missing = {}, {}
  for name in names:
    try:
      mods[name] = importlib.import_module(f"ssljax.losses.{name}")
    except Exception as e:  # pylint: disable=broad-except
      missing[name] = f"{type(e).__name__}: {e}"
  return mods, missing


# ----------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------


@dataclass
class Timing:
  compile_s: float
  median_s: float
  runs: List[float] = field(default_factory=list)


def time_fn(f: Callable, args: Tuple, repeats: int, argnums: Optional[Tuple[int, ...]] = None,
            grad: bool = True, min_time: float = 0.25, max_runs: int = 25) -> Timing:
  """Compile time, then the median of calls after one warm-up.

  At least ``repeats`` calls; fast kernels get more (until ``min_time`` seconds
  or ``max_runs`` calls) so that the median is robust on a shared machine.
  """
  if argnums is None:
    argnums = tuple(range(len(args)))
  g = jax.jit(jax.value_and_grad(f, argnums=argnums) if grad else f)
  t0 = time.perf_counter()
  compiled = g.lower(*args).compile()
  compile_s = time.perf_counter() - t0
  jax.block_until_ready(compiled(*args))  # warm-up
  runs = []
  while len(runs) < repeats or (sum(runs) < min_time and len(runs) < max_runs):
    t0 = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    runs.append(time.perf_counter() - t0)
  return Timing(compile_s, statistics.median(runs), runs)


def _weighted_sum(tree, seed=0):
  """A scalar with a non-trivial gradient for every leaf of ``tree``."""
  leaves = jax.tree.leaves(tree)
  total = 0.0
  for i, leaf in enumerate(leaves):
    w = jax.random.normal(jax.random.key(seed + i), jnp.shape(leaf), jnp.result_type(leaf))
    total = total + jnp.sum(leaf * w)
  return total


# ----------------------------------------------------------------------------
# Stage breakdowns
# ----------------------------------------------------------------------------


def breakdown_stages(name: str, mods, b: int, d: int) -> Optional[List[Tuple[str, Callable, Tuple]]]:
  """Stages as (label, f, args) with f differentiated w.r.t. all args."""
  if name == "ssl_hsic_rff":
    hsic = mods["hsic"]
    key = jax.random.key(0)
    z = _normal((4, b, d), 0)
    k_zy, k_zz = jax.random.split(key)

    def feats(x):
      return (hsic.rff_features(x, key=k_zy, num_features=512),
              hsic.rff_features(x, key=k_zz, num_features=512))

    phi_zy, phi_zz = jax.jit(feats)(z)

    def moments(p_zy, p_zz):
      return (3.0 * jnp.sqrt(hsic.hsic_zz_from_features(p_zz, p_zy))
              - hsic.hsic_zy_from_features(p_zy))

    return [("RFF feature maps (2 draws, N x F x D)", lambda x: _weighted_sum(feats(x)), (z,)),
            ("sums + F x F cross-moment (N x F^2)", moments, (phi_zy, phi_zz))]
  if name == "ssl_hsic_exact":
    hsic = mods["hsic"]
    z = _normal((4, b, d), 0)

    def gram(x):
      xs = x.reshape(-1, x.shape[-1])
      return jnp.sum(hsic.imq_kernel(xs, xs, 1.0))

    return [("N x N IMQ Gram matrix", gram, (z,))]
  if name == "corinfomax":
    cim = mods["corinfomax"]
    state = cim.corinfomax_init_state(d)
    z1 = _normal((b, d), 0)
    z2 = z1 + 0.5 * _normal((b, d), 1)
    stats = jax.jit(lambda a, c: cim.corinfomax_stats(jnp.stack([a, c]), state=state))(z1, z2)
    return [("moments: sums + D x D second moments (N D^2)",
             lambda a, c: _weighted_sum(cim.corinfomax_stats(jnp.stack([a, c]), state=state)),
             (z1, z2)),
            ("EMA + 2 log-dets (probe + Cholesky, D^3)",
             lambda s: cim.corinfomax_from_stats(s, state=state)[0], (stats,))]
  for mod, stats_fn, from_fn in (("vicreg", "vicreg_stats", "vicreg_from_stats"),
                                 ("barlow_twins", "barlow_twins_stats",
                                  "barlow_twins_from_stats")):
    if name == mod and mod in mods and hasattr(mods[mod], stats_fn):
      m = mods[mod]
      z1 = _normal((b, d), 0)
      z2 = z1 + 0.5 * _normal((b, d), 1)
      stats = jax.jit(lambda a, c: getattr(m, stats_fn)(jnp.stack([a, c])))(z1, z2)
      return [(f"{stats_fn} (N D^2)",
               lambda a, c: _weighted_sum(getattr(m, stats_fn)(jnp.stack([a, c]))), (z1, z2)),
              (f"{from_fn} (D^2)", lambda s: _first(getattr(m, from_fn)(s)), (stats,))]
  if name == "logdet_entropy":
    m = mods["entropy"]
    z = _normal((b, d), 0)

    def cov(x):
      xc = x - x.mean(0)
      return _weighted_sum(xc.T @ xc / x.shape[0])

    return [("centred covariance Z^T Z (N D^2)", cov, (z,))]
  return None


# ----------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------


@dataclass
class Row:
  loss: str
  b: int
  d: int
  status: str
  timing: Optional[Timing] = None


def predict(spec: Spec, b: int, d: int, done: Dict[Tuple[int, int], Timing]) -> Optional[float]:
  """Predicted median seconds from the closest measured size (None: no data)."""
  best = None
  for (b0, d0), t in done.items():
    if b0 <= b and d0 <= d:
      score = math.log(b / b0) + math.log(d / d0)
      if best is None or score < best[0]:
        best = (score, t.median_s * (b / b0)**spec.p_n * (d / d0)**spec.p_d)
  return None if best is None else best[1]


def run_sweep(specs: List[Spec], batches, dims, repeats, budget_s, case_cap_s, max_gb, log):
  rows: List[Row] = []
  start = time.perf_counter()
  for spec in specs:
    done: Dict[Tuple[int, int], Timing] = {}
    last_compile = 2.0
    for d in dims:
      for b in (spec.batches or batches):
        elapsed = time.perf_counter() - start
        remaining = budget_s - elapsed
        mem_gb = spec.pairwise * spec.rows(b)**2 * 4 / 1e9
        if mem_gb > max_gb:
          rows.append(Row(spec.name, b, d, f"skipped: ~{mem_gb:.0f} GB of N x N matrices "
                          f"> --max-gb {max_gb:g}"))
          log(f"  {spec.name:26s} B={b:<6d} D={d:<5d} {rows[-1].status}")
          continue
        t_pred = predict(spec, b, d, done)
        cost = last_compile + (repeats + 1) * (t_pred if t_pred is not None else 0.0)
        if t_pred is not None and (cost > case_cap_s or cost > remaining):
          why = "per-case cap" if cost <= remaining else "remaining budget"
          rows.append(Row(spec.name, b, d, f"skipped: predicted {cost:.0f} s "
                          f"(median {t_pred:.2f} s) > {why} "
                          f"{min(case_cap_s, remaining):.0f} s"))
          log(f"  {spec.name:26s} B={b:<6d} D={d:<5d} {rows[-1].status}")
          continue
        if remaining < last_compile:
          rows.append(Row(spec.name, b, d, "skipped: budget exhausted"))
          continue
        try:
          f, args = spec.make(b, d)
          t = time_fn(f, args, repeats, argnums=tuple(range(spec.n_diff or len(args))))
        except Exception as e:  # pylint: disable=broad-except
          rows.append(Row(spec.name, b, d, f"error: {type(e).__name__}: {str(e)[:80]}"))
          log(f"  {spec.name:26s} B={b:<6d} D={d:<5d} {rows[-1].status}")
          continue
        done[(b, d)] = t
        last_compile = t.compile_s
        rows.append(Row(spec.name, b, d, "ok", t))
        log(f"  {spec.name:26s} B={b:<6d} D={d:<5d} compile {t.compile_s:6.2f} s  "
            f"median {t.median_s * 1e3:9.2f} ms")
  return rows


def loglog_slope(points: List[Tuple[int, float]]) -> Optional[float]:
  """Slope of log(time) vs log(B), fitted on B >= 1024 when 2+ such points exist."""
  pts = [(b, t) for b, t in points if b >= 1024]
  if len(pts) < 2:
    pts = points
  if len(pts) < 2:
    return None
  x = np.log([p[0] for p in pts])
  y = np.log([p[1] for p in pts])
  return float(np.polyfit(x, y, 1)[0])


def crossover(rff: Dict[int, float], exact: Dict[int, float]) -> str:
  """Batch where the exact estimator becomes slower than the RFF one."""
  common = sorted(set(rff) & set(exact))
  if not common:
    return "n/a (no common batch sizes)"
  if exact[common[0]] >= rff[common[0]]:
    return f"<= {common[0]} (exact already slower at the smallest measured batch)"
  for b0, b1 in zip(common, common[1:]):
    if exact[b1] >= rff[b1]:
      # log-log linear interpolation of both curves between b0 and b1
      l0 = math.log(exact[b0] / rff[b0])
      l1 = math.log(exact[b1] / rff[b1])
      frac = l0 / (l0 - l1)
      return f"~{math.exp(math.log(b0) + frac * math.log(b1 / b0)):.0f} (measured, interpolated)"
  # Extrapolate with power laws through the two largest common points.
  if len(common) >= 2:
    b0, b1 = common[-2], common[-1]
    pe = math.log(exact[b1] / exact[b0]) / math.log(b1 / b0)
    pr = math.log(rff[b1] / rff[b0]) / math.log(b1 / b0)
    if pe > pr:
      bx = b1 * math.exp(math.log(rff[b1] / exact[b1]) / (pe - pr))
      return (f"~{bx:.0f} (extrapolated: exact slope {pe:.2f}, RFF slope {pr:.2f} "
              f"between B={b0} and {b1})")
  return f"> {common[-1]} (exact faster at every measured batch)"


def hsic_section(rows: List[Row]) -> List[str]:
  out = ["", "## SSL-HSIC: exact (quadratic) vs RFF (linear) estimator", ""]
  by = {}
  for r in rows:
    if r.loss in ("ssl_hsic_rff", "ssl_hsic_exact") and r.timing is not None:
      by.setdefault(r.d, {}).setdefault(r.loss, {})[r.b] = r.timing.median_s
  if not by:
    return out + ["(no SSL-HSIC timings)"]
  for d in sorted(by):
    rff, exact = by[d].get("ssl_hsic_rff", {}), by[d].get("ssl_hsic_exact", {})
    out += [f"D = {d}, K = 4 views (N = 4B), F = 512:", "",
            "| B | N | exact ms | RFF ms | exact / RFF |", "|---:|---:|---:|---:|---:|"]
    for b in sorted(set(rff) | set(exact)):
      e = f"{exact[b] * 1e3:.2f}" if b in exact else "not measured"
      f = f"{rff[b] * 1e3:.2f}" if b in rff else "not measured"
      ratio = f"{exact[b] / rff[b]:.2f}" if b in exact and b in rff else ""
      out.append(f"| {b} | {4 * b} | {e} | {f} | {ratio} |")
    sr = loglog_slope(sorted(rff.items()))
    se = loglog_slope(sorted(exact.items()))
    fmt = lambda s: "n/a" if s is None else f"{s:.2f}"
    out += ["", f"- log-log slope of time vs B: RFF {fmt(sr)} (theory 1), exact {fmt(se)} "
            "(theory 2); fitted on B >= 1024 where 2+ points exist.",
            f"- crossover batch (exact slower than RFF from here on): {crossover(rff, exact)}",
            ""]
  return out


def breakdown_section(rows: List[Row], mods, dims, repeats, budget_left, log) -> List[str]:
  out = ["", "## Where the time goes (fwd+bwd of each stage, at the largest measured B, "
         f"D = {dims[0]})", ""]
  out += ["| loss | B | D | stage | ms | share of total |", "|---|---:|---:|---|---:|---:|"]
  start = time.perf_counter()
  for name in ("ssl_hsic_rff", "ssl_hsic_exact", "corinfomax", "vicreg", "barlow_twins",
               "logdet_entropy"):
    measured = [r for r in rows if r.loss == name and r.d == dims[0] and r.timing is not None]
    if not measured:
      continue
    ref = max(measured, key=lambda r: r.b)
    if ref.timing.median_s * (repeats + 2) * 2 + 10 > budget_left - (time.perf_counter() - start):
      out.append(f"| {name} | {ref.b} | {ref.d} | skipped (budget) | | |")
      continue
    try:
      stages = breakdown_stages(name, mods, ref.b, ref.d)
    except Exception as e:  # pylint: disable=broad-except
      out.append(f"| {name} | {ref.b} | {ref.d} | error {type(e).__name__} | | |")
      continue
    if not stages:
      continue
    total = ref.timing.median_s
    acc = 0.0
    for label, f, args in stages:
      try:
        t = time_fn(f, args, repeats)
      except Exception as e:  # pylint: disable=broad-except
        out.append(f"| {name} | {ref.b} | {ref.d} | {label}: error {type(e).__name__} | | |")
        continue
      acc += t.median_s
      out.append(f"| {name} | {ref.b} | {ref.d} | {label} | {t.median_s * 1e3:.2f} | "
                 f"{100 * t.median_s / total:.0f}% |")
      log(f"  breakdown {name} {label}: {t.median_s * 1e3:.2f} ms")
    out.append(f"| {name} | {ref.b} | {ref.d} | rest (total - stages) | "
               f"{max(total - acc, 0.0) * 1e3:.2f} | {100 * max(total - acc, 0.0) / total:.0f}% |")
    out.append(f"| {name} | {ref.b} | {ref.d} | **total** | {total * 1e3:.2f} | 100% |")
  out += ["", "Stages are timed as separate jitted programs (fwd+bwd w.r.t. their inputs), "
          "so shares can exceed 100% in sum when XLA fuses stages in the full loss."]
  return out


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--quick", action="store_true",
                 help="D in {128, 512}, 3 repeats, 900 s budget (unless given)")
  p.add_argument("--batches", default="256,1024,4096,16384")
  p.add_argument("--hsic-batches", default="256,512,1024,2048,4096,8192,16384",
                 help="finer batch grid for the SSL-HSIC exact/RFF scaling study")
  p.add_argument("--dims", default=None, help="default 128,512,2048 (quick: 128,512)")
  p.add_argument("--losses", default=None, help="comma-separated names (default: all found)")
  p.add_argument("--repeats", type=int, default=None, help="default 5 (quick: 3)")
  p.add_argument("--max-seconds", type=float, default=None,
                 help="total budget in seconds (default 3600, quick 900)")
  p.add_argument("--case-cap", type=float, default=None,
                 help="max predicted seconds for one combination (default budget / 8)")
  p.add_argument("--max-gb", type=float, default=3.0,
                 help="skip pairwise kernels whose N x N matrices would exceed this")
  p.add_argument("--no-breakdown", action="store_true")
  p.add_argument("--out", default=None, help="write the markdown report here")
  a = p.parse_args(argv)

  batches = [int(x) for x in a.batches.split(",")]
  dims = [int(x) for x in (a.dims or ("128,512" if a.quick else "128,512,2048")).split(",")]
  repeats = a.repeats or (3 if a.quick else 5)
  budget = a.max_seconds or (900.0 if a.quick else 3600.0)
  case_cap = a.case_cap or budget / 8

  def log(msg):
    print(msg, file=sys.stderr, flush=True)

  mods, missing = import_losses(MODULES)
  specs = build_specs(mods, [int(x) for x in a.hsic_batches.split(",")])
  if a.losses:
    wanted = set(a.losses.split(","))
    unknown = wanted - {s.name for s in specs}
    if unknown:
      p.error(f"unknown or unavailable losses {sorted(unknown)}; available: "
              f"{[s.name for s in specs]}")
    specs = [s for s in specs if s.name in wanted]

  load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
  header = [
      "# Loss kernel benchmark (forward + backward, jitted)", "",
      f"- JAX {jax.__version__}, backend {jax.default_backend()}, device {jax.devices()[0]}, "
      f"{len(jax.devices())} device(s); Python {platform.python_version()}; "
      f"{os.cpu_count()} CPU(s); load average at start {load[0]:.1f}",
      f"- batches {batches} (SSL-HSIC {a.hsic_batches}), dims {dims}; median of >= {repeats} timed calls (more, up to 25, "
      "until 0.25 s, for fast kernels) after 1 warm-up; "
      f"budget {budget:.0f} s, per-case cap {case_cap:.0f} s, memory guard {a.max_gb:g} GB",
      f"- command: `python benchmarks/losses.py {' '.join(argv if argv is not None else sys.argv[1:])}`",
  ]
  if missing:
    header.append("- not benchmarked (import failed): " +
                  "; ".join(f"{k} ({v})" for k, v in missing.items()))
  log("\n".join(header))
  t_start = time.perf_counter()
  # 15% of the budget is kept for the stage breakdown.
  sweep_budget = budget if a.no_breakdown else 0.85 * budget
  rows = run_sweep(specs, batches, dims, repeats, sweep_budget, case_cap, a.max_gb, log)

  table = ["", "## All kernels", "",
           "| loss | B | D | compile s | median ms | runs (min .. max ms) | notes |",
           "|---|---:|---:|---:|---:|---|---|"]
  notes = {s.name: s.note for s in specs}
  for r in rows:
    if r.timing is not None:
      rs = sorted(r.timing.runs)
      runs = f"{len(rs)} runs, {rs[0] * 1e3:.1f} .. {rs[-1] * 1e3:.1f}"
      table.append(f"| {r.loss} | {r.b} | {r.d} | {r.timing.compile_s:.2f} | "
                   f"{r.timing.median_s * 1e3:.2f} | {runs} | {notes.get(r.loss, '')} |")
    else:
      table.append(f"| {r.loss} | {r.b} | {r.d} | | | | {r.status} |")
  report = header + table + hsic_section(rows)
  if not a.no_breakdown:
    left = budget - (time.perf_counter() - t_start)
    report += breakdown_section(rows, mods, dims, repeats, max(left, 0.0), log)
  report.append("")
  report.append(f"Total wall time {time.perf_counter() - t_start:.0f} s.")
  text = "\n".join(report) + "\n"
  print(text)
  if a.out:
    with open(a.out, "w", encoding="utf-8") as fh:
      fh.write(text)


if __name__ == "__main__":
  main()
