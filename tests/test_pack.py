"""PacGAN packing (config `pack`): the discriminator scores `pack` samples at once.

A step with pack m reads batch_size * m real samples and draws batch_size * m latents
(the global batch, of which each device takes its own rows); each device packs its
rows m at a time on the last axis (gan.pack), so the discriminator sees batch_size
inputs with m times the channels (DCGAN) or features (MLP).

Tolerances. The hand-computed loss runs the same float32 networks on the same inputs as
the step, in another XLA program: each matrix product, convolution and mean may be
summed in another order, and a reordered sum of n terms moves by at most about
n * eps times the sum of its terms' magnitudes (helpers.float32_tolerance). The
1-vs-8-device comparison uses tests/test_device_count.py's bound, ULPS ulps per term of
the longest reordered sum for each optimizer update, where the longest sum is the
generator's BatchNorm mean over the batch_size * pack samples of the global batch.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import algorithms, data, losses, parallel, seeds
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from tests import test_device_count as device_count
from tests.helpers import experiment_config, float32_tolerance

STEPS = 2
MLP = ("toy_ring", dict(g_width=16, d_width=16, batch_size=16, pack=2))
# WGAN-GP: the penalty interpolates packed inputs, and two critic updates run in a loop.
DCGAN = ("wgan_gp", dict(g_width=8, d_width=8, latent_dim=16, image_size=8, batch_size=16,
                         n_critic=2, pack=2))
# The options that work with packing, together: minibatch stddev over packed inputs (groups
# of 2: one per device), feature matching on packed real and fake inputs, one-sided label
# smoothing, and one discriminator pass over the packed real and fake batch.
TOOLKIT = ("gan", dict(DCGAN[1], n_critic=1, minibatch_stddev=2, feature_matching=0.5,
                       real_label=0.9, separate_batches=False))
CASES = {"mlp": MLP, "dcgan": DCGAN, "toolkit": TOOLKIT}


@functools.cache
def config_of(name: str, seed: int = 0, num_seeds: int = 1, **overrides):
  experiment, base = CASES[name]
  config = experiment_config(experiment)
  config.update(base)
  config.update(overrides)
  config.update(seed=seed, num_seeds=num_seeds)
  gan.validate(config)
  return config


def global_batches(config, steps: int, seed: int):
  """`steps` global batches of batch_size * pack samples: [critic updates, samples, ...]."""
  rng = np.random.default_rng(seed)
  algorithm = algorithms.get(config.algorithm)
  shape = ((config.channels,) if config.architecture == "mlp" else
           (config.image_size, config.image_size, config.channels))
  return [{"image": rng.uniform(-1, 1, (algorithm.discriminator_updates(config, t),
                                        data.samples_per_step(config)) + shape
                                ).astype(np.float32)}
          for t in range(steps)]


def initial(config):
  init = functools.partial(algorithms.get(config.algorithm).init, config)
  return jax.device_get(jax.jit(init)(jax.random.PRNGKey(config.seed),
                                      device_count.example_batch(config)))


def run(config, devices: int, steps: int = STEPS, record=None):
  """(final host state, [host metrics of each step]) on the first `devices` devices."""
  mesh = parallel.make_mesh(jax.devices()[:devices])
  step = parallel.data_parallel(
      functools.partial(algorithms.get(config.algorithm).train_step, config), mesh,
      batch_axis=1, donate=False)
  state = parallel.replicate(initial(config), mesh)
  history = []
  for batch in global_batches(config, steps, config.seed):
    if record is None:
      state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
    else:
      with nn.intercept_methods(record):
        state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


def by_hand(samples, m):
  """Packed input i is samples i*m, ..., i*m + m - 1 concatenated on the last axis."""
  return np.concatenate([samples[j::m] for j in range(m)], axis=-1)


def test_pack_concatenates_consecutive_samples_on_the_last_axis():
  points = np.arange(12, dtype=np.float32).reshape(6, 2)
  np.testing.assert_array_equal(gan.pack(points, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = np.random.default_rng(0).normal(size=(6, 4, 4, 3)).astype(np.float32)
  packed = np.asarray(gan.pack(images, 2))
  assert packed.shape == (3, 4, 4, 6)
  np.testing.assert_array_equal(packed, by_hand(images, 2))
  np.testing.assert_array_equal(packed[1, ..., 3:], images[3])
  assert gan.pack(images, 1) is images
  with pytest.raises(ValueError, match="does not pack"):
    gan.pack(images, 4)


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
def test_the_discriminator_sees_packed_inputs(name):
  config = config_of(name)
  m, channels = config.pack, config.channels
  seen = []

  def record(next_fn, args, kwargs, context):
    if context.method_name == "__call__" and context.module.name is None:
      if "Discriminator" in type(context.module).__name__:
        seen.append(tuple(args[0].shape))
    return next_fn(*args, **kwargs)

  state, _ = run(config, 1, steps=1, record=record)
  inner = (m * channels,) if name == "mlp" else (config.image_size, config.image_size,
                                                 m * channels)
  assert seen and set(seen) == {(config.batch_size,) + inner}, seen
  # Built for m times the channels: the first layer's kernel takes them.
  first = jax.tree.leaves(state.params["discriminator"])
  kernels = [k for k in first if k.ndim >= 2]
  assert any(k.shape[-2] == m * channels for k in kernels)
  assert not any(k.shape[-2] == channels for k in kernels if k.ndim == 4)
  if name == "mlp":
    assert state.params["discriminator"]["Dense_0"]["kernel"].shape[0] == m * channels


def test_data_and_noise_give_batch_size_times_pack_samples():
  config = config_of("mlp")
  batch = next(data.make_batches(config))
  assert batch["image"].shape == (1, config.batch_size * config.pack, config.channels)
  plain = config_of("mlp", pack=1)
  assert next(data.make_batches(plain))["image"].shape == (1, config.batch_size, 2)


@pytest.mark.parametrize("m", [1, 2])
def test_d_loss_is_the_discriminator_on_the_packed_real_and_fake_batches(m):
  """One step's d_loss, recomputed: the generator's fakes from the step's noise, packed by
  hand with the real batch, through the initial discriminator."""
  config = config_of("mlp", pack=m)
  state0 = initial(config)
  _, history = run(config, 1, steps=1)
  real = global_batches(config, 1, config.seed)[0]["image"][0]
  generator, discriminator = gan.models(config, axis_name=None)
  g_key, _ = jax.random.split(jax.random.fold_in(state0.rng, 0))
  z = gan.latent(config, g_key, config.batch_size * m)
  fake, _ = generator.apply({"params": state0.params["generator"],
                             "batch_stats": state0.batch_stats["generator"]}, z,
                            train=True, mutable=["batch_stats"])
  d = lambda x: discriminator.apply({"params": state0.params["discriminator"]},  # noqa: E731
                                    jnp.asarray(x), train=True)
  real_out, fake_out = d(by_hand(real, m)), d(by_hand(np.asarray(fake), m))
  assert real_out.shape == fake_out.shape == (config.batch_size,)
  expected = float(losses.discriminator_loss(real_out, fake_out))
  got = float(history[0]["d_loss"])
  # Sums reordered: the generator's and discriminator's products (at most width terms
  # each, over all their layers) and the means over the batch, on values of order 1.
  terms = (config.g_depth + 1) * config.g_width + (config.d_depth + 1) * config.d_width \
      + config.batch_size * m
  tol = float32_tolerance(terms, max(abs(expected), 1.0))
  print(f"\npack {m}: d_loss {got} by hand {expected}, |diff| {abs(got - expected):.2g},"
        f" tolerance {tol:.2g}")
  assert abs(got - expected) <= tol
  # Another packing (each input's two points swapped) gives another loss: the check can
  # tell the packing rule from another.
  if m == 2:
    other = float(losses.discriminator_loss(d(real.reshape(-1, 2, 2)[:, ::-1].reshape(-1, 4)),
                                            fake_out))
    assert abs(other - expected) > 100 * tol


def test_pack_one_is_the_step_without_the_key():
  """pack=1 runs the code path of a config that has no `pack` key, bit for bit."""
  config = config_of("mlp", pack=1)
  without = config.copy_and_resolve_references()
  without.unlock()
  del without["pack"]
  assert gan.packing(without) == 1
  one, plain = run(config, 1), run(without, 1)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(plain), strict=True):
    np.testing.assert_array_equal(a, b)


def rounding_config(config):
  """The config test_device_count's bounds read, with the longest reordered sum (the
  generator's BatchNorm mean) over the batch_size * pack samples of the global batch."""
  c = config.copy_and_resolve_references()
  c.unlock()
  c.batch_size = data.samples_per_step(config)
  return c


# The generator's hidden biases come before BatchNorm (toy_ring: its BatchNorm running means).
ZERO_GRADIENT = {"mlp": r"\['generator'\]\['(Dense_[0-3]'\]\['bias|BatchNorm_\d'\]\['mean)'\]",
                 "dcgan": None, "toolkit": None}


@pytest.mark.parametrize("name", ["mlp", "dcgan", "toolkit"])
def test_one_device_and_eight_agree_with_pack_two(name):
  config = config_of(name)
  device_count.compare(f"pack {name}", rounding_config(config), run(config, 1), run(config, 8),
                       STEPS, ZERO_GRADIENT[name])


def test_two_seeds_on_four_devices_are_each_seed_alone_on_one_with_pack_two():
  config = config_of("mlp", num_seeds=2)
  algorithm = algorithms.get(config.algorithm)
  mesh = parallel.make_mesh(jax.devices()[:4])
  state = parallel.replicate(jax.device_get(seeds.init(algorithm, config,
                                                       device_count.example_batch(config))),
                             mesh)
  step = parallel.data_parallel(
      seeds.over_seeds(functools.partial(algorithm.train_step, config), config), mesh,
      batch_axis=2, donate=False)
  history = []
  for batch in seeds.stack_batches([global_batches(config_of("mlp", seed=s), STEPS, s)
                                    for s in seeds.replica_seeds(config)]):
    state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=2))
    history.append(jax.device_get(metrics))
  state = jax.device_get(state)
  for i, seed in enumerate(seeds.replica_seeds(config)):
    replica = seeds.replica(state, i), [{k: v[i] for k, v in m.items()} for m in history]
    device_count.compare(f"pack, seed {seed}", rounding_config(config),
                         run(config_of("mlp", seed=seed), 1), replica, STEPS,
                         ZERO_GRADIENT["mlp"])


@pytest.mark.parametrize("overrides, message", [
    (dict(pack=0), "pack=0 must be at least 1"),
    (dict(pack=2, num_classes=10), "pack=2 with num_classes=10.*--config.pack=1"),
])
def test_bad_pack_is_refused(overrides, message):
  config = experiment_config("cgan" if "num_classes" in overrides else "gan")
  config.update(overrides)
  with pytest.raises(GanjaxError, match=message):
    gan.validate(config)
