"""The four atoms of a bivariate partial information decomposition (PID).

Two sources X1, X2 and a target Y. Williams and Beer (2010, arXiv 1004.2515)
split the joint mutual information into redundancy R, unique informations U1,
U2 and synergy S, tied to the Shannon quantities by the three identities::

  I(Y;X1)    = R + U1
  I(Y;X2)    = R + U2
  I(Y;X1,X2) = R + U1 + U2 + S

so one redundancy (or one unique information, or the minimum of I_q(Y;X1,X2) for
BROJA) fixes all four atoms. Every estimator in `ssljax.pid` computes its
redundancy and the three mutual informations and calls
`atoms_from_redundancy`, so the identities hold by construction (to
floating-point rounding). Background: ``docs/pid.md``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp


class PIDAtoms(NamedTuple):
  """Redundant, unique and synergistic information of (X1, X2) about Y.

  All four fields are arrays of the same shape (scalars for one pmf, ``[B]``
  under ``jax.vmap``) in the unit of the estimator that produced them (bits
  for the discrete estimators by default, nats for the Gaussian ones by
  default; every estimator's docstring says which).
  """

  redundancy: jax.Array
  unique1: jax.Array
  unique2: jax.Array
  synergy: jax.Array

  def total(self) -> jax.Array:
    """R + U1 + U2 + S, which equals I(Y; X1, X2)."""
    return self.redundancy + self.unique1 + self.unique2 + self.synergy


def atoms_from_redundancy(redundancy: jax.Array, i1: jax.Array, i2: jax.Array,
                          i12: jax.Array) -> PIDAtoms:
  """Solve the PID bookkeeping identities for the atoms given a redundancy.

  ``U1 = I1 − R``, ``U2 = I2 − R``, ``S = I12 − I1 − I2 + R`` (the last equals
  ``R`` minus the co-information ``I1 + I2 − I12``).

  Args:
    redundancy: R, any shape.
    i1: I(Y;X1), same shape and unit as ``redundancy``.
    i2: I(Y;X2).
    i12: I(Y;X1,X2).
  Returns:
    `PIDAtoms` in the unit of the inputs.

  Example:
    >>> a = atoms_from_redundancy(0.2, 0.5, 0.3, 1.0)
    >>> [round(float(v), 6) for v in a]   # R, U1, U2, S
    [0.2, 0.3, 0.1, 0.4]
    >>> round(float(a.total()), 6)        # = I(Y; X1, X2)
    1.0
  """
  redundancy = jnp.asarray(redundancy)
  return PIDAtoms(redundancy=redundancy, unique1=i1 - redundancy, unique2=i2 - redundancy,
                  synergy=i12 - i1 - i2 + redundancy)


def nats_to(x: jax.Array, base: float) -> jax.Array:
  """Convert an information value from nats to log-``base`` units (``base=2``: bits)."""
  if base == math.e:
    return x
  if not base > 1:
    raise ValueError(f"base={base!r} must be > 1 (2 for bits, math.e for nats).")
  return x / math.log(base)
