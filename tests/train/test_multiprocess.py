"""2 processes × 2 CPU devices with jax.distributed on 127.0.0.1 == one process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from ssljax.testing import run_train_steps, synthetic_batches, tiny_train_config

WORKER = os.path.join(os.path.dirname(__file__), "mp_worker.py")


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow  # two jax.distributed worker processes
@pytest.mark.parametrize("loss_mode", ["auto", "shard_map"])
def test_two_processes_match_single_process(tmp_path, loss_mode):
  port, out = _free_port(), str(tmp_path / "mp.npz")
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  env["PYTHONPATH"] = os.pathsep.join([os.getcwd(), env.get("PYTHONPATH", "")])
  procs = [subprocess.Popen([sys.executable, WORKER, str(i), "2", str(port), out, loss_mode],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  logs = []
  for p in procs:
    try:
      logs.append(p.communicate(timeout=240)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      raise
  for p, log in zip(procs, logs):
    assert p.returncode == 0, f"worker failed (rc={p.returncode}):\n{log[-4000:]}"
  got = np.load(out)
  assert int(got["num_devices"]) == 4
  config = tiny_train_config({"vicreg": {"weight": 1.0}})
  ref_state, ref_losses = run_train_steps(config, jax.devices()[:1], synthetic_batches(3, 16))
  np.testing.assert_allclose(got["losses"], ref_losses, rtol=2e-5, atol=2e-6)
  flat = {"/".join(str(k) for k in path): v for path, v in
          jax.tree_util.tree_flatten_with_path(ref_state.params)[0]}
  assert len(flat) == len([k for k in got.files if k.startswith("param:")])
  for k, v in flat.items():
    # Same float32 reduction-order tolerance as test_step.py.
    np.testing.assert_allclose(got[f"param:{k}"], v, rtol=1e-4, atol=1e-5, err_msg=k)
