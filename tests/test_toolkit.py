"""The stabilisation toolkit and conditioning: each option changes what it should."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import data, parallel, train
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from ganjax.models import dcgan, layers
from tests.helpers import experiment_config, tiny_config


def tiny_cgan(**overrides):
  config = experiment_config("cgan")
  config.update(dict(g_width=8, d_width=8, latent_dim=16, label_dim=8, batch_size=16,
                     num_train_steps=2, log_every=1, sample_every=2, checkpoint_every=1,
                     num_samples=20))
  config.update(overrides)
  return config


def one_step(config, devices=None):
  mesh = parallel.make_mesh(devices)
  batch = next(data.make_batches(config, per_step=functools.partial(gan.discriminator_updates,
                                                                   config)))
  state = gan.init(config, jax.random.PRNGKey(config.seed), {"image": batch["image"][0]})
  state = parallel.replicate(jax.device_get(state), mesh)
  step = parallel.data_parallel(functools.partial(gan.train_step, config), mesh, batch_axis=1,
                                donate=False)
  after, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
  return jax.device_get(state), jax.device_get(after), jax.device_get(metrics), batch


# ----------------------------------------------------------------------------
# Conditioning.


@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_labels_reach_both_networks(conditioning):
  config = tiny_cgan(conditioning=conditioning)
  state = jax.device_get(gan.init(config, jax.random.PRNGKey(0), train.example_batch(config)))
  generator, critic = gan.models(config, axis_name=None)
  z = gan.latent(config, jax.random.PRNGKey(1), 4)
  ones, sevens = jnp.full((4,), 1), jnp.full((4,), 7)
  g_vars = {"params": state.params["generator"], "batch_stats": state.batch_stats["generator"]}
  a = generator.apply(g_vars, z, ones, train=False)
  b = generator.apply(g_vars, z, sevens, train=False)
  # The label changes the sample (at initialisation outputs are small: compare to their scale).
  assert np.max(np.abs(a - b)) > 0.1 * np.max(np.abs(a))
  assert "label_embedding" in state.params["generator"]

  d_vars = {"params": state.params["discriminator"],
            "batch_stats": state.batch_stats["discriminator"]}
  if conditioning == "projection":  # the N(0, 0.02) projection starts small: make it count
    d_vars["params"] = {**d_vars["params"],
                        "projection": {"embedding": jax.random.normal(
                            jax.random.PRNGKey(2),
                            d_vars["params"]["projection"]["embedding"].shape)}}
  x = a
  out_1 = critic.apply(d_vars, x, ones, train=False)
  out_7 = critic.apply(d_vars, x, sevens, train=False)
  assert np.max(np.abs(out_1 - out_7)) > 0.01 * np.max(np.abs(out_1))  # ... and the verdict
  # A critic that ignores the label's value would be unchanged; the label's
  # route is the one named by `conditioning`.
  first_conv = state.params["discriminator"]["Conv_0"]["kernel"]
  assert first_conv.shape[2] == (1 + 10 if conditioning == "concat" else 1)
  assert ("projection" in state.params["discriminator"]) == (conditioning == "projection")


def test_conditional_sample_grid_has_one_row_per_class():
  config = tiny_cgan(num_samples=30)
  (z, labels), columns = gan.preview_inputs(config)
  assert columns == 3 and z.shape == (30, 16)
  np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 3))
  np.testing.assert_array_equal(z[0:3], z[27:30])  # every row reuses the same latents
  state = jax.device_get(gan.init(config, jax.random.PRNGKey(0), train.example_batch(config)))
  samples = np.asarray(gan.sample(config, state, z, labels))
  grid = train.sample_figure(config, samples, columns)
  assert grid.shape == (10 * 34 + 2, 3 * 34 + 2, 1)


@pytest.mark.parametrize("overrides", [
    dict(),
    dict(algorithm="wgan_gp", loss="wasserstein", gp_weight=10.0, d_norm="layer", n_critic=2,
         conditioning="projection"),
])
def test_conditional_step_trains_both_networks(overrides):
  config = tiny_cgan(**overrides)
  before, after, metrics, batch = one_step(config)
  assert batch["label"].shape == (config.n_critic, 16)
  for name in ("generator", "discriminator"):
    moved = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(before.params[name]),
                                                   jax.tree.leaves(after.params[name]))]
    assert min(moved) > 0, name  # every parameter, the label embeddings included, moved
  assert all(np.isfinite(v) for v in metrics.values())


def test_conditioning_errors():
  with pytest.raises(GanjaxError, match="num_classes=10 but dataset='toy:ring' has 8 classes"):
    data.check_labels(tiny_cgan(dataset="toy:ring", channels=2), data.parse_spec("toy:ring"))
  with pytest.raises(GanjaxError, match="conditioning='both' is not one of concat, projection"):
    gan.validate(tiny_cgan(conditioning="both"))


# ----------------------------------------------------------------------------
# Minibatch standard deviation.


def test_minibatch_stddev_matches_numpy():
  x = np.random.default_rng(0).normal(size=(8, 3, 3, 5)).astype(np.float32)
  out = np.asarray(layers.minibatch_stddev(jnp.asarray(x), 4))
  assert out.shape == (8, 3, 3, 6)
  np.testing.assert_array_equal(out[..., :5], x)
  for i in range(8):  # groups of 4 consecutive examples
    group = x[i // 4 * 4:i // 4 * 4 + 4]
    expected = np.mean(np.sqrt(np.var(group, axis=0) + 1e-8))
    np.testing.assert_allclose(out[i, ..., 5], expected, rtol=1e-5)
  with pytest.raises(ValueError, match="a batch of 6 does not split into groups of 4"):
    layers.minibatch_stddev(jnp.zeros((6, 2)), 4)


@pytest.mark.parametrize("group", [0, 2])
def test_minibatch_stddev_lets_the_critic_see_the_batch(group):
  critic = dcgan.Discriminator(image_size=8, width=4, norm="none", minibatch_stddev=group)
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
  variables = critic.init(jax.random.PRNGKey(1), x)
  other = x.at[1].multiply(3.0)  # change example 1 only
  changed = np.abs(critic.apply(variables, x) - critic.apply(variables, other))
  assert changed[1] > 0
  # Example 0 shares example 1's group: only the stddev feature carries the change.
  assert (changed[0] > 1e-6) == (group > 0)
  assert changed[2] < 1e-6 and changed[3] < 1e-6


# ----------------------------------------------------------------------------
# Feature matching.


def test_feature_matching_loss_and_generator_update():
  config = tiny_config(feature_matching=1.0, adversarial_weight=0.0)
  before, after, metrics, batch = one_step(config, jax.devices()[:1])
  generator, critic = gan.models(config, axis_name=None)
  key = jax.random.fold_in(before.rng, before.step)
  g_key, _ = jax.random.split(key)
  z = gan.latent(config, g_key, config.batch_size)

  def features(x):
    (_, f), _ = critic.apply({"params": after.params["discriminator"],
                              "batch_stats": after.batch_stats["discriminator"]}, x,
                             train=True, features=True, mutable=["batch_stats"])
    return f

  def fm_loss(p):
    fake, _ = generator.apply({"params": p, "batch_stats": before.batch_stats["generator"]}, z,
                              train=True, mutable=["batch_stats"])
    return jnp.sum((jnp.mean(features(jnp.asarray(batch["image"][0])), 0)
                    - jnp.mean(features(fake), 0)) ** 2)

  value, grads = jax.value_and_grad(fm_loss)(before.params["generator"])
  np.testing.assert_allclose(metrics["feature_matching"], value, rtol=1e-4)
  np.testing.assert_allclose(metrics["g_loss"], value, rtol=1e-4)  # adversarial_weight 0
  np.testing.assert_allclose(metrics["g_grad_norm"],
                             np.sqrt(sum(np.sum(g ** 2) for g in jax.tree.leaves(grads))),
                             rtol=1e-3)


# ----------------------------------------------------------------------------
# The options together on 1 device and on 8: the global-batch statistics.


def test_toolkit_options_agree_on_one_and_eight_devices():
  config = tiny_cgan(conditioning="projection", feature_matching=0.5, minibatch_stddev=2,
                     ema_decay=0.9, batch_size=16)
  _, one, one_metrics, _ = one_step(config, jax.devices()[:1])
  _, eight, eight_metrics, _ = one_step(config, jax.devices())
  for key in one_metrics:
    np.testing.assert_allclose(one_metrics[key], eight_metrics[key], rtol=2e-4, atol=1e-5,
                               err_msg=key)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


# ----------------------------------------------------------------------------
# EMA of the generator.


def test_ema_update_arithmetic_and_sampling():
  config = tiny_config(ema_decay=0.9)
  before, after, _, _ = one_step(config, jax.devices()[:1])
  for e0, p1, e1 in zip(jax.tree.leaves(before.ema), jax.tree.leaves(after.params["generator"]),
                        jax.tree.leaves(after.ema)):
    np.testing.assert_allclose(e1, 0.9 * e0 + 0.1 * p1, rtol=1e-6, atol=1e-7)
  # Samples come from the EMA weights with their own (standing) statistics, not the raw
  # weights and not the raw weights' running statistics.
  z = gan.latent(config, jax.random.PRNGKey(3), 4)
  generator, _ = gan.models(config, axis_name=None)
  standing = gan.standing_statistics(config, after.ema)
  from_ema = generator.apply({"params": after.ema, "batch_stats": standing}, z, train=False)
  np.testing.assert_allclose(gan.sample(config, after, z), from_ema, rtol=1e-6, atol=1e-7)
  running = after.batch_stats["generator"]
  raw = generator.apply({"params": after.params["generator"], "batch_stats": running}, z,
                        train=False)
  assert np.max(np.abs(raw - from_ema)) > 1e-6
  with_running = generator.apply({"params": after.ema, "batch_stats": running}, z, train=False)
  assert np.max(np.abs(with_running - from_ema)) > 1e-3
  # The same state samples alike every time: the statistics' noise has a fixed key.
  np.testing.assert_array_equal(gan.sample(config, after, z), gan.sample(config, after, z))
  # Evaluation and `ganjax sample` draw through evaluation.suite.generate: the same.
  from ganjax.evaluation import suite  # pylint: disable=g-import-not-at-top
  drawn = suite.generate(config, after, 6, jax.random.PRNGKey(4), batch_size=4)
  want = generator.apply({"params": after.ema, "batch_stats": standing},
                         gan.latent(config, jax.random.PRNGKey(4), 6), train=False)
  np.testing.assert_allclose(drawn, want, rtol=1e-6, atol=1e-6)
  assert jax.device_get(gan.init(tiny_config(), jax.random.PRNGKey(0),
                                 train.example_batch(tiny_config()))).ema == {}


def hand_standing_statistics(config, params):
  """The standing statistics of the 2D-mixture MLP generator, in NumPy float64: each
  Dense -> BatchNorm (batch statistics) -> ReLU layer written out, batch by batch."""
  z = np.asarray(gan.latent(config, jax.random.PRNGKey(gan.STANDING_SEED),
                            gan.STANDING_BATCHES * config.batch_size), np.float64)
  per_batch = []
  for x in z.reshape(gan.STANDING_BATCHES, config.batch_size, -1):
    stats = {}
    for i in range(config.g_depth):
      dense, norm = params[f"Dense_{i}"], params[f"BatchNorm_{i}"]
      h = x @ np.asarray(dense["kernel"], np.float64) + np.asarray(dense["bias"], np.float64)
      mean, var = h.mean(0), h.var(0)
      stats[f"BatchNorm_{i}"] = {"mean": mean, "var": var}
      x = np.maximum((h - mean) / np.sqrt(var + 1e-5) * np.asarray(norm["scale"], np.float64)
                     + np.asarray(norm["bias"], np.float64), 0.0)
    per_batch.append(stats)
  return jax.tree.map(lambda *xs: np.mean(xs, axis=0), *per_batch)


def test_ema_generator_samples_with_statistics_of_its_own_weights():
  config = experiment_config("toy_ring")
  config.update(g_width=16, d_width=16, g_depth=2, batch_size=32, ema_decay=0.999)
  state = jax.device_get(gan.init(config, jax.random.PRNGKey(0), train.example_batch(config)))
  # EMA weights unlike the live ones (another initialisation), so that statistics
  # computed with the wrong weights cannot pass.
  other = jax.device_get(gan.init(config, jax.random.PRNGKey(1), train.example_batch(config)))
  state = state.replace(ema=other.params["generator"])
  used = jax.jit(lambda s: gan.sampling_variables(config, s))(state)
  for a, b in zip(jax.tree.leaves(used["params"]), jax.tree.leaves(state.ema)):
    np.testing.assert_array_equal(a, b)
  own = hand_standing_statistics(config, state.ema)
  live = hand_standing_statistics(config, state.params["generator"])
  # float32 against float64 over a batch of 32 and 2 layers: about 1e-6 of the scale.
  for (path, got), want, wrong in zip(jax.tree_util.tree_leaves_with_path(used["batch_stats"]),
                                      jax.tree.leaves(own), jax.tree.leaves(live)):
    scale = np.max(np.abs(want))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * scale,
                               err_msg=jax.tree_util.keystr(path))
    assert np.max(np.abs(wrong - want)) > 1e-2 * scale  # the live weights' are far off


def test_standing_statistics_of_a_conditional_dcgan_are_flax_batch_statistics():
  """DCGAN with labels: each batch's statistics as Flax's BatchNorm computes them (from
  zero running statistics, one update with the models' momentum 0.9 leaves 0.1 times the
  batch's), averaged over the batches of fixed noise and labels cycling through the
  classes."""
  config = tiny_cgan(image_size=8, batch_size=20, ema_decay=0.5)
  state = jax.device_get(gan.init(config, jax.random.PRNGKey(0), train.example_batch(config)))
  generator, _ = gan.models(config, axis_name=None)
  n = config.batch_size
  z = gan.latent(config, jax.random.PRNGKey(gan.STANDING_SEED), gan.STANDING_BATCHES * n)
  labels = np.arange(gan.STANDING_BATCHES * n) % config.num_classes
  zero = jax.tree.map(np.zeros_like, state.batch_stats["generator"])
  per_batch = [generator.apply({"params": state.ema, "batch_stats": zero}, z[i * n:(i + 1) * n],
                               labels[i * n:(i + 1) * n], train=True,
                               mutable=["batch_stats"])[1]["batch_stats"]
               for i in range(gan.STANDING_BATCHES)]
  want = jax.tree.map(lambda *xs: np.mean(xs, axis=0) / (1 - 0.9), *per_batch)
  got = jax.jit(lambda p: gan.standing_statistics(config, p))(state.ema)
  for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.max(np.abs(b)))


def test_ema_with_a_decay_near_zero_samples_as_the_live_generator_with_standing_statistics():
  config = tiny_config(ema_decay=1e-6)
  _, after, _, _ = one_step(config, jax.devices()[:1])
  generator, _ = gan.models(config, axis_name=None)
  live = after.params["generator"]
  z = gan.latent(config, jax.random.PRNGKey(3), 8)
  want = generator.apply({"params": live, "batch_stats": gan.standing_statistics(config, live)},
                         z, train=False)
  got = gan.sample(config, after, z)
  # ema = 1e-6 * init + (1 - 1e-6) * params: weights within about 1e-6 of the live ones.
  np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
  running = generator.apply({"params": live, "batch_stats": after.batch_stats["generator"]}, z,
                            train=False)
  assert np.max(np.abs(running - want)) > 1e-2  # the running statistics are another thing


# ----------------------------------------------------------------------------
# The classic options.


def test_uniform_noise_and_label_smoothing():
  z = gan.latent(tiny_config(noise="uniform"), jax.random.PRNGKey(0), 1000)
  assert -1.0 <= float(z.min()) < -0.99 and 0.99 < float(z.max()) <= 1.0
  smooth = one_step(tiny_config(real_label=0.9), jax.devices()[:1])[2]
  plain = one_step(tiny_config(), jax.devices()[:1])[2]
  # Same network and batch: the discriminator loss differs only by the real target.
  assert smooth["d_loss"] != plain["d_loss"]
  np.testing.assert_allclose(smooth["d_real"], plain["d_real"], rtol=1e-6)


def test_separate_batches_change_the_batchnorm_statistics():
  apart = one_step(tiny_config(), jax.devices()[:1])[1]
  together = one_step(tiny_config(separate_batches=False), jax.devices()[:1])[1]
  diffs = [np.max(np.abs(a - b)) for a, b in zip(
      jax.tree.leaves(apart.batch_stats["discriminator"]),
      jax.tree.leaves(together.batch_stats["discriminator"]))]
  assert max(diffs) > 1e-4


@pytest.mark.parametrize("overrides,message", [
    (dict(ema_decay=1.0), "ema_decay=1.0 must be in"),
    (dict(adversarial_weight=0.0), "leave the generator no loss"),
    (dict(minibatch_stddev=4, batch_size=48), "per-device batch of 6 does not split into"),
    (dict(minibatch_stddev=4, batch_size=16),
     "minibatch_stddev=4: a group larger than the per-device batch of 2 shrinks to it, so"
     " the result would depend on the device count; set --config.minibatch_stddev to at"
     " most 2"),
    (dict(minibatch_stddev=2, gp_weight=10.0, d_norm="layer", loss="wasserstein"),
     "minibatch_stddev=2 with gp_weight=10.0: the gradient penalty needs each example's own"
     " discriminator gradient, which the minibatch standard deviation mixes across its group; set"
     " --config.minibatch_stddev=0"),
    (dict(num_classes=10, architecture="mlp", g_norm="none"), "class conditioning is built"),
])
def test_toolkit_config_errors(overrides, message):
  with pytest.raises(GanjaxError, match=message):
    gan.validate(tiny_config(**overrides))
