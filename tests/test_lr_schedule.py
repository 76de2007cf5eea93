"""The `lr_decay_start` learning-rate schedule of the GAN-family optimizers."""

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganjax import configs, train
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from tests.helpers import experiment_config


def toy_config(**overrides):
  config = experiment_config("toy_ring")
  config.update(overrides)
  return config


def test_the_default_is_a_constant_rate():
  config = experiment_config("gan")
  assert config.lr_decay_start == 1.0
  assert gan.learning_rate(config, 2e-4) == 2e-4


def test_the_rate_is_constant_then_falls_linearly_to_zero():
  config = toy_config(num_train_steps=10, lr_decay_start=0.6, n_critic=1)
  schedule = gan.learning_rate(config, 1e-3)
  values = [float(schedule(i)) for i in range(12)]
  np.testing.assert_allclose(values[:7], 1e-3, rtol=1e-6)       # steps 0..6: constant
  np.testing.assert_allclose(values[6:11], [1e-3, 7.5e-4, 5e-4, 2.5e-4, 0.0], atol=1e-9)
  assert values[11] == 0.0                                     # and stays at 0 past the end


def test_the_critic_schedule_counts_its_n_critic_updates_per_step():
  config = toy_config(num_train_steps=10, lr_decay_start=0.5, n_critic=5)
  generator = gan.learning_rate(config, 1e-3)
  critic = gan.learning_rate(config, 1e-3, config.n_critic)
  for step in (0, 5, 7, 10):
    np.testing.assert_allclose(float(critic(step * 5)), float(generator(step)), atol=1e-9)


def test_adam_makes_no_update_once_the_rate_reaches_zero():
  config = toy_config(num_train_steps=4, lr_decay_start=0.0, n_critic=1)
  tx = gan.optimizers(config)["generator"]
  params = {"w": jnp.ones(3)}
  state = tx.init(params)
  sizes = []
  for _ in range(5):
    updates, state = tx.update({"w": jnp.ones(3)}, state, params)
    sizes.append(float(optax.global_norm(updates)))
  assert sizes[0] > sizes[1] > sizes[2] > sizes[3] > 0.0
  assert sizes[4] == 0.0


def test_a_fraction_outside_zero_one_is_a_clear_error():
  with pytest.raises(GanjaxError, match="lr_decay_start=1.5"):
    gan.validate(toy_config(lr_decay_start=1.5))


def test_the_config_of_an_older_run_is_read_in_the_current_keys():
  assert configs.upgrade({"lr_decay": 0.25, "seed": 3}) == {"lr_decay_start": 0.75, "seed": 3}
  assert configs.upgrade({"lr_decay": 0.0}) == {"lr_decay_start": 1.0}
  assert configs.upgrade({"seed": 1}) == {"seed": 1}


def test_a_decaying_run_resumes_where_it_stopped(tmp_path):
  config = toy_config(g_width=16, d_width=16, batch_size=16, num_samples=100,
                      num_train_steps=4, lr_decay_start=0.5, log_every=1, sample_every=4,
                      checkpoint_every=1)
  straight = train.train_and_evaluate(config, str(tmp_path / "straight"))
  interrupted = tmp_path / "interrupted"
  train.train_and_evaluate(config, str(interrupted))
  shutil.rmtree(interrupted / "checkpoints" / "4")  # as if stopped after step 3
  resumed = train.train_and_evaluate(config, str(interrupted))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed)),
                  jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(a, b)
