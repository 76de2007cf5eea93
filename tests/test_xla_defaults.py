"""ganjax/xla_defaults.py: which XLA flags `import ganjax` adds, and when it leaves them."""

import os

import pytest

from ganjax import xla_defaults

# jaxlib 0.10 defines the flag; a jaxlib without it must get nothing (the last tests).
knows_xnnpack = pytest.mark.skipif(not xla_defaults._jaxlib_knows("xla_cpu_use_xnnpack"),
                                   reason="this jaxlib has no --xla_cpu_use_xnnpack")


@knows_xnnpack
def test_adds_a_known_flag_to_the_users_flags():
  env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
  added = xla_defaults.apply(env)
  assert added == ["--xla_cpu_use_xnnpack=true"]  # the installed jaxlib defines it
  assert env["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=2"
                              " --xla_cpu_use_xnnpack=true")
  assert xla_defaults.apply(env) == []  # idempotent


def test_the_users_setting_wins():
  env = {"XLA_FLAGS": "--xla_cpu_use_xnnpack=false"}
  assert xla_defaults.apply(env) == []
  assert env["XLA_FLAGS"] == "--xla_cpu_use_xnnpack=false"


def test_switched_off_by_environment():
  env = {"GANJAX_XLA_DEFAULTS": "0"}
  assert xla_defaults.apply(env) == []
  assert "XLA_FLAGS" not in env


def test_a_flag_this_jaxlib_lacks_is_never_added(monkeypatch):
  # XLA aborts the process on an unknown flag, so an unknown one must be left out.
  monkeypatch.setattr(xla_defaults, "FLAGS", {"xla_cpu_no_such_flag_in_any_jaxlib": "true"})
  env = {}
  assert xla_defaults.apply(env) == []
  assert env == {}


@knows_xnnpack
def test_the_test_process_runs_with_the_defaults():
  assert "--xla_cpu_use_xnnpack=true" in os.environ["XLA_FLAGS"]
