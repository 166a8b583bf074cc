"""The quick-start notebook: it is what its generator writes, and it runs top to bottom.

The notebook is executed with nbclient in a fresh IPython kernel started from
*this* interpreter (``sys.executable``), through a kernel spec written to a
temporary directory, so neither ``~/.local`` kernel specs nor a ``python`` on
``PATH`` decide which environment runs it. The kernel inherits the test
process's environment (``the root conftest.py``: 8 fake CPU devices, fast XLA
compiles) plus ``JAX_PLATFORMS=cpu``; the notebook runs with any device count.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import sys
import time

import nbformat
import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK_DIR = os.path.join(REPO_ROOT, "experiments", "notebooks")
NOTEBOOK = os.path.join(NOTEBOOK_DIR, "quickstart.ipynb")
GENERATOR = os.path.join(NOTEBOOK_DIR, "make_quickstart.py")
KERNEL_NAME = "ssljax-test-python"
CELL_TIMEOUT_S = 300


def _load_generator():
  spec = importlib.util.spec_from_file_location("make_quickstart", GENERATOR)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _read_committed() -> str:
  with open(NOTEBOOK, encoding="utf-8") as f:
    return f.read()


def test_generator_reproduces_committed_notebook():
  expected = _load_generator().render()
  assert _read_committed() == expected, (
      "experiments/notebooks/quickstart.ipynb is stale: run "
      "`python experiments/notebooks/make_quickstart.py` and commit both files.")


def test_committed_notebook_has_no_outputs():
  nb = nbformat.reads(_read_committed(), as_version=4)
  nbformat.validate(nb)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert cell.outputs == [] and cell.execution_count is None, cell.id


def _kernel_manager(tmp_path):
  """An async kernel manager whose only kernel runs ``sys.executable -m ipykernel_launcher``."""
  from jupyter_client.kernelspec import KernelSpecManager
  from jupyter_client.manager import AsyncKernelManager

  spec_dir = tmp_path / "kernels" / KERNEL_NAME
  spec_dir.mkdir(parents=True)
  spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
          "display_name": "ssljax test kernel", "language": "python",
          "env": {"JAX_PLATFORMS": "cpu"}}
  (spec_dir / "kernel.json").write_text(json.dumps(spec))
  ksm = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")], ensure_native_kernel=False)
  return AsyncKernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
  """(stdout text, executed notebook, wall seconds) of one run of the notebook."""
  from jupyter_client.utils import run_sync
  from nbclient import NotebookClient

  nb = nbformat.reads(_read_committed(), as_version=4)
  km = _kernel_manager(tmp_path_factory.mktemp("kernelspec"))
  client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, allow_errors=False,
                          resources={"metadata": {"path": NOTEBOOK_DIR}})
  start = time.perf_counter()
  try:
    client.execute()  # raises CellExecutionError on the first failing cell
  finally:
    # nbclient only shuts down kernels it created itself.
    if km.has_kernel:
      run_sync(km.shutdown_kernel)(now=True)
  wall = time.perf_counter() - start
  text = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                 for out in cell.outputs if out.output_type == "stream" and out.name == "stdout")
  print(f"quickstart notebook executed in {wall:.1f} s")
  return text, nb, wall


def _floats(pattern: str, text: str) -> list[tuple[float, ...]]:
  rows = re.findall(pattern, text)
  assert rows, f"no line matches {pattern!r} in the notebook output:\n{text}"
  return [tuple(float(x) for x in (r if isinstance(r, tuple) else (r,))) for r in rows]


_ATOMS = r"R=(\S+) U1=(\S+) U2=(\S+) S=(\S+)"


@pytest.mark.slow  # executes the notebook in a kernel
def test_notebook_runs_without_errors(executed):
  text, nb, _ = executed
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert not [o for o in cell.outputs if o.output_type == "error"], cell.id
  assert "notebook wall time" in text
  # The sweep figure was rendered.
  assert any("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code"
             for o in c.outputs)
  # Executing the copy must not touch the committed file.
  assert _read_committed() == _load_generator().render()


@pytest.mark.slow  # executes the notebook in a kernel
def test_training_loss_decreases(executed):
  text, _, _ = executed
  steps = _floats(r"step +\d+  VICReg loss +(\S+)", text)
  assert len(steps) == 12 and all(math.isfinite(s[0]) for s in steps)
  (first, last), = _floats(r"train loss: first3=(\S+) last3=(\S+) decreased=True", text)
  # Measured 26.39 -> 22.04 (VICReg, digits, 12 LARS steps): a clear margin, not noise.
  assert last < 0.95 * first


@pytest.mark.slow  # executes the notebook in a kernel
def test_pid_values_match_ground_truth(executed):
  text, _, _ = executed
  half_ln = lambda x: 0.5 * math.log(x)
  closed = _floats(r"Gaussian closed form +" + _ATOMS + " nats", text)[0]
  assert closed == pytest.approx((half_ln(1.5), 0.0, 0.0, half_ln(2.0)), abs=1e-4)
  bits = _floats(r"Gaussian closed form +" + _ATOMS + " bits", text)[0]
  assert bits == pytest.approx((0.5 * math.log2(1.5), 0.0, 0.0, 0.5), abs=1e-4)
  # 20000 samples, scalar blocks: the plug-in bias is ~1/(2N) nats; sampling error ~1e-2.
  batch = _floats(r"Gaussian batch estimator \(N=20000\) +" + _ATOMS + " nats", text)[0]
  assert batch == pytest.approx((half_ln(1.5), 0.0, 0.0, half_ln(2.0)), abs=0.02)
  xor = _floats(r"XOR, BROJA +" + _ATOMS + " bits", text)[0]
  assert xor == pytest.approx((0.0, 0.0, 0.0, 1.0), abs=1e-4)
  and_bits = _floats(r"AND, BROJA +" + _ATOMS + " bits", text)[0]
  r_and = 1.5 - 0.75 * math.log2(3.0)  # I(Y;X1) of AND, all redundant (dit: 0.3113 bits)
  assert and_bits == pytest.approx((r_and, 0.0, 0.0, 0.5), abs=1e-4)
  and_nats = _floats(r"AND, BROJA +" + _ATOMS + " nats", text)[0]
  assert and_nats == pytest.approx(tuple(v * math.log(2.0) for v in and_bits), abs=2e-4)


@pytest.mark.slow  # executes the notebook in a kernel
def test_hyperparameter_sweeps(executed):
  text, _, _ = executed
  hsic = _floats(r"gamma=(\S+)  loss=(\S+)  \|grad\|=(\S+)", text)
  assert len(hsic) == 7
  # L(gamma) = gamma * sqrt(H_ZZ) - H_ZY is affine in gamma: constant differences.
  diffs = [b[1] - a[1] for a, b in zip(hsic, hsic[1:])]
  assert max(diffs) - min(diffs) < 1e-5 and min(diffs) > 0
  (slope, root), = _floats(r"slope d loss / d gamma = (\S+);  sqrt\(hsic_zz\) = (\S+)", text)
  assert slope == pytest.approx(root, abs=2e-6)
  cim = _floats(r"eps=(\S+)  loss=(\S+)  \|grad\|=(\S+)", text)
  assert len(cim) == 9
  # log det(R + eps I) grows with eps, so the loss (minus the log-dets) cannot grow.
  losses = [c[1] for c in cim]
  assert all(b <= a + 1e-6 for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 1.0
  assert all(math.isfinite(c[2]) for c in hsic + cim)
