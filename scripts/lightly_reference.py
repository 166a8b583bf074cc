"""Writes tests/losses/data/lightly_reference.npz: lightly's losses and gradients on fixed inputs.

`tests/losses/test_lightly.py` compares ssljax's kernels with these stored
values, so the test suite (and CI) needs neither torch nor lightly. Run this
script only to regenerate the file, in a separate environment (never the
project's venv: a plain ``pip install lightly`` replaces torch by a 5 GB CUDA
build)::

  python3 -m venv ../lightly-venv          # beside the checkout, not inside it
  ../lightly-venv/bin/pip install torch==2.13.0 numpy    # CPU wheel: 2.13.0+cpu
  ../lightly-venv/bin/pip install --no-deps lightly==1.6.0
  ../lightly-venv/bin/python scripts/lightly_reference.py

The stored file was made with Python 3.11.7, torch 2.13.0+cpu, lightly 1.6.0
and numpy 2.4.6 (also recorded in its ``meta/*`` entries). ``lightly.loss``
imports ``torchvision.ops`` at import time, and PyPI's torchvision does not
import beside the +cpu torch: a stub module stands in for it (none of the
losses used here calls torchvision).

Everything is float64: inputs come from NumPy generators with fixed seeds and
are stored next to the outputs, so the test needs no RNG of either library.
lightly's state buffers (memory banks, SIGReg's frequency grid) are float32
by default; they are replaced by float64 copies, so the comparison is exact
to rounding (the stock float32 SIGReg value is stored too). For each loss the
script stores the value and the gradient with respect to the inputs; for the
queue methods, consecutive steps with the memory bank carried (4 for MoCo and NNCLR, 3 for
SwAV).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import types

import numpy as np


def _stub_torchvision():
  """A torchvision stand-in: lightly.loss imports torchvision.ops names it does not call here."""
  try:
    import torchvision  # noqa: F401
    return
  except Exception:  # absent, or the PyPI build that fails beside torch+cpu
    pass
  tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")

  def unavailable(*args, **kwargs):
    raise RuntimeError("torchvision stub: not available in the reference environment")

  ops.roi_align = unavailable
  ops.StochasticDepth = type("StochasticDepth", (), {"__init__": lambda s, *a, **k: unavailable()})
  tv.ops = ops
  sys.modules.update({"torchvision": tv, "torchvision.ops": ops})


_stub_torchvision()

import lightly  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from lightly.loss import (BarlowTwinsLoss, KoLeoLoss, MMCRLoss, NTXentLoss,  # noqa: E402
                          SwaVLoss, VICRegLoss, WMSELoss)
from lightly.loss.hypersphere_loss import HypersphereLoss  # noqa: E402
from lightly.loss.lejepa_loss import SIGReg  # noqa: E402
from lightly.loss.swav_loss import sinkhorn  # noqa: E402
from lightly.loss.wmse_loss import Whitening2d  # noqa: E402
from lightly.models.modules.memory_bank import MemoryBankModule  # noqa: E402
from lightly.models.modules.nn_memory_bank import NNMemoryBankModule  # noqa: E402

OUT = {}
STEPS = 4


def _t(x, grad=False):
  return torch.tensor(np.asarray(x, np.float64), requires_grad=grad)


def _np(x):
  return x.detach().numpy().copy()


def _normal(rng, shape):
  """Standard normal draws rounded to multiples of 1/64: exact in float64, and they compress."""
  return np.round(64 * rng.normal(size=shape)) / 64


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _set_bank(module, raw):
  """Replaces a (float32) lightly memory bank by float64 unit rows ``raw / ||raw||``, pointer 0."""
  module.bank = F.normalize(_t(raw), dim=-1)
  module.bank_ptr.zero_()


def moco():
  """NTXentLoss(memory_bank_size=(K, D)): queries out0, keys out1 enqueued after the loss."""
  rng = np.random.default_rng(1)
  b, d, k, tau = 8, 8, 24, 0.2
  OUT["moco/temperature"] = np.float64(tau)
  for name, symmetric in (("moco", False), ("moco_sym", True)):
    banks = _normal(rng, (2 if symmetric else 1, k, d))
    OUT[f"{name}/bank0"] = banks
    fns = [NTXentLoss(temperature=tau, memory_bank_size=(k, d)) for _ in banks]
    for fn, bank in zip(fns, banks):
      _set_bank(fn.memory_bank, bank)
    for step in range(STEPS):
      q, keys = _normal(rng, (2, b, d)), _normal(rng, (2, b, d))
      qt = _t(q, grad=True)
      if symmetric:   # one bank per key view: (q1, k2, bank 0) and (q2, k1, bank 1)
        loss = 0.5 * (fns[0](qt[0], _t(keys[1])) + fns[1](qt[1], _t(keys[0])))
      else:
        loss = fns[0](qt[0], _t(keys[1]))
      loss.backward()
      OUT[f"{name}/q{step}"], OUT[f"{name}/k{step}"] = q, keys
      OUT[f"{name}/loss{step}"], OUT[f"{name}/grad{step}"] = _np(loss), _np(qt.grad)
    OUT[f"{name}/bank{STEPS}"] = np.stack([_np(fn.memory_bank.bank) for fn in fns])


def nnclr():
  """lightly's NNCLR recipe: NNMemoryBankModule neighbours + symmetric NTXentLoss (no bank)."""
  rng = np.random.default_rng(2)
  b, d, k, tau = 8, 8, 24, 0.1
  OUT["nnclr/temperature"] = np.float64(tau)
  bank = _normal(rng, (k, d))
  OUT["nnclr/bank0"] = bank
  replacer = NNMemoryBankModule(size=(k, d))
  _set_bank(replacer, bank)
  criterion = NTXentLoss(temperature=tau)
  for step in range(STEPS):
    z, p = _normal(rng, (2, b, d)), _normal(rng, (2, b, d))
    pt = _t(p, grad=True)
    # The lookup of z2 first, then z1 with update=True: both see the old bank, and z1 (view
    # 1, ssljax's views[0]) is enqueued, as ssljax enqueues views[0].
    nn2 = replacer(_t(z[1]), update=False)
    nn1 = replacer(_t(z[0]), update=True)
    loss = 0.5 * (criterion(nn1, pt[1]) + criterion(nn2, pt[0]))
    loss.backward()
    OUT[f"nnclr/z{step}"], OUT[f"nnclr/p{step}"] = z, p
    OUT[f"nnclr/nn{step}"] = np.stack([_np(nn1), _np(nn2)])
    OUT[f"nnclr/loss{step}"], OUT[f"nnclr/grad{step}"] = _np(loss), _np(pt.grad)
  OUT[f"nnclr/bank{STEPS}"] = _np(replacer.bank)


def ntxent():
  """NTXentLoss without a memory bank (SimCLR, Algorithm 1)."""
  rng = np.random.default_rng(3)
  z = _normal(rng, (2, 12, 8))
  zt = _t(z, grad=True)
  loss = NTXentLoss(temperature=0.5)(zt[0], zt[1])
  loss.backward()
  OUT.update({"ntxent/z": z, "ntxent/temperature": np.float64(0.5), "ntxent/loss": _np(loss),
              "ntxent/grad": _np(zt.grad)})


def vicreg_barlow_twins():
  """VICRegLoss() and BarlowTwinsLoss(lambda_param=5e-3) (the first kernels) on one pair of views."""
  rng = np.random.default_rng(10)
  z = _normal(rng, (2, 16, 6))
  z[1] += z[0]                                                 # correlated views
  OUT["pair/z"] = z
  for name, fn in (("vicreg", VICRegLoss()), ("barlow_twins", BarlowTwinsLoss(lambda_param=5e-3))):
    zt = _t(z, grad=True)
    loss = fn(zt[0], zt[1])
    loss.backward()
    OUT[f"{name}/loss"], OUT[f"{name}/grad"] = _np(loss), _np(zt.grad)


def swav():
  """SwaVLoss on 2 high- + 2 low-resolution crops; lightly's SwAV example queue (MemoryBankModule).

  Scores are ``normalize(z) @ normalize(C)ᵀ``, differentiated through both
  normalisations (as ssljax; lightly's model re-normalises C without gradient,
  which changes only how the gradient reaches the raw prototypes). The queue of
  Q = 2B rows joins the codes from step 3 on, when it holds the last Q features
  (ssljax: once full); in lightly's example it is the ``start_queue_at_epoch``.
  """
  rng = np.random.default_rng(4)
  v, b, d, k, q_len = 4, 8, 8, 6, 16
  c = _normal(rng, (k, d))
  OUT.update({"swav/prototypes": c, "swav/queue_size": np.int64(q_len)})
  criterion = SwaVLoss(temperature=0.1, sinkhorn_iterations=3, sinkhorn_epsilon=0.05)
  queues = [MemoryBankModule(size=(q_len, d), feature_dim_first=False) for _ in range(2)]
  for queue in queues:
    _set_bank(queue, _normal(rng, (q_len, d)))
  for step in range(STEPS - 1):
    z = _normal(rng, (v, b, d))
    zt, ct = _t(z, grad=True), _t(c, grad=True)
    u, cn = F.normalize(zt, dim=-1), F.normalize(ct, dim=-1)
    scores = u @ cn.T
    banks = [queue(u[i], update=True)[1] for i, queue in enumerate(queues)]
    queue_scores = [bank @ cn.detach().T for bank in banks] if step >= q_len // b else None
    loss = criterion(list(scores[:2]), list(scores[2:]), queue_scores)
    loss.backward()
    OUT[f"swav/z{step}"], OUT[f"swav/loss{step}"] = z, _np(loss)[0]
    OUT[f"swav/grad_z{step}"], OUT[f"swav/grad_c{step}"] = _np(zt.grad), _np(ct.grad)
  scores = rng.uniform(-1, 1, size=(24, k))
  OUT.update({"sinkhorn/scores": scores, "sinkhorn/codes": _np(sinkhorn(_t(scores)))})


def koleo():
  """KoLeoLoss per view (stored per view; the gradient of their sum, as DINOv2); view 2 holds an
  exact duplicate row."""
  rng = np.random.default_rng(5)
  z = _normal(rng, (2, 16, 5))
  z[1, 3] = z[1, 7]
  zt = _t(z, grad=True)
  fn = KoLeoLoss()
  per_view = torch.stack([fn(zt[0]), fn(zt[1])])
  per_view.sum().backward()
  OUT.update({"koleo/z": z, "koleo/loss": _np(per_view), "koleo/grad": _np(zt.grad)})


def mmcr():
  """MMCRLoss(online, momentum) with V = 4 views: online = views 0-1, momentum = views 2-3.

  lightly does not normalise; the inputs are normalised in the graph (as ssljax).
  """
  rng = np.random.default_rng(6)
  for name, (n, d) in (("tall", (12, 6)), ("wide", (6, 10))):
    base = _normal(rng, (n, d))
    z = np.stack([base + 0.5 * _normal(rng, (n, d)) for _ in range(4)])
    OUT[f"mmcr_{name}/z"] = z
    for lmbda in (0.0, 5e-3):
      zt = _t(z, grad=True)
      u = F.normalize(zt, dim=-1).transpose(0, 1)               # [N, V, D]
      loss = MMCRLoss(lmda=lmbda)(u[:, :2], u[:, 2:])
      loss.backward()
      OUT[f"mmcr_{name}/loss_{lmbda}"], OUT[f"mmcr_{name}/grad_{lmbda}"] = _np(loss), _np(zt.grad)


def wmse():
  """WMSELoss with w_size = batch (one sub-batch: no dependence on lightly's randperm) and
  Whitening2d on one sub-batch (value and vector-Jacobian product)."""
  rng = np.random.default_rng(7)
  for v, eps in ((2, 0.0), (4, 1e-5)):
    n, d = 16, 4
    z = _normal(rng, (v, n, d)) @ _normal(rng, (d, d))
    zt = _t(z, grad=True)
    fn = WMSELoss(embedding_dim=d, eps=eps, w_size=n, num_samples=v, track_running_stats=False)
    loss = fn(zt.reshape(v * n, d))                           # views concatenated, view-major
    loss.backward()
    OUT.update({f"wmse{v}/z": z, f"wmse{v}/eps": np.float64(eps), f"wmse{v}/loss": _np(loss),
                f"wmse{v}/grad": _np(zt.grad)})
  x = _normal(rng, (8, 4)) @ _normal(rng, (4, 4))
  cot = _normal(rng, (8, 4))
  xt = _t(x, grad=True)
  white = Whitening2d(4, track_running_stats=False)(xt)
  (white * _t(cot)).sum().backward()
  OUT.update({"whiten/x": x, "whiten/out": _np(white), "whiten/cotangent": cot,
              "whiten/vjp": _np(xt.grad)})


def hypersphere():
  """HypersphereLoss(t, lam=1, alpha): alignment + mean of the two views' uniformity."""
  rng = np.random.default_rng(8)
  z = _normal(rng, (2, 16, 5))
  OUT["hypersphere/z"] = z
  for t, alpha in ((2.0, 2.0), (1.0, 1.0)):
    zt = _t(z, grad=True)
    loss = HypersphereLoss(t=t, lam=1.0, alpha=alpha)(zt[0], zt[1])
    loss.backward()
    OUT[f"hypersphere/loss_t{t}_a{alpha}"] = _np(loss)
    OUT[f"hypersphere/grad_t{t}_a{alpha}"] = _np(zt.grad)


def sigreg():
  """SIGReg on [V, N, D] with given unit slices A [D, M] (lightly draws them with torch.randn).

  Stored twice: with lightly's float32 grid buffers (stock) and with float64 copies.
  """
  rng = np.random.default_rng(9)
  z = 1.3 * _normal(rng, (2, 32, 6)) + 0.2
  a = _unit(_normal(rng, (7, 6))).T                              # [D, M] unit columns
  OUT.update({"sigreg/z": z, "sigreg/slices": a})
  fn = SIGReg(knots=17, t_max=3.0, num_vectors=a.shape[1])
  fn._generate_unit_vectors = lambda device, dtype, num_features: _t(a)
  OUT["sigreg/weights_float32"] = _np(fn.weights)
  for name in ("stock", "float64"):
    if name == "float64":
      t = torch.linspace(0, 3.0, 17, dtype=torch.float64)
      w = torch.full((17,), 2 * 3.0 / 16, dtype=torch.float64)
      w[[0, -1]] = 3.0 / 16
      fn.t, fn.phi, fn.weights = t, torch.exp(-t.square() / 2), w * torch.exp(-t.square() / 2)
    zt = _t(z, grad=True)
    loss = fn(zt)
    loss.backward()
    OUT[f"sigreg/loss_{name}"], OUT[f"sigreg/grad_{name}"] = _np(loss), _np(zt.grad)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  default = os.path.join(os.path.dirname(__file__), "..", "tests", "losses", "data",
                         "lightly_reference.npz")
  parser.add_argument("--out", default=os.path.normpath(default))
  args = parser.parse_args()
  torch.set_grad_enabled(True)
  for build in (moco, nnclr, ntxent, vicreg_barlow_twins, swav, koleo, mmcr, wmse, hypersphere, sigreg):
    build()
  OUT.update({"meta/lightly": np.str_(lightly.__version__), "meta/torch": np.str_(torch.__version__),
              "meta/numpy": np.str_(np.__version__), "meta/python": np.str_(platform.python_version())})
  os.makedirs(os.path.dirname(args.out), exist_ok=True)
  np.savez_compressed(args.out, **OUT)
  print(f"wrote {len(OUT)} arrays to {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
  main()
