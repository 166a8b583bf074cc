"""Environment for every test and doctest: 8 fake CPU devices, fast XLA compiles.

* The device-count flag must be set before JAX initialises its backend, hence
  at import time of the root conftest (before any test or ssljax module is
  collected). A caller may override it.
* ``JAX_DISABLE_MOST_OPTIMIZATIONS=1``: the suite is dominated by XLA:CPU
  compile time of many small programs (measured: a tiny train step compiles
  in 8 s instead of 28 s and initialises in 3.6 s instead of 14.6 s), while
  the programs themselves run on tiny shapes. The flag changes fusion and
  scheduling, not semantics; `tests/test_optimized_xla.py` runs the train-step
  equivalence test with it set to 0, so the optimised path is tested too.
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# The CLI's persistent compilation cache: tests never write into the user's cache.
os.environ.setdefault("SSLJAX_COMPILATION_CACHE", "off")


# Per-test time limit (pytest-timeout, from the [test] extra): a hung XLA:CPU
# thread pool (seen once on a heavily loaded 2-core machine, see the note of
# experiments/estimators.py) must fail the run loudly instead of stalling CI.
# Most tests take under a minute; the few known to run longer on a loaded
# machine set their own `@pytest.mark.timeout`, with the reason.
TEST_TIMEOUT_SECONDS = 300


def pytest_configure(config):
  # `pytest -m "not slow"` is the fast developer loop; CI runs everything.
  config.addinivalue_line(
      "markers", "slow: runs subprocesses, a notebook kernel or a script (tens of seconds); "
      "deselect with -m 'not slow'")


def pytest_collection_modifyitems(config, items):
  import pytest
  if not config.pluginmanager.hasplugin("timeout"):
    return
  for item in items:
    if item.get_closest_marker("timeout") is None:
      item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_SECONDS))


def pytest_configure(config):
  config.addinivalue_line("markers", "slow: runs a subprocess or a long job; deselect with "
                          "-m 'not slow'")
