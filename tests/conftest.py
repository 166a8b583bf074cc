"""Test configuration: 8 fake CPU devices, and fast XLA compiles.

* The device-count flag must be set before JAX initialises its backend, hence
  at import time of the conftest. A caller may override it.
* ``JAX_DISABLE_MOST_OPTIMIZATIONS=1``: the suite is dominated by XLA:CPU
  compile time of many small programs (measured: a tiny train step compiles
  in 8 s instead of 28 s and initialises in 3.6 s instead of 14.6 s), while
  the programs themselves run on tiny shapes. The flag changes fusion and
  scheduling, not semantics; set it to 0 to test the optimised path.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


# Per-test time limit (pytest-timeout, from the [test] extra): a hung XLA:CPU
# thread pool (seen once on a heavily loaded 2-core machine, see the note of
# experiments/estimators.py) must fail the run loudly instead of stalling CI.
# The slowest test takes ~45 s on 2 idle cores.
TEST_TIMEOUT_SECONDS = 300


def pytest_collection_modifyitems(config, items):
  import pytest
  if not config.pluginmanager.hasplugin("timeout"):
    return
  for item in items:
    if item.get_closest_marker("timeout") is None:
      item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS))
