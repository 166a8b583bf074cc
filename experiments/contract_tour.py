"""Every loss kernel of ssljax.losses called the same way, as in a notebook.

    python experiments/contract_tour.py

Builds ``views = jnp.stack([z1, z2])`` ([V=2, N, D]) once and calls each kernel
on it (BYOL also on stacked targets), printing what it returns; then shows
that an examples-first array, the layout SSL-HSIC read silently before the
contract (``docs/kernels.md``), is now rejected with a ValueError.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import ssljax.losses as L


def describe(out) -> str:
  loss, aux, *state = out
  kind = "(loss, aux, new_state)" if state else "(loss, aux)"
  return f"{kind:24s} loss={float(loss):+.4f}  aux={sorted(aux)}"


def main():
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  z1 = jax.random.normal(k1, (256, 64))
  z2 = z1 + 0.3 * jax.random.normal(k2, (256, 64))
  views = jnp.stack([z1, z2])                                # [V=2, N=256, D=64]
  targets = jnp.stack([z2, z1]) + 0.1 * jax.random.normal(k3, (2, 256, 64))
  calls = {
      "nt_xent_loss": lambda: L.nt_xent_loss(views),
      "byol_loss": lambda: L.byol_loss(views, targets),
      "barlow_twins_loss": lambda: L.barlow_twins_loss(views),
      "vicreg_loss": lambda: L.vicreg_loss(views),
      "vicreg_entropy_loss": lambda: L.vicreg_entropy_loss(views),
      "corinfomax_loss": lambda: L.corinfomax_loss(views),
      "ssl_hsic_loss (rff)": lambda: L.ssl_hsic_loss(views, key=k4),
      "ssl_hsic_loss (exact)": lambda: L.ssl_hsic_loss(views, estimator="exact"),
      "superinfo_loss": lambda: L.superinfo_loss(views),
  }
  for name, call in calls.items():
    print(f"{name:24s} -> {describe(call())}")
  _, _, state = L.corinfomax_loss(views)
  print(f"{'corinfomax_loss (state)':24s} -> {describe(L.corinfomax_loss(views, state=state))}")

  examples_first = jnp.stack([z1, z2], axis=1)               # [N, V, D]: the old SSL-HSIC layout
  try:
    L.ssl_hsic_loss(examples_first, estimator="exact")
  except ValueError as e:
    print(f"\nssl_hsic_loss(examples-first [N, V, D]) raises ValueError:\n  {e}")
  else:
    raise SystemExit("ssl_hsic_loss accepted an examples-first array")


if __name__ == "__main__":
  main()
