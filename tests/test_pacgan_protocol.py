"""The pieces of PacGAN's 2D protocol (experiments/toy_*.py:pacgan_paper).

- maxout units (models/mlp.Maxout) against a direct NumPy maximum over pieces;
- init_std: N(0, std) weights and zero biases; no hidden biases in the generator;
- simultaneous_updates: the generator's step is the one it takes against a
  discriminator that does not move (d_lr = 0) in the alternating order, and the
  discriminator's step is the alternating one;
- toy_points: a training set drawn once per seed, read as a pure function of (seed, step);
- the preset's values, and one short 2-seed run of it with packing.

Tolerances. The comparisons of simultaneous and alternating steps run the same float32
networks on the same inputs in two XLA programs, which may sum in other orders:
helpers.float32_tolerance of the longest sums (a layer's width, the batch mean), on
parameters of order 1 after one Adam step.
"""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import algorithms, data, parallel
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from ganjax.evaluation import toy
from ganjax.models import mlp
from tests import test_pack
from tests.helpers import experiment_config, float32_tolerance


def small(preset="pacgan_paper", mixture="ring", **overrides):
  config = experiment_config(f"toy_{mixture}", preset)
  config.update(dict(g_width=16, d_width=8, batch_size=8, num_seeds=1, toy_points=64))
  config.update(overrides)
  gan.validate(config)
  return config


def test_maxout_is_the_maximum_over_each_units_pieces():
  x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
  layer = mlp.Maxout(4, pieces=3)
  variables = layer.init(jax.random.PRNGKey(1), x)
  kernel = np.asarray(variables["params"]["Dense_0"]["kernel"], np.float64)
  bias = np.random.default_rng(2).normal(size=12)
  variables = {"params": {"Dense_0": {"kernel": kernel, "bias": bias}}}
  got = np.asarray(layer.apply(variables, x))
  affine = x.astype(np.float64) @ kernel + bias  # [5, 12], unit j's pieces 3j .. 3j + 2
  expected = np.stack([affine[:, 3 * j:3 * j + 3].max(axis=1) for j in range(4)], axis=1)
  assert got.shape == (5, 4)
  np.testing.assert_allclose(got, expected, rtol=0, atol=float32_tolerance(3, 10.0))
  # Grouped the other way (pieces strided) the result differs: the check sees the layout.
  strided = np.stack([affine[:, j::4].max(axis=1) for j in range(4)], axis=1)
  assert np.abs(strided - expected).max() > 0.1


def test_the_protocol_networks_have_pacgans_shapes_and_initialisation():
  config = experiment_config("toy_grid", "pacgan_paper")
  generator, discriminator = gan.models(config, axis_name=None)
  g = generator.init(jax.random.PRNGKey(0), jnp.zeros((2, 2)), train=False)
  d = discriminator.init(jax.random.PRNGKey(1), jnp.zeros((2, 2 * 3)), train=False)
  gp, dp = g["params"], d["params"]
  # Generator: four bias-free 400-unit layers with BatchNorm, a linear output with a bias.
  assert [gp[f"Dense_{i}"]["kernel"].shape for i in range(5)] == [
      (2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
  assert all("bias" not in gp[f"Dense_{i}"] for i in range(4)) and "bias" in gp["Dense_4"]
  assert set(g["batch_stats"]) == {f"BatchNorm_{i}" for i in range(4)}
  # Discriminator: three maxout layers of 200 units x 5 pieces, one linear output.
  assert [dp[f"Maxout_{i}"]["Dense_0"]["kernel"].shape for i in range(3)] == [
      (6, 1000), (200, 1000), (200, 1000)]
  assert dp["Dense_0"]["kernel"].shape == (200, 1)
  kernels = [k for k in jax.tree.leaves({"g": gp, "d": dp}) if k.ndim == 2]
  weights = np.concatenate([np.asarray(k).ravel() for k in kernels])
  # N(0, 0.02): the sample std of ~1.2M draws is within 1% of 0.02; LeCun normal (Flax's
  # default) would give 1/sqrt(fan_in), 0.05 to 0.7 here.
  assert abs(weights.std() / 0.02 - 1) < 0.01 and abs(weights.mean()) < 1e-4
  biases = [b for path, b in jax.tree_util.tree_leaves_with_path({"g": gp, "d": dp})
            if "bias" in jax.tree_util.keystr(path) and "BatchNorm" not in
            jax.tree_util.keystr(path)]
  assert biases and all(np.all(np.asarray(b) == 0) for b in biases)


def test_the_preset_is_pacgans_released_configuration():
  for mixture in ("ring", "grid"):
    c = experiment_config(f"toy_{mixture}", "pacgan_paper")
    gan.validate(c)
    assert (c.batch_size, c.toy_points, c.num_train_steps, c.num_seeds) == (
        100, 100_000, 400_000, 10)
    # 400 epochs of 100,000 inputs at batch 100.
    assert c.num_train_steps == 400 * c.toy_points // c.batch_size
    assert (c.g_lr, c.d_lr, c.beta1, c.beta2, c.lr_decay_start) == (1e-4, 1e-4, 0.2, 0.999, 1.0)
    assert (c.g_width, c.g_depth, c.g_hidden_bias, c.bn_momentum) == (400, 4, False, 0.95)
    assert (c.d_width, c.d_depth, c.maxout_pieces, c.init_std) == (200, 3, 5, 0.02)
    assert (c.latent_dim, c.noise, c.loss, c.simultaneous_updates) == (
        2, "normal", "non_saturating", True)
    assert (c.num_samples, c.n_critic, c.pack) == (2500, 1, 1)


def one_step(config, state=None):
  mesh = parallel.make_mesh(jax.devices()[:1])
  step = parallel.data_parallel(
      functools.partial(algorithms.get(config.algorithm).train_step, config), mesh,
      batch_axis=1, donate=False)
  state = state if state is not None else test_pack.initial(config)
  batch = next(data.make_batches(config))
  new_state, _ = step(parallel.replicate(state, mesh),
                      parallel.shard_batch(batch, mesh, batch_axis=1))
  return state, jax.device_get(new_state)


def assert_close(a, b, tol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=tol)


@pytest.mark.parametrize("pack", [1, 2])
def test_simultaneous_updates_score_the_generator_against_the_discriminator_before_its_step(
    pack):
  lr = 0.01
  simultaneous = small(pack=pack, simultaneous_updates=True, g_lr=lr, d_lr=lr)
  alternating = small(pack=pack, simultaneous_updates=False, g_lr=lr, d_lr=lr)
  frozen = small(pack=pack, simultaneous_updates=False, g_lr=lr, d_lr=0.0)
  state0, sim = one_step(simultaneous)
  _, alt = one_step(alternating, state0)
  _, still = one_step(frozen, state0)
  # Adam's first step is lr * g / (|g| + eps): rounding moves it by about lr times the
  # gradient's relative rounding, which the float32 tolerance bounds.
  tol = float32_tolerance(simultaneous.g_width + simultaneous.batch_size * pack, 1.0)
  # The discriminator takes the same step in both orders.
  assert_close(sim.params["discriminator"], alt.params["discriminator"], tol)
  # The generator's step is the one against the discriminator the step started from.
  assert_close(sim.params["generator"], still.params["generator"], tol)
  # ... which is not the alternating one: the check tells the two orders apart.
  moved = max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(
      jax.tree.leaves(sim.params["generator"]), jax.tree.leaves(alt.params["generator"])))
  print(f"\npack {pack}: the generator's steps in the two orders differ by up to {moved:.3g}")
  assert moved > 0.1 * lr > 100 * tol


def test_toy_points_is_a_set_drawn_once_per_seed_and_read_by_step():
  config = small(toy_points=50, batch_size=8, pack=2)
  seen = []
  batches = data.make_batches(config)
  for _ in range(10):  # 160 samples: more than three epochs of the 50 points
    seen.append(next(batches)["image"][0])
  seen = np.concatenate(seen)
  points = np.unique(seen, axis=0)
  assert len(points) == 50  # every point of the set, and no other
  expected, _ = toy.sample("ring", np.random.default_rng([config.seed, data.toy.SET_STREAM]), 50)
  np.testing.assert_array_equal(np.unique(expected.astype(np.float32), axis=0), points)
  # Batch t is a pure function of (seed, t): a resumed run reads what it would have read.
  resumed = next(data.make_batches(config, start_step=7))["image"][0]
  np.testing.assert_array_equal(resumed, seen[7 * 16:8 * 16])
  # Another seed, another set.
  other = next(data.make_batches(small(toy_points=50, batch_size=8, pack=2, seed=1)))["image"]
  assert not np.isin(other[0][:, 0], points[:, 0]).any()


@pytest.mark.parametrize("overrides, match", [
    (dict(architecture="dcgan", dataset="bundled:mnist", channels=1, toy_points=0,
          image_size=32), "maxout_pieces=5.*architecture='mlp'"),
    (dict(simultaneous_updates=True, n_critic=5), "simultaneous_updates with n_critic=5"),
    (dict(bn_momentum=1.0), "bn_momentum=1.0"),
    (dict(maxout_pieces=-1), "maxout_pieces=-1"),
])
def test_bad_protocol_keys_get_one_clear_error(overrides, match):
  config = experiment_config("toy_ring", "pacgan_paper")
  config.update(overrides)
  with pytest.raises(GanjaxError, match=match):
    gan.validate(config)


def test_toy_points_outside_a_mixture_is_refused():
  config = experiment_config("gan")
  config.toy_points = 100
  with pytest.raises(GanjaxError, match="toy_points=100 is for the toy: mixtures"):
    data.check_source(config)
  config = small(toy_points=-3)
  with pytest.raises(GanjaxError, match="toy_points=-3"):
    data.check_source(config)


def test_the_protocol_trains_two_packed_seeds_end_to_end(tmp_path):
  from ganjax import train  # pylint: disable=g-import-not-at-top
  config = small(mixture="grid", pack=3, num_seeds=2, num_train_steps=4, log_every=2,
                 sample_every=4, checkpoint_every=2, eval_every=4, num_samples=100)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert int(np.asarray(state.step).ravel()[0]) == 4
  with open(tmp_path / "metrics.jsonl", encoding="utf-8") as f:
    records = [json.loads(line) for line in f]
  scored = [r for r in records if "eval/modes_captured" in r]
  assert scored and scored[-1]["step"] == 4 and 0 <= scored[-1]["eval/modes_captured"] <= 25
  with open(tmp_path / "best.json", encoding="utf-8") as f:
    best = json.load(f)["metrics"]
  assert len(best["modes_captured_per_seed"]) == 2
  assert np.mean(best["modes_captured_per_seed"]) == pytest.approx(best["modes_captured"])
