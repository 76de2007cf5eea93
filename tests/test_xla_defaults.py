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


# Options of one program (jax.jit compiler_options), chosen per algorithm.
knows_ynn = pytest.mark.skipif(
    not all(xla_defaults._jaxlib_knows(word) for name, value in
            xla_defaults.CONVOLUTIONS_BY_XLA.items() for word in [name, *value.split(",")]),
    reason="this jaxlib lacks the YNNPACK fusion option or its values")


@knows_ynn
def test_program_options_apply_to_the_cpu_only():
  options = xla_defaults.CONVOLUTIONS_BY_XLA
  assert xla_defaults.program_options(options, "cpu", {}) == options
  assert xla_defaults.program_options(options, "gpu", {}) == {}
  assert xla_defaults.program_options(options, "tpu", {}) == {}
  assert xla_defaults.program_options(options, "cpu", {"GANJAX_XLA_DEFAULTS": "0"}) == {}
  name = next(iter(options))
  users = {"XLA_FLAGS": f"--{name}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
  assert xla_defaults.program_options(options, "cpu", users) == {}  # the user's setting wins


def test_program_options_this_jaxlib_lacks_are_left_out():
  # XLA refuses to compile with an unknown option, or an unknown value of a known one.
  assert xla_defaults.program_options({"xla_cpu_no_such_option_in_any_jaxlib": "1"},
                                      "cpu", {}) == {}
  assert xla_defaults.program_options(
      {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_NO_SUCH_TYPE"},
      "cpu", {}) == {}


@knows_ynn
def test_the_gan_options_move_convolutions_off_ynnpack_and_keep_the_numbers():
  import jax  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from ganjax.algorithms import cyclegan, gan  # pylint: disable=import-outside-toplevel

  def loss(x, w):  # a strided convolution and its gradients, as in the DCGAN critic
    y = jax.lax.conv_general_dilated(x, w, (2, 2), [(1, 1), (1, 1)],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jax.numpy.sum(jax.nn.leaky_relu(y, 0.2) ** 2)

  rng = np.random.default_rng(0)
  x = rng.standard_normal((16, 16, 16, 32)).astype(np.float32)  # the critic's 2nd layer
  w = (0.1 * rng.standard_normal((4, 4, 32, 64))).astype(np.float32)
  grad = jax.grad(loss, argnums=(0, 1))
  assert gan.compiler_options(None) == xla_defaults.CONVOLUTIONS_BY_XLA
  assert cyclegan.compiler_options(None) == {}
  default = jax.jit(grad).lower(x, w).compile()
  ours = jax.jit(grad, compiler_options=gan.compiler_options(None)).lower(x, w).compile()
  # XLA's default puts convolutions of this size into YNNPACK fusions (two of the
  # three here); the GAN options leave them all to XLA (there is no matrix product).
  ynn_fusions = lambda c: c.as_text().count('"__ynn_fusion"')  # noqa: E731
  assert ynn_fusions(default) >= 1 and ynn_fusions(ours) == 0
  for a, b in zip(ours(x, w), default(x, w)):  # the same sums, in another order
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
