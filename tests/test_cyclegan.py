"""CycleGAN: the history pool, the schedule, the losses of a step, training, resume, translate."""

import functools
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ganjax import data, losses, parallel, train
from ganjax.algorithms import cyclegan
from ganjax.errors import GanjaxError
from ganjax.cli.translate_cmd import translate_files
from tests.helpers import experiment_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny(**overrides):
  config = experiment_config("cyclegan")
  config.update(dict(g_width=4, d_width=4, num_blocks=1, batch_size=8, num_train_steps=2,
                     log_every=1, sample_every=2, checkpoint_every=1, num_samples=3,
                     pool_size=5))
  config.update(overrides)
  return config


# ----------------------------------------------------------------------------
# The history pool.


def test_pool_fills_first_then_swaps_half_the_time():
  images = jnp.arange(1.0, 4.0).reshape(3, 1, 1, 1)
  pool, count, out = cyclegan.pool_query(jnp.zeros((5, 1, 1, 1)), jnp.int32(0), images,
                                         jax.random.PRNGKey(0))
  np.testing.assert_array_equal(out, images)  # filling: every image is returned as it is
  np.testing.assert_array_equal(pool[:3, 0, 0, 0], [1, 2, 3])
  np.testing.assert_array_equal(pool[3:], 0)
  assert int(count) == 3

  pool, count, _ = cyclegan.pool_query(pool, count, jnp.array([4.0, 5.0]).reshape(2, 1, 1, 1),
                                       jax.random.PRNGKey(1))
  assert int(count) == 5 and sorted(np.asarray(pool).ravel()) == [1, 2, 3, 4, 5]

  # Full: each new image is swapped for a pooled one with probability 1/2.
  new = 100.0 + jnp.arange(2000.0).reshape(2000, 1, 1, 1)
  after, count2, out = cyclegan.pool_query(pool, count, new, jax.random.PRNGKey(2))
  assert after.shape == pool.shape and int(count2) == 5
  swapped = np.asarray(out).ravel() != np.asarray(new).ravel()
  assert 0.46 < swapped.mean() < 0.54
  # A returned pooled image is one that was in the pool: an old one or an earlier new one.
  returned = np.asarray(out).ravel()[swapped]
  assert np.all(np.isin(returned, np.concatenate([[1, 2, 3, 4, 5], np.asarray(new).ravel()])))
  assert np.all(returned < 100 + np.arange(2000)[swapped])  # never a later image
  again = cyclegan.pool_query(pool, count, new, jax.random.PRNGKey(2))
  for a, b in zip(jax.tree.leaves((after, count2, out)), jax.tree.leaves(again)):
    np.testing.assert_array_equal(a, b)  # deterministic under the key


def test_pool_size_zero_is_off():
  images = jnp.ones((2, 4, 4, 3))
  pool, count, out = cyclegan.pool_query(jnp.zeros((0, 4, 4, 3)), jnp.int32(0), images,
                                         jax.random.PRNGKey(0))
  assert pool.shape == (0, 4, 4, 3) and out is images and int(count) == 0


# ----------------------------------------------------------------------------
# The learning rate: constant for the first half, then linearly to zero.


def test_learning_rate_schedule():
  schedule = cyclegan.learning_rate(tiny(num_train_steps=200, lr=2e-4, lr_decay_start=0.5))
  for step, lr in [(0, 2e-4), (99, 2e-4), (100, 2e-4), (150, 1e-4), (190, 2e-5), (200, 0.0)]:
    np.testing.assert_allclose(float(schedule(step)), lr, rtol=1e-5, atol=1e-12)
  horse2zebra = experiment_config("cyclegan", "horse2zebra")
  assert horse2zebra.num_train_steps == 200 * 1334 and horse2zebra.lr_decay_start == 0.5


# ----------------------------------------------------------------------------
# One step's losses, written out by hand.


def test_step_losses_and_updates_match_a_hand_computation():
  config = tiny(batch_size=2, pool_size=0)
  mesh = parallel.make_mesh(jax.devices()[:1])
  batch = next(data.make_batches(config))
  state = jax.device_get(cyclegan.init(config, jax.random.PRNGKey(0),
                                       train.example_batch(config)))
  step = parallel.data_parallel(functools.partial(cyclegan.train_step, config), mesh,
                                batch_axis=1, donate=False)
  after, metrics = jax.device_get(step(parallel.replicate(state, mesh),
                                       parallel.shard_batch(batch, mesh, batch_axis=1)))
  generator, discriminator = cyclegan.models(config)
  a, b = jnp.asarray(batch["image_a"][0]), jnp.asarray(batch["image_b"][0])
  g = lambda name, p, x: generator.apply({"params": p[name]}, x)
  d = lambda name, p, x: discriminator.apply({"params": p[name]}, x)

  def g_loss(p):
    fake_b, fake_a = g("g_ab", p, a), g("g_ba", p, b)
    adversarial = (jnp.mean((d("d_b", state.params, fake_b) - 1) ** 2)
                   + jnp.mean((d("d_a", state.params, fake_a) - 1) ** 2))
    cycle = (jnp.mean(jnp.abs(g("g_ba", p, fake_b) - a))
             + jnp.mean(jnp.abs(g("g_ab", p, fake_a) - b)))
    identity = jnp.mean(jnp.abs(g("g_ab", p, b) - b)) + jnp.mean(jnp.abs(g("g_ba", p, a) - a))
    return adversarial + 10.0 * cycle + 5.0 * identity

  expected = g_loss(state.params)
  np.testing.assert_allclose(metrics["g_loss"], expected, rtol=1e-5)
  fake_b, fake_a = g("g_ab", state.params, a), g("g_ba", state.params, b)
  d_b = 0.5 * (jnp.mean((d("d_b", state.params, b) - 1) ** 2)
               + jnp.mean(d("d_b", state.params, fake_b) ** 2))
  d_a = 0.5 * (jnp.mean((d("d_a", state.params, a) - 1) ** 2)
               + jnp.mean(d("d_a", state.params, fake_a) ** 2))
  np.testing.assert_allclose(metrics["d_b"], d_b, rtol=1e-5)
  np.testing.assert_allclose(metrics["d_a"], d_a, rtol=1e-5)
  np.testing.assert_allclose(metrics["lr"], config.lr, rtol=1e-6)
  for name in ("g_ab", "g_ba", "d_a", "d_b"):  # each network took a step
    moved = [np.max(np.abs(x - y)) for x, y in zip(jax.tree.leaves(state.params[name]),
                                                  jax.tree.leaves(after.params[name]))]
    assert min(moved) > 0, name
  assert losses.l1(a, a) == 0


# ----------------------------------------------------------------------------
# Training on the offline digit pair, resume, translate.


def test_trains_resumes_and_translates(tmp_path):
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(tiny(), workdir)
  assert int(jax.device_get(state.step)) == 2
  grid = np.asarray(Image.open(os.path.join(workdir, "samples", "step_2.png")))
  assert grid.shape == (6 * 34 + 2, 3 * 34 + 2, 3)  # rows A, G(A), F(G(A)), B, F(B), G(F(B))
  resumed = train.train_and_evaluate(tiny(num_train_steps=3), workdir)
  straight = train.train_and_evaluate(tiny(num_train_steps=3), str(tmp_path / "straight"))
  for x, y in zip(jax.tree.leaves(jax.device_get(resumed)),
                  jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(x, y)  # pools and their count included

  inputs = tmp_path / "inputs"
  inputs.mkdir()
  rng = np.random.default_rng(0)
  Image.fromarray(rng.integers(0, 255, (32, 32, 3), np.uint8)).save(inputs / "one.png")
  Image.fromarray(rng.integers(0, 255, (30, 45, 3), np.uint8)).save(inputs / "two.jpg")
  written = translate_files(workdir, str(inputs), str(tmp_path / "out"), "BtoA")
  assert [os.path.basename(p) for p in written] == ["one.png", "two.png"]
  assert np.asarray(Image.open(written[0])).shape == (32, 32, 3)
  assert np.asarray(Image.open(written[1])).shape == (32, 44, 3)  # resized to divide by 4
  # The translation is the generator's output on the input.
  _, state, _ = __import__("ganjax.cli.translate_cmd").cli.translate_cmd.load_run(workdir)
  x = np.asarray(Image.open(inputs / "one.png"), np.float32)[None] / 127.5 - 1
  y = np.asarray(cyclegan.translate(tiny(num_train_steps=3), state, x, "BtoA"))[0]
  np.testing.assert_allclose(np.asarray(Image.open(written[0]), np.float32),
                             np.clip(np.rint((y + 1) * 127.5), 0, 255), atol=1)
  with pytest.raises(GanjaxError, match="exists; choose another --output or pass --overwrite"):
    translate_files(workdir, str(inputs), str(tmp_path / "out"))
  with pytest.raises(GanjaxError, match="would overwrite an input"):
    translate_files(workdir, str(inputs), str(inputs), overwrite=True)

  # The command line, as a user runs it.
  result = subprocess.run(
      [sys.executable, "-m", "ganjax", "translate", "--workdir", workdir, "--input",
       str(inputs / "two.jpg"), "--output", str(tmp_path / "cli")],
      capture_output=True, text=True, cwd=ROOT, check=False)
  assert result.returncode == 0, result.stderr
  assert "resized from 45x30 to 44x32" in result.stdout
  assert (tmp_path / "cli" / "two.png").exists()
  result = subprocess.run(
      [sys.executable, "-m", "ganjax", "translate", "--workdir", str(tmp_path), "--input",
       str(inputs), "--output", str(tmp_path / "x")],
      capture_output=True, text=True, cwd=ROOT, check=False)
  assert result.returncode == 1
  assert result.stderr.strip() == (f"ganjax: error: {tmp_path} has no config.json: is it the"
                                   " --workdir of a training run?")
