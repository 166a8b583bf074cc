"""W-MSE: MSE between L2-normalised views after batch whitening.

Paper: Ermolov, Siarohin, Sangineto and Sebe, "Whitening for Self-Supervised
Representation Learning", ICML 2021 (arXiv 2007.06346), Sec. 3 (Eqs. 2-6).
Official code: ``htdt/self-supervised`` ``methods/w_mse.py`` (the loss),
``methods/whitening.py`` (``Whitening2d``), ``methods/norm_mse.py`` and the
parser defaults of ``cfg.py``. Formulas, conventions and measured agreement:
``docs/methods/wmse.md``.

With V views ``H_v ∈ R^{N×D}`` of the same N images (N = global batch), one
whitening iteration draws a random permutation of the N images, cuts it into
``N / w_size`` sub-batches ``S`` of ``w_size`` images (the same images in
every view) and, for every view and sub-batch, whitens by the Cholesky factor
of the shrunk sub-batch covariance::

  μ = mean_{i∈S} h_i,   Σ = Σ_{i∈S} (h_i − μ)(h_i − μ)ᵀ / (w_size − 1)
  L Lᵀ = (1 − ε)·Σ + ε·I,   z_i = L⁻¹ (h_i − μ)                (Eq. 4: W = L⁻¹)
  ℓ(v, w) = 1/N Σ_i ||ẑ_{v,i} − ẑ_{w,i}||² = 2 − 2/N Σ_i ẑ_{v,i}·ẑ_{w,i}
  L = 1/(w_iter · V(V−1)/2) Σ_iter Σ_{v<w} ℓ(v, w)

where ``ẑ = z/||z||`` (``norm_mse_loss``). W-MSE 2 is V = 2, W-MSE 4 is V = 4
(the official loss averages over the ``V(V−1)/2`` view pairs and the
``w_iter`` iterations).

Official defaults (``cfg.py``): ``--w_size 128``, ``--w_iter 1``,
``--w_eps 0``, batch ``--bs 512``, embedding ``--emb 64``. The README's
Tiny-ImageNet / STL-10 runs use ``w_size 256`` (``--emb 128``) and W-MSE 2
there ``w_iter 4``.

Deviations (all documented in ``docs/methods/wmse.md``):

* **ε.** The official default is ``--w_eps 0`` (no shrinkage). Here
  ``eps=1e-5``: a collapsed sub-batch (Σ = 0) or one with ``D ≥ w_size``
  (Σ singular) then still has a Cholesky factor, so the loss and its gradient
  stay finite in float32. ``eps=0.0`` gives the official value.
* **w_size larger than the batch.** ``w_size=None`` or ``w_size ≥ N`` whitens
  the whole batch at once (official ``w_size=None`` → ``bs``); otherwise N
  must be a multiple of ``w_size`` (the official ``view(-1, w_size)`` fails
  too).
* **Randomness.** The permutation comes from ``key`` (``torch.randperm`` in
  the official code); iteration ``k`` uses ``jax.random.split(key, w_iter)[k]``.

Distributed use. The official code whitens on one GPU: only the encoder is
wrapped in ``nn.DataParallel``, and the head and the loss run on the gathered
batch, so its sub-batches are drawn from the global batch. The same holds
here on any number of devices: under ``shard_map`` every device all-gathers
the embeddings (``V·N·D`` numbers, 4·V·N·D bytes in float32 — 256 KiB for
V = 2, N = 512, D = 64), draws the same permutation from the replicated
``key``, whitens every sub-batch, and adds the loss of its own rows; the sum
over devices (``psum``) is the global loss. Value and gradient equal the
one-device computation for any device count.
"""

from __future__ import annotations

import itertools
from typing import Dict, Optional, Tuple

import jax
import jax.numpy as jnp
from jax import lax

from ssljax import parallel
from ssljax.losses.views import ViewsLike, as_views
from ssljax.ops import l2_normalize


def whiten(x: jax.Array, *, eps: float | jax.Array = 1e-5) -> jax.Array:
  """Cholesky whitening of each sub-batch: ``z = L⁻¹(x − μ)`` with ``LLᵀ = (1−ε)Σ + εI``.

  ``Σ`` is the unbiased covariance of the ``m`` rows of the sub-batch
  (``Whitening2d.forward`` in training mode, ``htdt/self-supervised``
  ``methods/whitening.py``). With ``ε = 0`` and ``m > D`` the output has
  identity covariance. Computed in at least float32.

  Args:
    x: ``[..., m, D]`` sub-batches of ``m ≥ 2`` rows (leading axes batched).
    eps: shrinkage ε towards the identity (official ``--w_eps``, default 0).

  Returns:
    ``[..., m, D]`` whitened rows.

  Example:
    >>> mix = jnp.array([[2., 1, 0], [0, 1, 0], [0, 0, .1]])
    >>> x = jax.random.normal(jax.random.key(0), (64, 3)) @ mix      # correlated features
    >>> z = whiten(x, eps=0.0)
    >>> bool(jnp.allclose(z.T @ z / 63, jnp.eye(3), atol=1e-4))      # identity covariance
    True
  """
  x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
  m, d = x.shape[-2:]
  xc = x - jnp.mean(x, axis=-2, keepdims=True)
  cov = jnp.swapaxes(xc, -1, -2) @ xc / (m - 1)
  cov = (1.0 - eps) * cov + eps * jnp.eye(d, dtype=x.dtype)
  chol = jnp.linalg.cholesky(cov)
  # zᵀ = L⁻¹ xcᵀ: a triangular solve instead of forming L⁻¹ (official: solve against I).
  zt = jax.scipy.linalg.solve_triangular(chol, jnp.swapaxes(xc, -1, -2), lower=True)
  return jnp.swapaxes(zt, -1, -2)


def _sub_batch_size(w_size: Optional[int], n: int) -> int:
  if w_size is None or w_size >= n:
    return n
  if w_size < 2 or n % w_size:
    raise ValueError(f"wmse_loss: the global batch N = {n} must be a multiple of w_size = "
                     f"{w_size} (≥ 2), as in the official `perm.view(-1, w_size)`; choose "
                     f"w_size dividing N, or w_size=None to whiten the whole batch at once.")
  return w_size


def wmse_loss(
    views: ViewsLike,
    *,
    key: jax.Array,
    w_size: Optional[int] = 128,
    w_iter: int = 1,
    eps: float | jax.Array = 1e-5,
    axis_name: Optional[str] = None,
) -> Tuple[jax.Array, Dict[str, jax.Array]]:
  """W-MSE loss of V ≥ 2 views: normalised MSE after sub-batch Cholesky whitening.

  ``L = mean over w_iter iterations and view pairs v < w of
  (2 − 2/N Σ_i ẑ_{v,i}·ẑ_{w,i})``, ẑ the L2-normalised whitened embeddings
  (module docstring; official ``methods/w_mse.py``).

  What it estimates: the whitening constraint ``Cov(z) = I`` replaces
  negatives (it rules out collapse: every whitened sub-batch spans D
  directions), and the MSE between whitened views is the invariance term.
  The sub-batch covariance is a noisy estimate from ``w_size`` rows: the
  paper's reason for ``w_size`` > D and for averaging ``w_iter`` random
  partitions. It saturates at 0 when all views of an image whiten to the
  same direction. On a collapsed batch the whitened rows are the rounding
  residuals of the centring, amplified by ε^{-1/2}: the value is arbitrary in
  [0, 4] but finite, and so is the gradient.

  Distributed: all-gathers ``[V, N, D]`` (4·V·N·D bytes in float32) so that
  the sub-batches are drawn from the global batch, as in the official
  single-GPU loss; 1 device == n devices (value and gradient).

  Args:
    views: ``[V, N, D]`` projector outputs (not normalised), or a sequence of
      V arrays ``[N, D]``. Under ``shard_map`` N is the local shard of axis 1.
    key: PRNG key of the sub-batch permutations; must be the same on every
      device (it is replicated in the train step).
    w_size: sub-batch size (official ``--w_size`` default 128; 256 for
      Tiny-ImageNet / STL-10). ``None`` or ≥ N: the whole batch.
    w_iter: number of random partitions averaged (official ``--w_iter``, 1).
    eps: shrinkage ``(1−ε)Σ + εI`` before the Cholesky factorisation
      (official default 0; 1e-5 here for float32 safety, see the module
      docstring).
    axis_name: batch axis name inside ``shard_map``; ``None`` on the global batch.

  Returns:
    ``(loss, aux)``; ``aux['cosine']`` is the mean cosine between whitened
    positive pairs (``loss = 2 − 2·cosine``), without gradient.

  Example:
    >>> k1, k2 = jax.random.split(jax.random.key(0))
    >>> z1 = jax.random.normal(k1, (256, 16))
    >>> z2 = z1 + 0.1 * jax.random.normal(k2, (256, 16))
    >>> loss, aux = wmse_loss(jnp.stack([z1, z2]), key=jax.random.key(1))   # [V=2, N, D]
    >>> round(float(loss), 2)                                       # close views: near 0
    0.01
  """
  z = jnp.asarray(as_views(views, kernel="wmse_loss", min_views=2, axis_name=axis_name))
  z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
  num_views, n_local, dim = z.shape
  h = parallel.all_gather_batch(z, axis_name, axis=1)              # [V, N, D]
  n = h.shape[1]
  ws = _sub_batch_size(w_size, n)
  offset = parallel.local_row_offset(n_local, axis_name)
  pairs = list(itertools.combinations(range(num_views), 2))

  cos_sum = 0.0
  for k in jax.random.split(key, w_iter):
    perm = jax.random.permutation(k, n)
    groups = h[:, perm].reshape(num_views, n // ws, ws, dim)
    white = whiten(groups, eps=eps).reshape(num_views, n, dim)[:, jnp.argsort(perm)]
    if axis_name is not None:   # this device's rows; their sum over devices is the batch sum
      white = lax.dynamic_slice_in_dim(white, offset, n_local, axis=1)
    u = l2_normalize(white)
    for v, w in pairs:
      cos_sum = cos_sum + parallel.batch_sum(jnp.sum(u[v] * u[w], axis=-1), axis_name) / n
  cosine = cos_sum / (w_iter * len(pairs))
  return 2.0 - 2.0 * cosine, {"cosine": lax.stop_gradient(cosine)}
