"""Discrete PID estimators on a joint pmf ``p[x1, x2, y]``: I_min, MMI and BROJA.

All functions are pure JAX (``jax.jit``, ``jax.vmap`` over a batch of pmfs and
``jax.grad`` with respect to the pmf work) and accept any finite alphabet sizes
``p: [|X1|, |X2|, |Y|]``. Outputs are in **bits** by default; pass
``base=math.e`` for nats. The input is divided by its sum, so unnormalised
counts are accepted.

Zero-probability cells use the "double-where" pattern (``0·log 0 = 0`` both in
value and in gradient), so values and gradients stay finite at zero mass. At a
zero cell the true one-sided derivative of an entropy is −∞; the gradient
returned there is the derivative of the terms that remain (a finite
sub-gradient convention, the same for every estimator in this module).

References: Williams and Beer 2010 (arXiv 1004.2515) for I_min; Barrett 2015
(Phys. Rev. E 91:052802) for MMI; Bertschinger, Rauh, Olbrich, Jost and Ay 2014
(Entropy 16:2161, "Quantifying unique information") for BROJA. The canonical
distributions (XOR, AND, COPY, RdnXor ...) and their atoms are tabulated in
Williams and Beer 2010 §4 and Bertschinger et al. 2014 §5; ``tests/pid``
checks them and cross-checks against ``dit.pid`` (see ``docs/pid.md``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from ssljax.pid.atoms import PIDAtoms, atoms_from_redundancy, nats_to
from ssljax.pid.broja import BrojaSolution, broja_coupling

__all__ = [
    "entropy", "mutual_information", "pid_mutual_informations", "specific_information",
    "pid_imin", "pid_mmi", "pid_broja", "broja_coupling", "BrojaSolution",
]


# ---------------------------------------------------------------------------
# Safe logarithms.
# ---------------------------------------------------------------------------

def _safe_log(x: jax.Array) -> jax.Array:
  # Inner where keeps log's argument positive so that its gradient is finite even
  # where the outer where discards it (the "double-where" pattern).
  return jnp.log(jnp.where(x > 0, x, 1.0))


def _xlogx(x: jax.Array) -> jax.Array:
  return jnp.where(x > 0, x * _safe_log(x), 0.0)


def _safe_div(num: jax.Array, den: jax.Array) -> jax.Array:
  ok = den > 0
  return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


def _normalize(p: jax.Array) -> jax.Array:
  p = jnp.asarray(p)
  if not jnp.issubdtype(p.dtype, jnp.floating):
    p = p.astype(jnp.result_type(float))
  return p / jnp.sum(p)


def _check_pmf3(p: jax.Array, name: str = "p") -> None:
  if jnp.ndim(p) != 3:
    raise ValueError(
        f"{name} must be a joint pmf with axes [x1, x2, y] (ndim 3), got shape {jnp.shape(p)}. "
        f"Reshape a flat pmf to (|X1|, |X2|, |Y|), or use jax.vmap for a batch of pmfs.")


# ---------------------------------------------------------------------------
# Shannon quantities.
# ---------------------------------------------------------------------------

def _entropy_nats(p: jax.Array) -> jax.Array:
  return -jnp.sum(_xlogx(p))


def entropy(p: jax.Array, *, base: float = 2.0) -> jax.Array:
  """Shannon entropy ``H(P) = −Σ p log p`` of the pmf held by all entries of ``p``.

  Args:
    p: ``[...]`` non-negative weights; divided by their sum (counts are fine).
    base: logarithm base; 2 gives **bits** (default), ``math.e`` nats.
  Returns:
    Scalar entropy in log-``base`` units. ``0·log 0 = 0`` with a zero gradient
    at zero cells.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(entropy(jnp.array([0.5, 0.5]))), 6)   # bits
    1.0
    >>> round(float(entropy(jnp.array([1, 1, 1, 1]))), 6)  # counts are normalised
    2.0
  """
  return nats_to(_entropy_nats(_normalize(p)), base)


def _mi_nats(pxy: jax.Array) -> jax.Array:
  """I(X;Y) in nats for a normalised 2-D pmf, as H(X) + H(Y) − H(X,Y)."""
  return (_entropy_nats(pxy.sum(1)) + _entropy_nats(pxy.sum(0)) - _entropy_nats(pxy))


def mutual_information(p_xy: jax.Array, *, base: float = 2.0) -> jax.Array:
  """Mutual information ``I(X;Y) = H(X) + H(Y) − H(X,Y)`` of a 2-D joint pmf.

  Args:
    p_xy: ``[|X|, |Y|]`` joint weights (normalised internally).
    base: 2 for **bits** (default), ``math.e`` for nats.
  Returns:
    Scalar I(X;Y) ≥ 0 in log-``base`` units.

  Example:
    >>> import jax.numpy as jnp
    >>> round(float(mutual_information(jnp.eye(2) / 2)), 6)   # bits
    1.0
  """
  if jnp.ndim(p_xy) != 2:
    raise ValueError(f"p_xy must be a 2-D joint pmf [|X|, |Y|], got shape {jnp.shape(p_xy)}.")
  return nats_to(_mi_nats(_normalize(p_xy)), base)


def _pid_mis_nats(p: jax.Array):
  """(I(Y;X1), I(Y;X2), I(Y;X1,X2)) in nats for a normalised ``p[x1,x2,y]``."""
  n1, n2, ny = p.shape
  return _mi_nats(p.sum(1)), _mi_nats(p.sum(0)), _mi_nats(p.reshape(n1 * n2, ny))


def pid_mutual_informations(p: jax.Array, *, base: float = 2.0):
  """The three mutual informations a bivariate PID splits.

  Args:
    p: ``[|X1|, |X2|, |Y|]`` joint pmf (normalised internally).
    base: 2 for **bits** (default), ``math.e`` for nats.
  Returns:
    ``(I(Y;X1), I(Y;X2), I(Y;X1,X2))``, scalars in log-``base`` units.

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.zeros((2, 2, 2)).at[0, 0, 0].set(.5).at[1, 1, 1].set(.5)  # Y = X1 = X2
    >>> [round(float(v), 6) for v in pid_mutual_informations(p)]
    [1.0, 1.0, 1.0]
  """
  _check_pmf3(p)
  return tuple(nats_to(v, base) for v in _pid_mis_nats(_normalize(p)))


def specific_information(p: jax.Array, *, source: int, base: float = 2.0) -> jax.Array:
  """Williams–Beer specific information ``I(Y=y; X_i)`` for every target symbol.

  ``I(Y=y; X_i) = Σ_{x_i} p(x_i|y) log[p(y|x_i)/p(y)] = KL(p(x_i|y) ‖ p(x_i))``
  (Williams and Beer 2010, Eq. 5 of arXiv 1004.2515; DeWeese and Meister 1999).

  Args:
    p: ``[|X1|, |X2|, |Y|]`` joint pmf (normalised internally).
    source: 0 for X1, 1 for X2.
    base: 2 for **bits** (default), ``math.e`` for nats.
  Returns:
    ``[|Y|]`` specific informations (0 for symbols with p(y) = 0).

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.zeros((2, 2, 2)).at[0, 0, 0].set(.5).at[1, 1, 1].set(.5)  # Y = X1 = X2
    >>> [round(float(v), 6) for v in specific_information(p, source=0)]   # [|Y|], bits
    [1.0, 1.0]
  """
  _check_pmf3(p)
  if source not in (0, 1):
    raise ValueError(f"source must be 0 (X1) or 1 (X2), got {source!r}.")
  p = _normalize(p)
  return nats_to(_specific_info_nats(p.sum(1 - source)), base)


def _specific_info_nats(pxy: jax.Array) -> jax.Array:
  # pxy: [|X|, |Y|]. KL(p(x|y) || p(x)) per y, with p(x|y) p(y) = p(x,y):
  # Σ_x p(x|y) [log p(x,y) − log p(y) − log p(x)].
  px = pxy.sum(1)
  py = pxy.sum(0)
  p_x_given_y = _safe_div(pxy, py[None, :])
  log_ratio = _safe_log(pxy) - _safe_log(py)[None, :] - _safe_log(px)[:, None]
  return jnp.sum(jnp.where(pxy > 0, p_x_given_y * log_ratio, 0.0), axis=0)


# ---------------------------------------------------------------------------
# I_min and MMI.
# ---------------------------------------------------------------------------

def pid_imin(p: jax.Array, *, base: float = 2.0) -> PIDAtoms:
  """Williams–Beer PID with redundancy I_min.

  ``R = Σ_y p(y) · min_i I(Y=y; X_i)`` with the specific information of
  `specific_information`; the other atoms follow from the bookkeeping identities
  (`atoms_from_redundancy`). Williams and Beer 2010 (arXiv 1004.2515), Eq. 5–6;
  matches ``dit.pid.PID_WB``.

  Args:
    p: ``[|X1|, |X2|, |Y|]`` joint pmf (normalised internally; zero cells allowed).
    base: 2 for **bits** (default), ``math.e`` for nats.
  Returns:
    `PIDAtoms` (all atoms ≥ 0 for I_min) in log-``base`` units. Differentiable
    in ``p``; at ties of the two specific informations the gradient of ``min``
    is JAX's (split between the tied sources).

  Example:
    >>> import jax.numpy as jnp
    >>> xor = jnp.zeros((2, 2, 2)).at[0, 0, 0].set(.25).at[0, 1, 1].set(.25)
    >>> xor = xor.at[1, 0, 1].set(.25).at[1, 1, 0].set(.25)
    >>> [round(float(v), 6) for v in pid_imin(xor)]   # R, U1, U2, S in bits
    [0.0, 0.0, 0.0, 1.0]
  """
  _check_pmf3(p)
  p = _normalize(p)
  py = p.sum((0, 1))
  spec = jnp.minimum(_specific_info_nats(p.sum(1)), _specific_info_nats(p.sum(0)))
  r = jnp.sum(py * spec)
  i1, i2, i12 = _pid_mis_nats(p)
  return jax.tree.map(lambda v: nats_to(v, base), atoms_from_redundancy(r, i1, i2, i12))


def pid_mmi(p: jax.Array, *, base: float = 2.0) -> PIDAtoms:
  """Minimum-mutual-information PID: ``R = min(I(Y;X1), I(Y;X2))``.

  Hence ``U_i = I(Y;X_i) − R`` (one unique atom is always 0) and
  ``S = I(Y;X1,X2) − max(I(Y;X1), I(Y;X2))``. Barrett 2015 (Phys. Rev. E
  91:052802), Eq. 13; matches ``dit.pid.PID_MMI``. (For a training loss, a
  soft-min ``−τ·logsumexp(−I/τ)`` of the two MIs avoids the kink at ties; it is
  not done here.)

  Args:
    p: ``[|X1|, |X2|, |Y|]`` joint pmf (normalised internally).
    base: 2 for **bits** (default), ``math.e`` for nats.
  Returns:
    `PIDAtoms` in log-``base`` units.

  Example:
    >>> import jax.numpy as jnp
    >>> p = jnp.zeros((2, 2, 2))                # AND gate, uniform inputs
    >>> for a in (0, 1):
    ...   for b in (0, 1):
    ...     p = p.at[a, b, a & b].set(.25)
    >>> [round(float(v), 4) for v in pid_mmi(p)]   # R, U1, U2, S in bits
    [0.3113, 0.0, 0.0, 0.5]
  """
  _check_pmf3(p)
  p = _normalize(p)
  i1, i2, i12 = _pid_mis_nats(p)
  return jax.tree.map(lambda v: nats_to(v, base),
                      atoms_from_redundancy(jnp.minimum(i1, i2), i1, i2, i12))


# ---------------------------------------------------------------------------
# BROJA.
# ---------------------------------------------------------------------------

def pid_broja(p: jax.Array, *, base: float = 2.0, method: str = "auto",
              tol: float | None = None, max_iters: int | None = None,
              return_solution: bool = False):
  """BROJA PID (Bertschinger, Rauh, Olbrich, Jost and Ay 2014).

  With ``V = min_{q∈Δ_p} I_q(Y; X1, X2)``, ``Δ_p = {q : q(x1,y) = p(x1,y),
  q(x2,y) = p(x2,y)}`` (solved by `ssljax.pid.broja.broja_coupling`)::

    R  = I(Y;X1) + I(Y;X2) − V        U1 = V − I(Y;X2)
    U2 = V − I(Y;X1)                  S  = I(Y;X1,X2) − V

  (Bertschinger et al. 2014, Eq. 4–7). V is clipped to
  ``[max(I(Y;X1), I(Y;X2)), I(Y;X1,X2)]``, bounds that hold for every member of
  Δ_p, so all atoms are ≥ 0 exactly. Matches ``dit.pid.PID_BROJA`` on the
  canonical distributions (where `dit`'s own solver is accurate: on RdnXor it
  stops at 0.9999, this one gives 1/0/0/1; on random pmfs `dit` is only good to
  ~1e-3 bits; see ``docs/pid.md``).

  Gradient: by the envelope theorem ``∂V/∂p(x1,x2,y) = λ(x1,y) + μ(x2,y)`` (up
  to a constant that the normalisation of p removes), the optimal multipliers of
  the two marginal constraints returned by the solver; the solver itself is not
  unrolled. The gradient is first-order only (second derivatives of V are not
  propagated) and is 0 at cells with ``p(x1,y) = 0`` or ``p(x2,y) = 0`` (where
  the true one-sided derivative is −∞). At a kink of the clipping it is that of
  the active bound.

  Args:
    p: ``[|X1|, |X2|, |Y|]`` joint pmf (normalised internally; zero cells allowed).
    base: 2 for **bits** (default), ``math.e`` for nats.
    method: BROJA solver, ``'auto'`` | ``'newton'`` | ``'alternating'`` (see
      `broja_coupling`; auto = Newton for ``(|X1|+|X2|)·|Y| ≤ 512``).
    tol: solver accuracy in **nats** (default 1e-10 float64, 1e-5 float32).
    max_iters: solver iteration cap (default 300 Newton / 5000 alternating).
    return_solution: also return the solver's `BrojaSolution` (in **nats**),
      whose ``gap = upper_bound − lower_bound`` certifies the atoms: each is
      within ``gap`` nats of its exact value (``gap / ln 2`` bits).
  Returns:
    `PIDAtoms` in log-``base`` units, or ``(atoms, solution)`` if
    ``return_solution``.

  Example:
    >>> import jax.numpy as jnp
    >>> copy = jnp.zeros((2, 2, 4)).at[0, 0, 0].set(.25).at[0, 1, 1].set(.25)
    >>> copy = copy.at[1, 0, 2].set(.25).at[1, 1, 3].set(.25)   # Y = (X1, X2)
    >>> [round(float(v), 4) for v in pid_broja(copy)]   # R, U1, U2, S in bits
    [0.0, 1.0, 1.0, 0.0]
    >>> atoms, sol = pid_broja(copy, return_solution=True)
    >>> bool(sol.gap <= 1e-5)   # certified gap (nats; float32 here)
    True
  """
  _check_pmf3(p)
  p = _normalize(p)
  i1, i2, i12 = _pid_mis_nats(p)
  sol = broja_coupling(p, method=method, tol=tol, max_iters=max_iters)
  grad_v = sol.lam[:, None, :] + sol.mu[None, :, :]
  grad_v = jnp.where(_allowed_cells(p), grad_v, 0.0)
  # Value: the solver's V; gradient: the envelope-theorem multipliers.
  v = sol.min_mi + jnp.sum((p - lax.stop_gradient(p)) * lax.stop_gradient(grad_v))
  v = jnp.clip(v, jnp.maximum(i1, i2), i12)
  atoms = jax.tree.map(lambda x: nats_to(x, base), atoms_from_redundancy(i1 + i2 - v, i1, i2, i12))
  return (atoms, sol) if return_solution else atoms


def _allowed_cells(p: jax.Array) -> jax.Array:
  """Cells (x1, x2, y) with p(x1,y) > 0 and p(x2,y) > 0: those any q ∈ Δ_p may charge."""
  return (p.sum(1) > 0)[:, None, :] & (p.sum(0) > 0)[None, :, :]
