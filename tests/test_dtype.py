"""config.dtype: bfloat16 compute with float32 parameters, optimizer states and losses.

`python -m tests.test_dtype` prints the float32 metrics that GOLDEN_FLOAT32
holds (run it from the repository root; it sets up the CPU like conftest.py).
"""

import functools
import os
import re
import sys

if __name__ == "__main__":  # the environment conftest.py gives the tests
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8").strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.extend  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ganjax import algorithms, backend, parallel  # noqa: E402
from ganjax.algorithms import cyclegan, gan  # noqa: E402
from ganjax.errors import GanjaxError  # noqa: E402
from tests.helpers import experiment_config, float32_tolerance  # noqa: E402

# name: (experiment, preset, overrides), each a step that takes about a second.
TINY = {
    "gan": ("gan", None, dict(g_width=8, d_width=8, latent_dim=16, batch_size=8)),
    "cgan": ("cgan", None, dict(g_width=8, d_width=8, latent_dim=16, batch_size=8)),
    "wgan": ("wgan", None, dict(g_width=8, d_width=8, latent_dim=16, batch_size=8,
                                n_critic=2, critic_warmup=False)),
    "wgan_gp": ("wgan_gp", None, dict(g_width=8, d_width=8, latent_dim=16, batch_size=8,
                                      n_critic=2)),
    "cyclegan": ("cyclegan", None, dict(g_width=4, d_width=4, num_blocks=1, image_size=32,
                                        load_size=32, batch_size=2, pool_size=2)),
    "toy_ring": ("toy_ring", None, dict(g_width=16, d_width=16, batch_size=16)),
}


def tiny(name: str, dtype: str | None = None):
  experiment, preset, overrides = TINY[name]
  config = experiment_config(experiment, preset)
  config.update(overrides)
  if dtype is not None:
    config.dtype = dtype
  return config


def random_batch(config, algorithm, step: int, rng: np.random.Generator):
  shape = (algorithm.discriminator_updates(config, step), config.batch_size)
  if config.algorithm == "cyclegan":
    shape += (config.image_size, config.image_size, config.channels)
    return {"image_a": rng.uniform(-1, 1, shape).astype(np.float32),
            "image_b": rng.uniform(-1, 1, shape).astype(np.float32)}
  shape += (config.channels,) if config.architecture == "mlp" else (
      config.image_size, config.image_size, config.channels)
  return {"image": rng.uniform(-1, 1, shape).astype(np.float32),
          "label": rng.integers(0, max(config.num_classes, 1), shape[:2]).astype(np.int32)}


@functools.cache
def initial_state(name: str):
  """The float32 init state of TINY[name] (parameters do not depend on config.dtype)."""
  config = tiny(name)
  algorithm = algorithms.get(config.algorithm)
  example = random_batch(config, algorithm, 0, np.random.default_rng(0))
  example = {"image": next(iter(example.values()))[0]}
  return jax.device_get(jax.jit(functools.partial(algorithm.init, config))(
      jax.random.PRNGKey(0), example))


@functools.cache
def _step(name: str, dtype: str, stock: bool = False):
  """The jitted one-device step of TINY[name], with the backend train.py resolves (or the
  stock Flax layers and XLA's defaults)."""
  config = tiny(name, dtype)
  algorithm = algorithms.get(config.algorithm)
  algorithm.validate(config)
  mesh = parallel.make_mesh(jax.local_devices()[:1])
  run_backend = backend.STOCK_BACKEND if stock else backend.resolve(
      mesh.devices.flat, config.algorithm)
  return mesh, algorithm, config, parallel.data_parallel(
      functools.partial(algorithm.train_step, config, backend=run_backend), mesh,
      batch_axis=1, donate=False, compiler_options=run_backend.jit_options())


@functools.cache
def run_steps(name: str, dtype: str, steps: int, stock: bool = False):
  """`steps` train steps of TINY[name] in `dtype` on one device from its float32 init
  state, on random batches -> (host state, [host metrics])."""
  mesh, algorithm, config, step = _step(name, dtype, stock)
  rng = np.random.default_rng(0)
  random_batch(config, algorithm, 0, rng)  # the init's example batch
  state = parallel.replicate(initial_state(name), mesh)
  history = []
  for i in range(steps):
    batch = parallel.shard_batch(random_batch(config, algorithm, i, rng), mesh, batch_axis=1)
    state, metrics = step(state, batch)
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


def fingerprint(name: str) -> dict[str, float]:
  """The metrics of one float32 step of TINY[name] on one device."""
  _, (metrics,) = run_steps(name, "float32", 1)
  return {k: float(v) for k, v in sorted(metrics.items())}


# The metrics of one float32 step of each TINY network, recorded with
# `python -m tests.test_dtype`. They are compared with a tolerance, never bit for
# bit: another CPU's kernels, another core count or the CPU's convolution forms sum
# the same products in another order. A metric of these networks passes through
# sums of at most about STEP_TERMS products (the widest layer's reduction times the
# depth, forwards and backwards), so a reordering moves it by at most about
# float32_tolerance(STEP_TERMS, |metric|); a change to what a step computes moves it
# by far more.
STEP_TERMS = 2000
GOLDEN_FLOAT32 = {
    "gan": {
        "d_fake": 0.48482829332351685,
        "d_grad_norm": 9.346076011657715,
        "d_loss": 1.4572120904922485,
        "d_real": 0.4637834429740906,
        "g_grad_norm": 9.182028770446777,
        "g_loss": 0.7964353561401367,
    },
    "cgan": {
        "d_fake": 0.48917680978775024,
        "d_grad_norm": 5.806324481964111,
        "d_loss": 1.3930602073669434,
        "d_real": 0.4923584461212158,
        "g_grad_norm": 0.8824254274368286,
        "g_loss": 0.748430073261261,
    },
    "wgan_gp": {
        "d_grad_norm": 842.7675170898438,
        "d_loss": -0.1521347463130951,
        "g_grad_norm": 16.80730438232422,
        "g_loss": 0.14495043456554413,
        "gradient_penalty": 33.86186218261719,
        "wasserstein": 0.1521347463130951,
    },
    "cyclegan": {
        "cycle_a": 0.5100453495979309,
        "cycle_b": 0.5096224546432495,
        "d_a": 0.6487348079681396,
        "d_b": 0.5525334477424622,
        "d_grad_norm": 16.413015365600586,
        "g_gan_a": 1.2721554040908813,
        "g_gan_b": 1.3327946662902832,
        "g_grad_norm": 106.77269744873047,
        "g_loss": 17.900392532348633,
        "identity_a": 0.5125266313552856,
        "identity_b": 0.5072265863418579,
        "lr": 0.00019999999494757503,
    },
    "toy_ring": {
        "d_fake": 0.5581048727035522,
        "d_grad_norm": 0.6925217509269714,
        "d_loss": 1.4897338151931763,
        "d_real": 0.5174545049667358,
        "g_grad_norm": 0.4380801320075989,
        "g_loss": 0.5967471599578857,
    },
}


def _float_leaves(tree):
  return [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]


# ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gan", "wgan_gp", "cyclegan"])
def test_unknown_dtype_is_one_clear_error(name):
  config = tiny(name, dtype="float16")
  with pytest.raises(GanjaxError, match=r"dtype='float16' is not one of float32, bfloat16"):
    algorithms.get(config.algorithm).validate(config)


@pytest.mark.parametrize("name", list(TINY))
def test_bfloat16_steps_keep_float32_state_and_train(name):
  """A few bfloat16 steps: parameters, optimizer states, BatchNorm statistics, pools and
  metrics stay float32 and finite, and the parameters move."""
  config = tiny(name, "bfloat16")
  algorithm = algorithms.get(config.algorithm)
  example = next(iter(random_batch(config, algorithm, 0, np.random.default_rng(0)).values()))
  shapes = jax.eval_shape(functools.partial(algorithm.init, config), jax.random.PRNGKey(0),
                          {"image": np.zeros(example.shape[1:], np.float32)})
  assert {leaf.dtype for leaf in _float_leaves(shapes)} == {np.dtype(np.float32)}  # a bfloat16 init
  before = initial_state(name)
  after, history = run_steps(name, "bfloat16", 3)
  for part in ("params", "opt_state", "batch_stats", "ema", "pool"):
    for leaf in _float_leaves(getattr(after, part, {})):
      assert leaf.dtype == np.float32, (part, leaf.dtype)
      assert np.all(np.isfinite(leaf)), part
  for metrics in history:
    for key, value in metrics.items():
      assert value.dtype == np.float32 and np.isfinite(value), (key, value)
  moved = [not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before.params),
                                                     jax.tree.leaves(after.params))]
  assert all(moved)


def _networks(name: str, dtype: str):
  """(module, variables, input, keyword arguments) of each network of TINY[name], with
  its float32 initial parameters."""
  config = tiny(name, dtype)
  state = initial_state(name)
  if name == "cyclegan":
    g, d = cyclegan.models(config)
    images = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
    return [(g, {"params": state.params["g_ab"]}, images, {}),
            (d, {"params": state.params["d_a"]}, images, {})]
  g, d = gan.models(config, axis_name=None)
  labels = jnp.arange(4) % config.num_classes if config.num_classes else None
  z = jax.ShapeDtypeStruct((4, config.latent_dim), jnp.float32)
  shape = (4, config.channels) if config.architecture == "mlp" else (
      4, config.image_size, config.image_size, config.channels)
  kw = dict(labels=labels, train=True)
  return [(g, {"params": state.params["generator"],
               "batch_stats": state.batch_stats["generator"]}, z, kw),
          (d, {"params": state.params["discriminator"],
               "batch_stats": state.batch_stats["discriminator"]},
           jax.ShapeDtypeStruct(shape, jnp.float32), kw)]


LAYERS = ("Conv", "Dense", "BatchNorm", "LayerNorm", "Embed")


def _last_layer(keys):
  """The output layer among captured keys like "['Conv_3']['__call__'][0]": the top-level
  Conv with the highest number (CycleGAN's and DCGAN's critics), else Dense (the MLPs),
  else ConvTranspose (the DCGAN generator). Flax numbers a module's layers of one type in
  call order; tree flattening sorts the keys, so the list order says nothing."""
  for kind in ("Conv", "Dense", "ConvTranspose"):
    numbers = [int(m.group(1)) for k in keys
               if (m := re.fullmatch(rf"\['{kind}_(\d+)'\]\['__call__'\]\[0\]", k))]
    if numbers:
      return f"['{kind}_{max(numbers)}']['__call__'][0]"
  raise AssertionError(f"no output layer among {keys}")


@pytest.mark.parametrize("name", ["gan", "cgan", "wgan_gp", "cyclegan", "toy_ring"])
def test_bfloat16_hidden_layers_and_float32_outputs(name):
  """Every hidden layer's output is bfloat16, the last layer's and the network's float32,
  and most matrix products and convolutions take bfloat16 operands."""
  for module, variables, x, kw in _networks(name, "bfloat16"):
    def apply(v, x, module=module, kw=kw):
      return module.apply(v, x, capture_intermediates=True, mutable=True, **kw)
    out, captured = jax.eval_shape(apply, variables, x)
    if isinstance(out, tuple):
      out = out[0]
    assert out.dtype == jnp.float32
    outputs = [(jax.tree_util.keystr(path), leaf.dtype) for path, leaf in
               jax.tree_util.tree_leaves_with_path(captured["intermediates"])
               if any(layer in jax.tree_util.keystr(path) for layer in LAYERS)]
    assert len(outputs) >= 3, outputs
    last = _last_layer([key for key, _ in outputs])
    for key, dtype in outputs:
      want = jnp.float32 if key == last else jnp.bfloat16
      assert dtype == want, (type(module).__name__, key, dtype)
    jaxpr = str(jax.make_jaxpr(apply)(variables, x))
    heavy = [line for line in jaxpr.splitlines()
             if " dot_general[" in line or " conv_general_dilated[" in line]
    assert sum("bf16[" in line for line in heavy) > len(heavy) // 2, heavy


@pytest.mark.parametrize("name", ["gan", "wgan_gp", "cyclegan", "toy_ring"])
def test_bfloat16_losses_are_close_to_float32(name):
  """The same parameters and batch in float32 and in bfloat16: the step's losses agree to
  bfloat16's precision (8 bits of mantissa), and are not identical (bfloat16 was used)."""
  _, (want, *_) = run_steps(name, "float32", 1)
  _, (got, *_) = run_steps(name, "bfloat16", 3)
  keys = [k for k in want if "loss" in k or k in ("cycle_a", "gradient_penalty")]
  assert keys
  for key in keys:
    np.testing.assert_allclose(got[key], want[key], rtol=3e-2, atol=3e-3, err_msg=key)
  assert any(got[k] != want[k] for k in keys)


def _float_converts(jaxpr) -> list[str]:
  """The convert_element_type equations of a jaxpr (and its sub-jaxprs) from a floating
  dtype to a floating dtype, other than those that make a Python scalar's weak type
  strong (float32 programs had those before config.dtype; they round nothing)."""
  found = []
  for eqn in jaxpr.eqns:
    if eqn.primitive.name == "convert_element_type" and not eqn.invars[0].aval.weak_type:
      src, dst = eqn.invars[0].aval.dtype, eqn.outvars[0].aval.dtype
      if jnp.issubdtype(src, jnp.floating) and jnp.issubdtype(dst, jnp.floating):
        found.append(f"{src} -> {dst}")
    for value in eqn.params.values():
      for sub in value if isinstance(value, (tuple, list)) else (value,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          found += _float_converts(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          found += _float_converts(sub)
  return found


@pytest.mark.parametrize("name", ["gan", "cgan", "wgan_gp", "cyclegan", "toy_ring"])
def test_float32_is_unchanged(name):
  """float32 runs (the default) compute what they computed when the fingerprints were
  recorded, to float32 rounding, and have no casts between floating dtypes anywhere in
  the step."""
  config = tiny(name)
  assert config.dtype == "float32"
  golden, got = GOLDEN_FLOAT32[name], fingerprint(name)
  assert sorted(got) == sorted(golden)
  for key, value in golden.items():
    np.testing.assert_allclose(got[key], value, rtol=0,
                               atol=float32_tolerance(STEP_TERMS, abs(value)), err_msg=key)
  _, algorithm, _, step = _step(name, "float32")
  batch = random_batch(config, algorithm, 0, np.random.default_rng(0))
  jaxpr = step.trace(initial_state(name), batch).jaxpr
  assert "bf16" not in str(jaxpr)
  assert _float_converts(jaxpr.jaxpr) == []


@pytest.mark.parametrize("name", ["gan", "wgan_gp", "cyclegan"])
def test_cpu_forms_compute_the_stock_step(name):
  """The CPU backend's step (its convolution forms, compiler options and unrolled critic
  updates) and the stock Flax step give the same metrics on this machine, to float32
  rounding."""
  got = fingerprint(name)
  _, (want,) = run_steps(name, "float32", 1, stock=True)
  for key, value in want.items():
    np.testing.assert_allclose(got[key], float(value), rtol=0,
                               atol=float32_tolerance(STEP_TERMS, abs(float(value))),
                               err_msg=key)


if __name__ == "__main__":
  print("GOLDEN_FLOAT32 = {")
  for n in ("gan", "cgan", "wgan_gp", "cyclegan", "toy_ring"):
    print(f"    {n!r}: {fingerprint(n)!r},")
  print("}")
