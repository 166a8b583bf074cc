"""BROJA solved to a certified optimum (bits unless stated; float64).

V* = min_{q ∈ Δ_p} I_q(Y; X1, X2) (Bertschinger et al. 2014, Eq. 4–5) is checked
without trusting ssljax's solver: a NumPy weak-duality bound from the returned
multipliers and NumPy's I_q of the returned (feasible) q bracket V* to 1e-9 bits;
an independent SciPy SLSQP solve of the primal and of the dual brackets it from
outside; and the best of many randomised restarts of `dit`'s BROJA optimiser
(``dit.pid.PID_BROJA``'s SLSQP, made feasible by IPF) is never below it.
"""

from __future__ import annotations

import itertools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from ssljax.pid import broja_coupling, pid_broja

LOG2 = math.log(2.0)
CERT_BITS = 1e-9
# The solver compiles once per shape; pmfs are zero-padded to one shape (padding
# with zero-probability symbols leaves V* and every atom unchanged).
SHAPE = (4, 4, 4)


# ---------------------------------------------------------------------------
# Independent NumPy / SciPy pieces (nats).
# ---------------------------------------------------------------------------

def np_mi(pxy):
  px, py = pxy.sum(1, keepdims=True), pxy.sum(0, keepdims=True)
  m = pxy > 0
  return float((pxy[m] * np.log(pxy[m] / (px * py)[m])).sum())


def np_iq(q, py):
  """I_q(Y;X1,X2) = Σ q log[q / (q(x1,x2) p(y))] (q(y) = p(y) on Δ_p)."""
  r = np.broadcast_to(q.sum(2)[:, :, None], q.shape)
  pyb = np.broadcast_to(py, q.shape)
  m = q > 0
  return float((q[m] * np.log(q[m] / (r[m] * pyb[m]))).sum())


def allowed_cells(p):
  return (p.sum(1)[:, None, :] > 0) & (p.sum(0)[None, :, :] > 0)


def dual_bound(p, lam, mu):
  """Weak duality: Σλ p(x1,y) + Σμ p(x2,y) − max_c log Σ_y p(y) e^{λ+μ} ≤ V* for
  any (λ, μ) (columns c = (x1, x2) with an allowed cell; docs/pid.md)."""
  p1y, p2y, py = p.sum(1), p.sum(0), p.sum((0, 1))
  al = allowed_cells(p)
  col = np.where(al, py * np.exp(np.where(al, lam[:, None, :] + mu[None, :, :], 0.0)), 0.0).sum(2)
  lin = (p1y * np.where(p1y > 0, lam, 0)).sum() + (p2y * np.where(p2y > 0, mu, 0)).sum()
  return float(lin - np.log(col[al.any(2)].max()))


def marginal_error(q, p):
  return max(np.abs(q.sum(1) - p.sum(1)).max(), np.abs(q.sum(0) - p.sum(0)).max())


def ipf(q, p, sweeps=5000):
  """Iterative proportional fitting of q onto Δ_p (within q's support)."""
  q = q.copy()
  p1y, p2y = p.sum(1), p.sum(0)
  for _ in range(sweeps):
    s = q.sum(1)
    q *= np.divide(p1y, s, out=np.zeros_like(s), where=s > 0)[:, None, :]
    s = q.sum(0)
    q *= np.divide(p2y, s, out=np.zeros_like(s), where=s > 0)[None, :, :]
    if marginal_error(q, p) < 1e-15:
      break
  return q


def scipy_primal(p):
  """min I_q over Δ_p by SLSQP on the allowed cells, from the product coupling."""
  al = allowed_cells(p)
  idx = np.argwhere(al)
  py = p.sum((0, 1))
  rows = [(0, i, y) for i in range(p.shape[0]) for y in range(p.shape[2])]
  rows += [(1, j, y) for j in range(p.shape[1]) for y in range(p.shape[2])]
  a = np.array([[float(c[k] == i and c[2] == y) for c in idx] for k, i, y in rows])
  b = np.array([p.sum(1 - k)[i, y] for k, i, y in rows])

  def full(x):
    q = np.zeros(p.shape)
    q[tuple(idx.T)] = np.maximum(x, 0.0)
    return q

  def fun(x):
    q = full(x)
    return np_iq(q, py)

  def jac(x):
    q = full(x)
    r = q.sum(2)[tuple(idx[:, :2].T)]
    xs = np.maximum(x, 1e-300)
    return np.log(xs / (np.maximum(r, 1e-300) * py[idx[:, 2]]))

  q0 = (p.sum(1)[:, None, :] * np.divide(p.sum(0), py, out=np.zeros_like(p.sum(0)),
                                          where=py > 0)[None])[tuple(idx.T)]
  res = optimize.minimize(fun, q0, jac=jac, method="SLSQP", bounds=[(0, 1)] * len(q0),
                          constraints=[{"type": "eq", "fun": lambda x: a @ x - b,
                                        "jac": lambda x: a}],
                          options={"ftol": 1e-16, "maxiter": 2000})
  return ipf(full(res.x), p)


def scipy_dual(p):
  """max Σλ p(x1,y) + Σμ p(x2,y) s.t. log Σ_y p(y) e^{λ+μ} ≤ 0 per column, by SLSQP."""
  n1, n2, ny = p.shape
  al = allowed_cells(p)
  cols = np.argwhere(al.any(2))
  m1, m2 = p.sum(1) > 0, p.sum(0) > 0
  py = p.sum((0, 1))
  pm = np.concatenate([np.where(m1, p.sum(1), 0).ravel(), np.where(m2, p.sum(0), 0).ravel()])

  def split(th):
    return th[: n1 * ny].reshape(n1, ny), th[n1 * ny:].reshape(n2, ny)

  def cons(th):
    lam, mu = split(th)
    e = np.where(al, py * np.exp(np.where(al, lam[:, None] + mu[None], 0.0)), 0.0)
    return np.array([-np.log(e[i, j].sum()) for i, j in cols])

  def cons_jac(th):
    lam, mu = split(th)
    e = np.where(al, py * np.exp(np.where(al, lam[:, None] + mu[None], 0.0)), 0.0)
    out = np.zeros((len(cols), len(th)))
    for k, (i, j) in enumerate(cols):
      w = e[i, j] / e[i, j].sum()
      out[k, i * ny:(i + 1) * ny] -= w
      out[k, n1 * ny + j * ny: n1 * ny + (j + 1) * ny] -= w
    return out

  res = optimize.minimize(lambda th: -pm @ th, -np.ones(len(pm)), jac=lambda th: -pm,
                          method="SLSQP", constraints=[{"type": "ineq", "fun": cons,
                                                        "jac": cons_jac}],
                          options={"ftol": 1e-16, "maxiter": 2000})
  return dual_bound(p, *split(res.x))


def random_pmf(rng, shape, zero_frac, alpha):
  while True:
    p = rng.dirichlet(alpha * np.ones(int(np.prod(shape)))).reshape(shape)
    p[rng.random(shape) < zero_frac] = 0.0
    if p.sum() > 0:
      return p / p.sum()


def pmfs(seed, count):
  """Random pmfs of shape 2×2×2 … 3×3×3 with zero cells and mixed concentrations."""
  rng = np.random.default_rng(seed)
  shapes = [(2, 2, 2), (3, 2, 2), (2, 3, 2), (2, 2, 3), (3, 3, 2), (3, 3, 3)]
  return [random_pmf(rng, shapes[k % 6], [0.2, 0.35, 0.5][k % 3], [0.3, 1.0, 3.0][k % 3])
          for k in range(count)]


def pad(p, shape=SHAPE):
  out = np.zeros(shape)
  out[tuple(slice(0, k) for k in p.shape)] = p
  return out


def solve(p):
  """ssljax's certified solve (nats): (value, q, lower bound from NumPy)."""
  sol = broja_coupling(jnp.asarray(pad(p)))
  q = np.array(sol.q)[tuple(slice(0, k) for k in p.shape)]
  lam = np.array(sol.lam)[: p.shape[0], : p.shape[2]]
  mu = np.array(sol.mu)[: p.shape[1], : p.shape[2]]
  return sol, q, dual_bound(p, lam, mu)


def check_certificate(p, sol, q, lb):
  """The returned q is in Δ_p, its I_q is the reported value, and the NumPy dual
  bound is within CERT_BITS of it."""
  assert q.min() >= 0
  assert not np.any(q[~allowed_cells(p)])
  assert marginal_error(q, p) <= 1e-10  # the solver's feasibility tolerance (float64)
  ub = np_iq(q, p.sum((0, 1)))
  np.testing.assert_allclose(float(sol.upper_bound), ub, atol=1e-13)
  assert -1e-13 <= (ub - lb) / LOG2 <= CERT_BITS, (ub - lb) / LOG2
  assert float(sol.gap) / LOG2 <= CERT_BITS
  assert lb - 1e-13 <= float(sol.min_mi) <= ub + 1e-13
  return ub


# ---------------------------------------------------------------------------
# dit.
# ---------------------------------------------------------------------------

def dit_couplings(p, restarts):
  """Couplings of ``restarts`` randomised runs of dit's BROJA optimiser (the SLSQP
  that ``dit.pid.PID_BROJA`` uses on these sizes), seeded through NumPy's
  global RNG as dit draws its initial points from it."""
  import dit  # the [test] extra installs it; never skipped
  from dit.algorithms.broja_util import optimized_pmf
  from dit.algorithms.distribution_optimizers import BROJABivariateOptimizer
  cells = [c for c in itertools.product(*map(range, p.shape)) if p[c] > 0]
  d = dit.Distribution(["".join(map(str, c)) for c in cells], [p[c] for c in cells])
  out = []
  state = np.random.get_state()
  try:
    for seed in range(restarts):
      np.random.seed(seed)
      opt = BROJABivariateOptimizer(d, [[0], [1]], [2])
      opt.optimize(niter=1, maxiter=1000)
      out.append(np.asarray(optimized_pmf(opt), float).reshape(p.shape))
  finally:
    np.random.set_state(state)
  return out


def dit_comparison(p, restarts):
  """(ssljax minus dit's best feasible value, gap) in bits, and the raw check.

  dit's couplings violate the marginals by up to ~3e-4 (measured), so their raw
  I_q can fall below V*; each is first made feasible by IPF (I_q of a member of
  Δ_p is ≥ V*, so the comparison is fair). A raw dit value below our certified
  lower bound must come with a marginal violation that explains it.
  """
  sol, q, lb = solve(p)
  ub = check_certificate(p, sol, q, lb)
  py = p.sum((0, 1))
  best = np.inf
  for qd in dit_couplings(p, restarts):
    raw = np_iq(qd, qd.sum((0, 1)))
    if raw < lb - CERT_BITS * LOG2:
      assert marginal_error(qd, p) > 1e-9, (raw, lb, marginal_error(qd, p))
    qf = ipf(qd, p)
    if marginal_error(qf, p) <= 1e-13:
      best = min(best, np_iq(qf, py))
  assert np.isfinite(best)
  return (float(sol.min_mi) - best) / LOG2, (ub - lb) / LOG2


# ---------------------------------------------------------------------------
# Tests.
# ---------------------------------------------------------------------------

def test_canonical_atoms_certified():
  """XOR, AND, COPY, RDN, UNQ: exact atoms (Bertschinger et al. 2014 §5) with a
  certified gap."""
  and_r = -(0.25 * math.log2(0.25) + 0.75 * math.log2(0.75)) - 0.5  # I(Y;X_i) = h(1/4) − 1/2
  cases = {
      "XOR": ({(0, 0, 0): 1, (0, 1, 1): 1, (1, 0, 1): 1, (1, 1, 0): 1}, (2, 2, 2), [0, 0, 0, 1]),
      "AND": ({(0, 0, 0): 1, (0, 1, 0): 1, (1, 0, 0): 1, (1, 1, 1): 1}, (2, 2, 2),
              [and_r, 0, 0, 0.5]),
      "RDN": ({(0, 0, 0): 1, (1, 1, 1): 1}, (2, 2, 2), [1, 0, 0, 0]),
      "UNQ": ({(0, 0, 0): 1, (0, 1, 0): 1, (1, 0, 1): 1, (1, 1, 1): 1}, (2, 2, 2), [0, 1, 0, 0]),
      "COPY": ({(0, 0, 0): 1, (0, 1, 1): 1, (1, 0, 2): 1, (1, 1, 3): 1}, (2, 2, 4), [0, 1, 1, 0]),
  }
  with jax.enable_x64(True):
    for name, (cells, shape, want) in cases.items():
      p = np.zeros(shape)
      for c, w in cells.items():
        p[c] = w
      p /= p.sum()
      atoms, sol = pid_broja(jnp.asarray(pad(p)), return_solution=True)
      np.testing.assert_allclose(np.array(atoms), want, atol=1e-12, err_msg=name)
      assert float(sol.gap) / LOG2 <= CERT_BITS, name


def test_certified_against_numpy_and_scipy():
  """Certificate re-checked in NumPy on 24 pmfs with zero cells; independent
  SciPy SLSQP solves of the primal (an upper bound, made exactly feasible) and
  of the dual (a lower bound, which matches to 1e-9 bits) bracket ssljax's value."""
  with jax.enable_x64(True):
    for k, p in enumerate(pmfs(0, 24)):
      sol, q, lb = solve(p)
      ub = check_certificate(p, sol, q, lb)
      ub_scipy = np_iq(scipy_primal(p), p.sum((0, 1)))
      lb_scipy = scipy_dual(p)
      # ssljax is no worse than SciPy's feasible point and no better than its dual bound.
      assert float(sol.min_mi) <= ub_scipy + CERT_BITS * LOG2, (k, sol.min_mi, ub_scipy)
      assert lb_scipy <= ub + 1e-12, (k, lb_scipy, ub)
      # SciPy's dual reaches the optimum to rounding, independently: ssljax's
      # value agrees with it to the certificate's tolerance. (Its primal SLSQP
      # stalls up to 0.1 nats above boundary optima, so it is only a bound.)
      assert ub - lb_scipy <= CERT_BITS * LOG2, (k, ub, lb_scipy)


def test_no_worse_than_dit_best_restart_quick():
  with jax.enable_x64(True):
    for p in pmfs(1, 6):
      excess, gap = dit_comparison(p, restarts=4)
      assert excess <= CERT_BITS and gap <= CERT_BITS, (excess, gap)


@pytest.mark.slow
# 600 scipy optimisations inside dit: 266 s on a fresh-clone CI run and over the
# default 300 s once when the other xdist worker was tracing ResNet-50 steps.
# The limit is there to catch a hang, which 900 s still does.
@pytest.mark.timeout(900)
def test_no_worse_than_dit_best_of_20_restarts():
  """30 random pmfs up to 3×3×3 with zero cells, 20 restarts of dit each."""
  with jax.enable_x64(True):
    results = [dit_comparison(p, restarts=20) for p in pmfs(2, 30)]
  excess, gap = np.array(results).T
  assert excess.max() <= CERT_BITS and gap.max() <= CERT_BITS, (excess.max(), gap.max())


def test_hard_pmfs_up_to_4x4x4_certified():
  """Pmfs with masses spanning ~1e-12..1 (Dirichlet α = 0.1) and zero cells,
  vmapped under jit: every gap ≤ 1e-9 bits (these stalled the barrier method
  alone, which left gaps up to 1e-2 bits). Also: jit and vmap of `pid_broja`
  with its certificate, and a timing sanity check of the compiled batch."""
  rng = np.random.default_rng(3)
  ps = np.stack([random_pmf(rng, (4, 4, 4), zf, 0.1) for zf in (0.0, 0.2, 0.4, 0.6) * 4])
  with jax.enable_x64(True):
    fn = jax.jit(jax.vmap(lambda p: pid_broja(p, return_solution=True)))
    atoms, sols = jax.block_until_ready(fn(jnp.asarray(ps)))
    t0 = time.perf_counter()
    jax.block_until_ready(fn(jnp.asarray(ps)))
    assert time.perf_counter() - t0 < 120.0  # 16 pmfs: ~1 s idle, ~50 s on a loaded 2-core box
    np.testing.assert_allclose(np.array(atoms)[:, 0], np.array(pid_broja(jnp.asarray(ps[0]))),
                               atol=1e-12)
    for i, p in enumerate(ps):
      check_certificate(p, jax.tree.map(lambda x: x[i], sols), np.array(sols.q[i]),
                        dual_bound(p, np.array(sols.lam[i]), np.array(sols.mu[i])))
