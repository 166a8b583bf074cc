"""Test configuration: 8 fake CPU devices for the multi-device tests.

The flag must be set before JAX initialises its backend, hence at import time
of the conftest. A caller may override it (e.g. to test with 4 devices).
"""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
