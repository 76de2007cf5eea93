"""A step's result does not depend on the device count: every algorithm and option.

Each case trains tiny networks for a few steps from one initial state on the
same global batches, once on 1 device and once on 8, and compares every
step's metrics and the final state: parameters, EMA, BatchNorm and spectral
norm statistics, CycleGAN's pools, and the integer state (steps, pool counts,
keys). `num_seeds` is checked the same way: 2 seeds on 4 devices against each
seed alone on 1 device.

What is exact and what is not. Integers, and every random draw (noise,
interpolation weights, pool slots and coins: each device draws for the
global batch and takes its own rows), are the same bits on any device count.
Float sums are not: a mean over the global batch is one sum on 1 device and
8 partial sums plus a cross-device sum on 8, and a convolution of 2 rows may
be blocked differently from one of 16. The tolerances below follow from that
rounding (`rtol`, `noise_atol`). Adam's moments are not compared element by
element: they hold raw gradients, and a gradient that is rounding noise (see
`noise_atol`) differs between any two orders of summation; the parameters
they move are compared.
"""

import functools
import re

import jax
import numpy as np
import pytest

from ganjax import algorithms, parallel, seeds
from tests.helpers import experiment_config

EPS = float(np.finfo(np.float32).eps)
ULPS = 4  # rounding allowed per term of a reordered sum
STEPS = 3
SMALL = dict(g_width=8, d_width=8, latent_dim=16, image_size=8, batch_size=16)


@functools.cache
def case(name: str):
  """(experiment, overrides, steps, parameters whose exact gradient is zero)."""
  return {
      "gan": ("gan", SMALL, STEPS, None),
      # 100 critic updates (a loop) in each of the first 25 steps, weights clipped.
      "wgan_clip_warmup": ("wgan", dict(SMALL, critic_warmup=True), 2, None),
      "wgan_gp": ("wgan_gp", dict(SMALL, n_critic=2), STEPS, None),
      "cgan_concat": ("cgan", dict(SMALL, label_dim=8, conditioning="concat"), STEPS, None),
      "cgan_projection": ("cgan", dict(SMALL, label_dim=8, conditioning="projection"), STEPS,
                          None),
      # The critic's LayerNorm makes each layer's output invariant to the scale of the
      # spectrally normalised kernel before it: the gradient along the kernel is zero.
      "sngan": ("sngan", SMALL, STEPS, r"\['discriminator'\]"),
      # A pool of 3 under a global batch of 8: it fills in the first step, then swaps.
      # Every hidden convolution's bias comes before instance norm.
      "cyclegan": ("cyclegan", dict(g_width=4, d_width=4, num_blocks=1, image_size=32,
                                    load_size=32, batch_size=8, pool_size=3), 2,
                   r"\['bias'\]"),
      # The generator's hidden biases come before BatchNorm (and shift its running means).
      "toy_ring": ("toy_ring", dict(g_width=16, d_width=16, batch_size=16), STEPS,
                   r"\['generator'\]\['(Dense_[0-3]'\]\['bias|BatchNorm_\d'\]\['mean)'\]"),
      # The toolkit's options together: minibatch stddev (groups of 2: one per device),
      # feature matching, EMA, one-sided label smoothing, uniform noise, and one critic
      # pass over the real and the fake batch.
      "toolkit": ("gan", dict(SMALL, minibatch_stddev=2, feature_matching=0.5, ema_decay=0.9,
                              real_label=0.9, noise="uniform", separate_batches=False),
                  STEPS, None),
  }[name]


CASES = ["gan", "wgan_clip_warmup", "wgan_gp", "cgan_concat", "cgan_projection", "sngan",
         "cyclegan", "toy_ring", "toolkit"]


@functools.cache
def case_config(name: str, seed: int = 0, num_seeds: int = 1):
  experiment, overrides, _, _ = case(name)
  config = experiment_config(experiment)
  config.update(overrides)
  config.update(seed=seed, num_seeds=num_seeds)
  algorithms.get(config.algorithm).validate(config)
  return config


def random_batches(config, steps: int, seed: int):
  """The global batches of `steps` steps, each [critic updates, batch, ...]."""
  algorithm = algorithms.get(config.algorithm)
  rng = np.random.default_rng(seed)
  out = []
  for t in range(steps):
    lead = (algorithm.discriminator_updates(config, t), config.batch_size)
    if config.algorithm == "cyclegan":
      shape = lead + (config.image_size, config.image_size, config.channels)
      out.append({k: rng.uniform(-1, 1, shape).astype(np.float32)
                  for k in ("image_a", "image_b")})
      continue
    shape = lead + ((config.channels,) if config.architecture == "mlp" else
                    (config.image_size, config.image_size, config.channels))
    out.append({"image": rng.uniform(-1, 1, shape).astype(np.float32),
                "label": rng.integers(0, max(config.num_classes, 1), lead).astype(np.int32)})
  return out


def example_batch(config):
  shape = (2,) + ((config.channels,) if config.get("architecture") == "mlp" else
                  (config.image_size, config.image_size, config.channels))
  return {"image": np.zeros(shape, np.float32)}


@functools.cache
def initial_state(name: str, seed: int = 0):
  config = case_config(name, seed)
  init = functools.partial(algorithms.get(config.algorithm).init, config)
  return jax.device_get(jax.jit(init)(jax.random.PRNGKey(seed), example_batch(config)))


@functools.cache
def stepper(name: str, devices: int):
  """Case `name`'s jitted data-parallel step on the first `devices` devices (the seed only
  reaches the initial state and the data, so every seed shares it)."""
  config = case_config(name)
  mesh = parallel.make_mesh(jax.devices()[:devices])
  step = functools.partial(algorithms.get(config.algorithm).train_step, config)
  return mesh, parallel.data_parallel(step, mesh, batch_axis=1, donate=False)


@functools.cache
def run(name: str, devices: int, seed: int = 0):
  """(final host state, [host metrics of each step]) of case `name` on `devices` devices."""
  config = case_config(name, seed)
  mesh, step = stepper(name, devices)
  state = parallel.replicate(initial_state(name, seed), mesh)
  history = []
  for batch in random_batches(config, case(name)[2], seed):
    state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


def updates(config, steps: int) -> dict:
  """Optimizer updates of each network over `steps` steps (critic: every critic update)."""
  algorithm = algorithms.get(config.algorithm)
  critic = sum(algorithm.discriminator_updates(config, t) for t in range(steps))
  return {"generator": steps, "discriminator": critic}


def rtol(config, steps: int) -> float:
  """ULPS ulps per term of the longest reordered sum, the mean over the global batch,
  for each optimizer update of the run: each update rounds anew on what the last left."""
  return ULPS * EPS * config.batch_size * sum(updates(config, steps).values())


def adam_step_bound(b1: float, b2: float, t: int) -> float:
  """The largest |update| / lr of Adam's t-th step, whatever the gradients: by
  Cauchy-Schwarz, |m_hat| <= sqrt(sum_i a_i^2 / c_i) sqrt(v_hat) with m_hat = sum a_i g_i
  and v_hat = sum c_i g_i^2 (bias-corrected)."""
  i = np.arange(1, t + 1)
  a = (1 - b1) * b1 ** (t - i) / (1 - b1 ** t)
  c = (1 - b2) * b2 ** (t - i) / (1 - b2 ** t)
  return float(np.sqrt(np.sum(a ** 2 / c)))


def noise_atol(config, steps: int, network: str) -> float:
  """How far apart two runs may take an element whose exact gradient is zero.

  Its computed gradient is rounding noise of the order of ulps, and Adam normalises
  it into a step of up to adam_step_bound * lr in either direction (as in
  tests/test_cyclegan.py): two runs may differ by twice that per update.
  """
  if config.get("optimizer", "adam") != "adam":
    raise ValueError("noise_atol bounds Adam's steps only")
  lr = config.get("lr") or config[{"generator": "g_lr", "discriminator": "d_lr"}[network]]
  n = updates(config, steps)[network]
  return 2 * lr * sum(adam_step_bound(config.beta1, config.beta2, t) for t in range(1, n + 1))


def leaves(tree):
  return [(jax.tree_util.keystr(path), np.asarray(x))
          for path, x in jax.tree_util.tree_leaves_with_path(tree)]


def kind(path: str) -> str:
  """The leaves that share a scale: one field of one network (params of the generator, ...)."""
  return re.match(r"\.\w+(\['\w+'\])?", path).group(0)


def network(config, path: str) -> str:
  if config.algorithm == "cyclegan":
    return "discriminator" if re.search(r"\['d_[ab]'\]", path) else "generator"
  return "generator" if path.startswith(".ema") or "'generator'" in path else "discriminator"


SEEN = {}  # case: its largest differences, as fractions of their tolerances (pytest -s prints)


def compare(name, config, one, other, steps, zero_gradient=None):
  """Asserts that two runs agree: metrics and float state within rtol (of the metric, at
  least 1; of the largest magnitude of each kind of state), the parameters whose exact
  gradient is zero (the regex `zero_gradient`) within noise_atol, integers exactly."""
  (state1, history1), (state2, history2) = one, other
  tol = rtol(config, steps)
  seen = {"metric": 0.0, "state": 0.0, "zero-gradient": 0.0}
  for t, (m1, m2) in enumerate(zip(history1, history2, strict=True)):
    assert m1.keys() == m2.keys()
    for key in m1:
      a, b = np.float64(m1[key]), np.float64(m2[key])
      bound = tol * max(abs(a), 1.0)
      seen["metric"] = max(seen["metric"], abs(a - b) / bound)
      assert abs(a - b) <= bound, f"step {t + 1} {key}: {a} and {b}"
  pairs = [(p, a, b) for (p, a), (_, b) in zip(leaves(state1), leaves(state2), strict=True)
           if not p.startswith(".opt_state") or not np.issubdtype(a.dtype, np.floating)]
  scale = {}
  for path, a, _ in pairs:
    if np.issubdtype(a.dtype, np.floating) and a.size:
      scale[kind(path)] = max(scale.get(kind(path), 0.0), float(np.max(np.abs(a))))
  for path, a, b in pairs:
    if not np.issubdtype(a.dtype, np.floating):
      np.testing.assert_array_equal(a, b, err_msg=path)  # steps, pool counts, keys
      continue
    if not a.size:
      continue
    diff = float(np.max(np.abs(a - b)))
    bound = tol * scale[kind(path)]
    if zero_gradient and re.search(zero_gradient, path):
      if "SpectralNorm" in path:
        continue  # the power iteration's state: a function of the weights compared here
      bound += noise_atol(config, steps, network(config, path))
      seen["zero-gradient"] = max(seen["zero-gradient"], diff / bound)
    else:
      seen["state"] = max(seen["state"], diff / bound)
    assert diff <= bound, f"{path}: {diff} > {bound}"
  SEEN[name] = seen
  print(f"\n{name}: largest differences as fractions of their tolerances (rtol {tol:.2g}):"
        + ", ".join(f" {k} {v:.2g}" for k, v in seen.items()))


@pytest.mark.parametrize("name", CASES)
def test_one_device_and_eight_agree(name):
  config = case_config(name)
  _, _, steps, zero_gradient = case(name)
  one, eight = run(name, 1), run(name, 8)
  compare(name, config, one, eight, steps, zero_gradient)
  if name == "cyclegan":  # the pools filled and then swapped within the steps
    assert int(one[0].pool_count) == config.pool_size < config.batch_size
  if name == "wgan_clip_warmup":
    assert algorithms.get(config.algorithm).discriminator_updates(config, 1) == 100


def test_two_seeds_on_four_devices_are_each_seed_alone_on_one():
  name = "wgan_gp"
  _, _, steps, _ = case(name)
  config = case_config(name, num_seeds=2)
  algorithm = algorithms.get(config.algorithm)
  mesh = parallel.make_mesh(jax.devices()[:4])
  state = parallel.replicate(jax.device_get(seeds.init(algorithm, config,
                                                       example_batch(config))), mesh)
  step = parallel.data_parallel(
      seeds.over_seeds(functools.partial(algorithm.train_step, config), config), mesh,
      batch_axis=2, donate=False)
  batches = seeds.stack_batches([random_batches(config, steps, seed)
                                 for seed in seeds.replica_seeds(config)])
  history = []
  for batch in batches:
    state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=2))
    history.append(jax.device_get(metrics))
  state = jax.device_get(state)
  for i, seed in enumerate(seeds.replica_seeds(config)):
    replica = seeds.replica(state, i), [{k: v[i] for k, v in m.items()} for m in history]
    compare(f"num_seeds, replica {i}", config, run(name, 1, seed), replica, steps)
