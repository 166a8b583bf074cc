"""ssljax's kernels against lightly 1.6.0 (PyTorch) on the same float64 inputs.

The reference values live in ``tests/losses/data/lightly_reference.npz``,
written by ``scripts/lightly_reference.py`` in a separate torch 2.13.0+cpu +
lightly 1.6.0 environment (its docstring has the commands), so this file needs
neither torch nor lightly and always runs. Every comparison is in float64:
values ``rtol=1e-12``, gradients ``rtol=1e-10, atol=1e-13`` (measured: at most
7e-15 absolute on values, 2e-15 on gradients); the exceptions, each explained
where it is tested, are KoLeo at an exact duplicate row and lightly's stock
SIGReg with its float32 frequency grid.

Cross-checked: MoCo (``NTXentLoss`` with a memory bank, 4 steps), NNCLR
(``NNMemoryBankModule``, 4 steps), NT-Xent, VICReg, Barlow Twins, SwAV
(``SwaVLoss`` + ``sinkhorn``, multi-crop, queue), KoLeo, MMCR, W-MSE
(``WMSELoss``, ``Whitening2d``), alignment + uniformity (``HypersphereLoss``)
and SIGReg. Convention mappings (lightly → ssljax) are written next to each
test. Without a lightly counterpart: LeJEPA's invariance term (lightly
``lejepa_invariance_loss``) has no ssljax kernel; the random slices of
``sigreg_loss`` and the sub-batch permutations of ``wmse_loss`` are drawn
differently by design (the tests remove that randomness).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.losses import (barlow_twins, hypersphere, koleo, mmcr, moco, nnclr, sigreg, simclr,
                           swav, vicreg, wmse)
from ssljax.losses.queue import QueueState

REF = np.load(pathlib.Path(__file__).parent / "data" / "lightly_reference.npz")
STEPS = 4
VALUE_RTOL = 1e-12
GRAD_TOL = dict(rtol=1e-10, atol=1e-13)


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _jit_value_and_grad(fn):
  # One compiled program instead of many eagerly dispatched ops (faster on CPU).
  return jax.jit(jax.value_and_grad(fn))


def _full_queue(bank):
  """lightly's memory bank starts full (random unit rows, pointer 0): ssljax's official start."""
  return QueueState(jnp.asarray(bank), jnp.zeros((), jnp.int32),
                    jnp.asarray(bank.shape[-2], jnp.int32))


def test_reference_file_records_the_versions():
  assert str(REF["meta/lightly"]) == "1.6.0"
  assert str(REF["meta/torch"]).startswith("2.13.0")


@pytest.mark.parametrize("name,symmetric", [("moco", False), ("moco_sym", True)])
def test_moco_matches_lightly_ntxent_with_memory_bank(name, symmetric):
  """lightly ``NTXentLoss(temperature, memory_bank_size=(K, D))(out0, out1)`` is MoCo's loss.

  Mapping: out0 = ``views[0]`` (queries), out1 = ``targets[1]`` (keys,
  no gradient: the momentum encoder's); the bank is read before out1 is
  enqueued at ``bank_ptr`` (ssljax's FIFO write order; K is a multiple of B
  here, where lightly's wrap-around drops no row); lightly's default τ = 0.5
  is passed as 0.2 to both. Symmetric: two lightly losses with one bank each,
  ``(NTXent_0(q1, k2) + NTXent_1(q2, k1)) / 2`` = ssljax queues 0 and 1.
  Four steps carry the queue through one wrap-around (K = 3B).
  """
  tau = float(REF["moco/temperature"])
  bank0 = _unit(REF[f"{name}/bank0"])
  k = bank0.shape[1]
  with jax.enable_x64(True):
    def loss_fn(q, keys, state):
      loss, _, new_state = moco.moco_loss(q, keys, state=state, queue_size=k,
                                          temperature=tau, symmetric=symmetric)
      return loss, new_state

    step_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    state = _full_queue(bank0)
    for step in range(STEPS):
      (loss, state), grad = step_fn(jnp.asarray(REF[f"{name}/q{step}"]),
                                    jnp.asarray(REF[f"{name}/k{step}"]), state)
      np.testing.assert_allclose(loss, REF[f"{name}/loss{step}"], rtol=VALUE_RTOL)
      np.testing.assert_allclose(grad, REF[f"{name}/grad{step}"], **GRAD_TOL)
  np.testing.assert_allclose(state.queue, REF[f"{name}/bank{STEPS}"], rtol=0, atol=1e-15)
  assert int(state.ptr) == STEPS * REF[f"{name}/q0"].shape[1] % k


def test_nnclr_neighbours_and_queue_match_lightly_nn_memory_bank():
  """lightly ``NNMemoryBankModule``: same neighbours and the same support set over 4 steps.

  Mapping: lightly's example looks up ``z0`` (update=False) and ``z1``
  (update=True); here the lookup of view 2 comes first and view 1 is enqueued,
  as ssljax enqueues ``views[0]`` (both lookups see the old bank). lightly
  stores and returns raw projections; ssljax unit vectors: rows are compared
  after normalisation (the neighbour search is by cosine in both).

  The loss differs by design (``docs/methods/nnclr.md``): lightly's NNCLR recipe
  is ``(NTXent(nn1, p2) + NTXent(nn2, p1)) / 2``, SimCLR's loss with same-side
  negatives, while ``nnclr_loss`` is solo-learn's one-sided cross-entropy of
  ``NN(u_v)·p_w``. So (a) lightly's recipe is reproduced with ssljax's
  `nearest_neighbour` + `nt_xent_loss` (value and gradient), and (b)
  ``nnclr_loss`` on the same steps equals solo-learn's formula evaluated on
  lightly's neighbours.
  """
  tau = float(REF["nnclr/temperature"])
  bank0 = _unit(REF["nnclr/bank0"])
  k = bank0.shape[0]
  with jax.enable_x64(True):
    def lightly_recipe(p, z, state):
      u = z / jnp.linalg.norm(z, axis=-1, keepdims=True)
      nn = jnp.stack([nnclr.nearest_neighbour(u[v], state)[0] for v in range(2)])
      a, _ = simclr.nt_xent_loss(jnp.stack([nn[0], p[1]]), temperature=tau,
                                 view_reduction="mean")
      b, _ = simclr.nt_xent_loss(jnp.stack([nn[1], p[0]]), temperature=tau,
                                 view_reduction="mean")
      return (a + b) / 2, nn

    recipe = jax.jit(jax.value_and_grad(lightly_recipe, has_aux=True))
    nnclr_step = jax.jit(lambda z, p, state: nnclr.nnclr_loss(z, p, state=state, queue_size=k,
                                                              temperature=tau))
    state = _full_queue(bank0)
    for step in range(STEPS):
      z, p = jnp.asarray(REF[f"nnclr/z{step}"]), jnp.asarray(REF[f"nnclr/p{step}"])
      lightly_nn = _unit(REF[f"nnclr/nn{step}"])                     # [2, B, D]
      (loss, nn), grad = recipe(p, z, state)
      np.testing.assert_allclose(nn, lightly_nn, rtol=0, atol=1e-15)
      np.testing.assert_allclose(loss, REF[f"nnclr/loss{step}"], rtol=VALUE_RTOL)
      np.testing.assert_allclose(grad, REF[f"nnclr/grad{step}"], **GRAD_TOL)

      loss, _, state = nnclr_step(z, p, state)
      pn = _unit(np.asarray(p))
      solo = 0.0
      for v, w in ((0, 1), (1, 0)):           # solo-learn nnclr_loss_func(nn_v, p_w) / 2
        logits = lightly_nn[v] @ pn[w].T / tau
        log_softmax = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        solo += -np.mean(np.diag(log_softmax)) / 2
      np.testing.assert_allclose(loss, solo, rtol=VALUE_RTOL)
  np.testing.assert_allclose(state.queue, _unit(REF[f"nnclr/bank{STEPS}"]), rtol=0, atol=1e-15)


def test_nt_xent_matches_lightly_ntxent():
  """lightly ``NTXentLoss(temperature)(out0, out1)`` (no bank) = ``view_reduction='mean'``."""
  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(
        lambda z: simclr.nt_xent_loss(z, temperature=float(REF["ntxent/temperature"]),
                                      view_reduction="mean")[0])(jnp.asarray(REF["ntxent/z"]))
  np.testing.assert_allclose(loss, REF["ntxent/loss"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF["ntxent/grad"], **GRAD_TOL)


def test_vicreg_matches_lightly_vicreg_loss():
  """lightly ``VICRegLoss()``: the same defaults (25, 25, 1, eps 1e-4) and the official form."""
  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(lambda z: vicreg.vicreg_loss(z)[0])(jnp.asarray(REF["pair/z"]))
  np.testing.assert_allclose(loss, REF["vicreg/loss"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF["vicreg/grad"], **GRAD_TOL)


def test_barlow_twins_matches_lightly_barlow_twins_loss():
  """lightly ``BarlowTwinsLoss(lambda_param=5e-3)``: ``F.batch_norm`` (biased variance, eps 1e-5).

  lightly's default λ = 5e-3 (the paper's text); the official code's and
  ssljax's 0.0051: 5e-3 is passed to both.
  """
  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(lambda z: barlow_twins.barlow_twins_loss(z, lambd=5e-3)[0])(
        jnp.asarray(REF["pair/z"]))
  np.testing.assert_allclose(loss, REF["barlow_twins/loss"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF["barlow_twins/grad"], **GRAD_TOL)


def test_swav_matches_lightly_swav_loss_with_multi_crop_and_queue():
  """lightly ``SwaVLoss(0.1, 3, 0.05)(high, low, queue)`` on 2 global + 2 local crops, 3 steps.

  Mapping: lightly takes scores; here scores = ``normalize(z) normalize(C)ᵀ``
  in the torch graph, differentiated through both normalisations as
  ``swav_loss`` does (value and gradients w.r.t. the crops and the raw
  prototypes). lightly's prototype head (``SwaVPrototypes``, an ``nn.Linear``
  with bias) is not used: official SwAV has no bias. Queue: lightly's SwAV
  example keeps one ``MemoryBankModule`` of Q rows per global crop, scored
  against the current prototypes and passed to the loss from a chosen epoch;
  with Q = 2B it is used from step 3, when it holds exactly the last Q
  features, which is when ``swav_loss`` uses its queue (once full). The
  Sinkhorn codes do not depend on the order of the queue rows.
  """
  q_len = int(REF["swav/queue_size"])
  with jax.enable_x64(True):
    c = jnp.asarray(REF["swav/prototypes"])
    def loss_fn(z, c, state):
      loss, aux, new_state = swav.swav_loss(z, prototypes=c, state=state, queue_size=q_len,
                                            temperature=0.1, epsilon=0.05, sinkhorn_iters=3,
                                            num_global_views=2)
      return loss, (aux, new_state)

    step_fn = jax.jit(jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True))
    state = swav.swav_init_state(q_len, c.shape[1], dtype=c.dtype)
    for step in range(STEPS - 1):
      (loss, (aux, state)), (gz, gc) = step_fn(jnp.asarray(REF[f"swav/z{step}"]), c, state)
      assert float(aux["queue_used"]) == float(step == STEPS - 2)
      np.testing.assert_allclose(loss, REF[f"swav/loss{step}"], rtol=VALUE_RTOL)
      np.testing.assert_allclose(gz, REF[f"swav/grad_z{step}"], **GRAD_TOL)
      np.testing.assert_allclose(gc, REF[f"swav/grad_c{step}"], **GRAD_TOL)


def test_sinkhorn_matches_lightly():
  """lightly ``sinkhorn(out, 3, 0.05)``: the same normalisation order (prototypes, then samples)."""
  with jax.enable_x64(True):
    codes = swav.sinkhorn(jnp.asarray(REF["sinkhorn/scores"]))
  np.testing.assert_allclose(codes, REF["sinkhorn/codes"], rtol=1e-12)


def test_koleo_matches_lightly_koleo_loss():
  """lightly ``KoLeoLoss()`` per view, summed over the 2 views (as ``koleo_loss`` and DINOv2).

  View 2 holds an exact duplicate pair (rows 3 and 7): its distance is
  ``||u3 − u7 + eps|| = eps·sqrt(D)`` in both. There the result is
  ill-conditioned in any implementation: if the two normalised rows differ by
  one ulp (XLA may vectorise rows differently), the distance moves by ~1e-8
  relative, the view's loss by ~1e-9 (atol 1e-9; measured 4.5e-11 with full
  XLA optimisation, 0 without), and the twins' gradients, each the difference
  of two terms of size ~``1/(eps·D)`` ≈ 2e7, by ~1e-10 (atol 1e-8; measured
  4.4e-11). View 1 and every other row: the default tolerances.
  """
  def loss_fn(z):
    per_view = jnp.stack([koleo.koleo_loss(z[v:v + 1])[0] for v in range(z.shape[0])])
    return jnp.sum(per_view), per_view

  with jax.enable_x64(True):
    (_, per_view), grad = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
        jnp.asarray(REF["koleo/z"]))
  want = REF["koleo/grad"]
  twins = np.zeros(want.shape[:2], bool)
  twins[1, [3, 7]] = True
  np.testing.assert_array_equal(REF["koleo/z"][1, 3], REF["koleo/z"][1, 7])
  np.testing.assert_allclose(per_view[0], REF["koleo/loss"][0], rtol=VALUE_RTOL)
  np.testing.assert_allclose(per_view[1], REF["koleo/loss"][1], rtol=0, atol=1e-9)
  np.testing.assert_allclose(np.asarray(grad)[~twins], want[~twins], **GRAD_TOL)
  np.testing.assert_allclose(np.asarray(grad)[twins], want[twins], rtol=0, atol=1e-8)


@pytest.mark.parametrize("shape", ["tall", "wide"])
@pytest.mark.parametrize("lmbda", [0.0, 5e-3])
def test_mmcr_matches_lightly_mmcr_loss(shape, lmbda):
  """lightly ``MMCRLoss(lmda)(online, momentum)`` with ``[N, 2, D]`` each = ``mmcr_loss`` of V = 4.

  Mapping: lightly concatenates online and momentum along the view axis
  (views 0-1 and 2-3 here) and does not normalise: the inputs are normalised
  in the torch graph, as ``mmcr_loss`` does. lightly's default λ = 5e-3 (the
  paper's ImageNet value); ssljax's 0 (official code's default); both tested.
  Shapes: N > D ("tall") and N < D ("wide").
  """
  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(lambda z: mmcr.mmcr_loss(z, lmbda=lmbda)[0])(
        jnp.asarray(REF[f"mmcr_{shape}/z"]))
  np.testing.assert_allclose(loss, REF[f"mmcr_{shape}/loss_{lmbda}"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF[f"mmcr_{shape}/grad_{lmbda}"], **GRAD_TOL)


@pytest.mark.parametrize("v", [2, 4])
def test_wmse_matches_lightly_wmse_loss(v):
  """lightly ``WMSELoss(w_size=N, num_samples=V, eps)`` on the views concatenated view-major.

  One sub-batch (w_size = N): lightly draws its partition with
  ``torch.randperm``, ssljax from ``key``; with one sub-batch the loss does
  not depend on the permutation (sub-batch whitening is checked on its own in
  `test_whiten_matches_lightly_whitening2d`). ε: lightly's default 0 (official)
  for W-MSE 2, ssljax's default 1e-5 for W-MSE 4, passed to both.
  """
  z = REF[f"wmse{v}/z"]
  eps = float(REF[f"wmse{v}/eps"])
  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(
        lambda z: wmse.wmse_loss(z, key=jax.random.key(0), w_size=z.shape[1], eps=eps)[0])(
            jnp.asarray(z))
  np.testing.assert_allclose(loss, REF[f"wmse{v}/loss"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF[f"wmse{v}/grad"], **GRAD_TOL)


def test_whiten_matches_lightly_whitening2d():
  """lightly ``Whitening2d(D, eps=0)`` in training mode: output and vector-Jacobian product."""
  with jax.enable_x64(True):
    out, vjp = jax.vjp(lambda x: wmse.whiten(x, eps=0.0), jnp.asarray(REF["whiten/x"]))
    (grad,) = vjp(jnp.asarray(REF["whiten/cotangent"]))
  np.testing.assert_allclose(out, REF["whiten/out"], rtol=1e-12, atol=1e-14)
  np.testing.assert_allclose(grad, REF["whiten/vjp"], **GRAD_TOL)


@pytest.mark.parametrize("t,alpha", [(2.0, 2.0), (1.0, 1.0)])
def test_hypersphere_matches_lightly_hypersphere_loss(t, alpha):
  """lightly ``HypersphereLoss(t, lam=1, alpha)(z_a, z_b)`` = alignment(α) + uniformity(t).

  lightly's ``lalign(x, y) + lam · (lunif(x) + lunif(y)) / 2``: the mean over
  the two views of Eq. 5, as ``uniformity_loss``. lightly's default t = 1;
  the paper's and ssljax's t = 2; both tested.
  """
  def loss_fn(z):
    return (hypersphere.alignment_loss(z, alpha=alpha)[0]
            + hypersphere.uniformity_loss(z, t=t)[0])

  with jax.enable_x64(True):
    loss, grad = _jit_value_and_grad(loss_fn)(jnp.asarray(REF["hypersphere/z"]))
  np.testing.assert_allclose(loss, REF[f"hypersphere/loss_t{t}_a{alpha}"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF[f"hypersphere/grad_t{t}_a{alpha}"], **GRAD_TOL)


def _sigreg_on_slices(z, slices):
  """SIGReg on given unit slices ``[D, M]``: the mean over slices of ``sigreg_loss`` on ``z·a``.

  With D = 1 the only unit directions are ±1 and the statistic is even in the
  direction, so ``sigreg_loss`` of the projected data is EP(a) whatever its key.
  """
  stats = [sigreg.sigreg_loss(z @ slices[:, j:j + 1], key=jax.random.key(0), num_slices=1)[0]
           for j in range(slices.shape[1])]
  return jnp.mean(jnp.stack(stats))


def test_sigreg_matches_lightly_sigreg():
  """lightly ``SIGReg(knots=17, t_max=3)`` on ``[V=2, N, D=6]`` with its slices fixed.

  lightly draws the slices with ``torch.randn``, ssljax from ``key``; the
  generator fixes lightly's and the test evaluates ``sigreg_loss`` on each
  slice's projection (`_sigreg_on_slices`). lightly keeps its grid ``t``,
  ``phi`` and weights as float32 buffers: with float64 copies the value
  agrees to rounding; with the stock buffers to the float32 rounding of the
  weights (relative 1e-7, hence rtol 1e-6 for that one).
  """
  with jax.enable_x64(True):
    z, slices = jnp.asarray(REF["sigreg/z"]), jnp.asarray(REF["sigreg/slices"])
    loss, grad = _jit_value_and_grad(lambda z: _sigreg_on_slices(z, slices))(z)
    _, weights = sigreg.epps_pulley_weights(3.0, 17)
  np.testing.assert_allclose(loss, REF["sigreg/loss_float64"], rtol=VALUE_RTOL)
  np.testing.assert_allclose(grad, REF["sigreg/grad_float64"], **GRAD_TOL)
  np.testing.assert_allclose(loss, REF["sigreg/loss_stock"], rtol=1e-6)
  np.testing.assert_allclose(weights, REF["sigreg/weights_float32"], rtol=1e-7)
