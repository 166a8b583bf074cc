"""One process of the 2-process × 2-device run in test_multiprocess.py (not a test itself).

Usage: python mp_worker.py PROCESS_ID NUM_PROCESSES PORT OUT.npz [LOSS_MODE]
"""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402


def main():
  pid, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
  loss_mode = sys.argv[5] if len(sys.argv) > 5 else "auto"
  jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=pid)
  from ssljax.testing import run_train_steps, synthetic_batches, tiny_train_config
  config = tiny_train_config({"vicreg": {"weight": 1.0}})
  state, losses = run_train_steps(config, jax.devices(), synthetic_batches(3, 16), loss_mode=loss_mode)
  if pid == 0:
    flat = {"/".join(str(k) for k in path): v for path, v in
            jax.tree_util.tree_flatten_with_path(state.params)[0]}
    np.savez(out, losses=np.asarray(losses), num_devices=len(jax.devices()),
             **{f"param:{k}": np.asarray(v) for k, v in flat.items()})
  jax.distributed.shutdown()


if __name__ == "__main__":
  main()
