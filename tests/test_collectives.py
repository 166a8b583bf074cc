"""Covariance-type losses send statistics across devices, never the N×D embeddings.

The train step of a tiny ConvNet is AOT-compiled for 8 fake devices (no step
runs) and the collectives of its optimised, SPMD-partitioned HLO are read with
`benchmarks.hlo_collectives`. Shapes are chosen so that the per-example sizes
cannot be confused with anything else: global batch N = 512 (64 per device),
V = 2 views, projection D = 8, RFF features F = 32, kernel-scale samples S = 48;
no parameter or statistic has a dimension of N, V·N, N·D or V·N·D.

Criterion for VICReg, Barlow Twins, CorInfoMax and SSL-HSIC (RFF), in both
loss modes:

1. structural: no collective's result holds an array with a dimension in
   {N, V·N, N·D, V·N·D} — nothing per-example (embeddings, similarity rows)
   crosses devices;
2. bytes: total collective result bytes ≤ `byte_budget` = 4 bytes × (V·P +
   8·C + 4·(E² + E) [+ 2·S·D]): the gradient all-reduce of the P trainable
   parameters (XLA reduces each view's partial gradient separately, hence V·P),
   sync-BN statistics over the C BatchNorm channels, the term's means and
   E×E matrices (E = D, or F for RFF) and SSL-HSIC's two S×D kernel-scale
   sample matrices. One gathered view of the embeddings (N·D·4 = 16 KiB; N·F·4
   = 64 KiB of RFF features) exceeds the budget's O(E²) part (1.1 KiB; 16.5 KiB).

NT-Xent is the contrast: it must gather the V·N×D embeddings (each device
needs every negative), and the test pins the bytes (`NT_XENT_PER_EXAMPLE_BYTES`).
"""

from __future__ import annotations

import functools
import math

import jax
import numpy as np
import pytest

from benchmarks import hlo_collectives
from ssljax import parallel
from ssljax.testing import synthetic_dataset, tiny_train_config
from ssljax.train import setup as setup_lib

# In the full run (`pytest -m slow`, CI), not the default one:
# compiles the train step for 4 terms × 2 loss modes on 8 devices (minutes).
pytestmark = pytest.mark.slow

N, V, D, F, S = 512, 2, 8, 32, 48
FORBIDDEN_DIMS = {N, V * N, N * D, V * N * D}

TERMS = {
    "vicreg": {},
    "barlow_twins": {},
    "corinfomax": {},
    "ssl_hsic": {"num_rff_features": F, "scale_num_samples": S, "estimator": "rff"},
}


@functools.lru_cache(maxsize=None)
def compiled_collectives(term: str, loss_mode: str):
  """``(collective ops, run)`` of the compiled train step with the single loss ``term``."""
  config = tiny_train_config({term: dict(TERMS.get(term, {}), weight=1.0)}, projector_dim=D)
  with config.unlocked():
    config.data.batch_size = N
    config.parallel.loss_mode = loss_mode
  run = setup_lib.build(config, mesh=parallel.make_data_mesh(jax.devices()[:8]),
                        dataset=synthetic_dataset(10 * N), total_steps=10)
  data = parallel.batch_sharding(run.mesh)
  batch = {"image": jax.ShapeDtypeStruct((N, 14, 14, 1), np.uint8, sharding=data),
           "label": jax.ShapeDtypeStruct((N,), np.int32, sharding=data)}
  key = jax.ShapeDtypeStruct((), jax.random.key(0).dtype,
                             sharding=parallel.replicated_sharding(run.mesh))
  compiled = run.jitted_step().lower(run.abstract_state(), batch, key).compile()
  return hlo_collectives.collective_ops(compiled.as_text()), run


def _dims(shape_text: str) -> set[int]:
  return {int(d) for m in hlo_collectives._ARRAY.finditer(shape_text)
          for d in m["dims"].split(",") if d}


def byte_budget(term: str, run) -> int:
  """Collective bytes allowed per step when nothing per-example crosses devices."""
  abstract = run.abstract_state()
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract.params))
  bn_channels = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract.batch_stats)) // 2
  e = F if term == "ssl_hsic" else D
  floats = (V * params            # gradient all-reduce (each view's partial sum reduced apart)
            + 8 * bn_channels     # sync-BN: 2 forward + 2 backward C-vectors per layer and view
            + 4 * (e * e + e)     # the term's statistics: means and D×D (F×F) matrices
            + (2 * S * D if term == "ssl_hsic" else 0))  # kernel-scale sample matrices
  return 4 * floats


# Found by this test: under 'auto' the partitioner all-gathers SSL-HSIC's [V, N, F] random
# features (twice) instead of reducing their F×F cross-moment; 'shard_map' psums the F×F
# matrix as the kernel is written. Use loss_mode='shard_map' for SSL-HSIC at scale.
_AUTO_GATHERS = {("ssl_hsic", "auto")}


@pytest.mark.parametrize("loss_mode", ["auto", "shard_map"])
@pytest.mark.parametrize("term", sorted(TERMS))
def test_covariance_losses_communicate_statistics_not_embeddings(term, loss_mode, request):
  if (term, loss_mode) in _AUTO_GATHERS:
    request.applymarker(pytest.mark.xfail(strict=True, reason="partitioner gathers RFF features"))
  ops, run = compiled_collectives(term, loss_mode)
  per_example = [(k, s) for k, _, s in ops if _dims(s) & FORBIDDEN_DIMS]
  assert not per_example, (
      f"{term} ({loss_mode}) sends per-example arrays across devices (dims in "
      f"{sorted(FORBIDDEN_DIMS)}): {per_example}")
  total = sum(b for _, b, _ in ops)
  budget = byte_budget(term, run)
  assert total <= budget, (
      f"{term} ({loss_mode}): {total} collective bytes per step > budget {budget} "
      f"(gradient all-reduce + O(D²) statistics); ops: {ops}")


# Per-example bytes of NT-Xent's step, measured (V·N·D·4 = 32 KiB is one gather of the
# projections): 'shard_map' gathers them once and returns their cotangent rows with a
# reduce-scatter of the local [V, N/8, D] (4 KiB, not per-example); 'auto' lets the
# partitioner gather twice (forward and backward) and all-reduce the full [V, N, D]
# cotangent: 3 × 32 KiB.
NT_XENT_PER_EXAMPLE_BYTES = {"shard_map": V * N * D * 4, "auto": 3 * V * N * D * 4}


@pytest.mark.parametrize("loss_mode", ["auto", "shard_map"])
def test_nt_xent_gathers_the_embeddings(loss_mode):
  """SimCLR needs every negative on every device: the V·N×D projections cross devices."""
  ops, _ = compiled_collectives("simclr", loss_mode)
  gathers = [b for k, b, s in ops if k == "all-gather" and _dims(s) & FORBIDDEN_DIMS]
  assert gathers and min(gathers) == V * N * D * 4, ops  # whole [V, N, D] gathers
  per_example = sum(b for _, b, s in ops if _dims(s) & FORBIDDEN_DIMS)
  assert per_example == NT_XENT_PER_EXAMPLE_BYTES[loss_mode], ops
