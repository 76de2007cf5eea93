"""Tests run on the CPU with 8 virtual devices, so data-parallel code runs for real."""

import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                           + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests build the same small programs many times, in this process and in the
# command-line subprocesses: share compilations through JAX's persistent cache.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      os.path.join(tempfile.gettempdir(), f"ganjax-test-jax-cache-{os.getuid()}"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402  pylint: disable=wrong-import-position

assert jax.device_count() == 8, "tests/conftest.py must set XLA_FLAGS before jax starts"
