"""Experiment files: presets resolve to what their docstrings promise, and the tfds path trains."""

import jax
import pytest
import tensorflow_datasets as tfds

from ganjax import train
from ganjax.algorithms import gan
from tests.helpers import experiment_config, tiny_config


def test_gan_presets():
  default = experiment_config("gan")
  assert (default.dataset, default.image_size, default.channels) == ("bundled:mnist", 32, 1)
  cifar = experiment_config("gan", "cifar10")
  assert (cifar.dataset, cifar.image_size, cifar.channels) == ("tfds:cifar10", 32, 3)
  celeba = experiment_config("gan", "celeba64")
  assert (celeba.dataset, celeba.image_size, celeba.channels) == ("tfds:celeb_a", 64, 3)
  for config in (cifar, celeba):
    assert (config.g_width, config.d_width, config.batch_size) == (64, 64, 128)
    assert (config.g_lr, config.beta1, config.loss) == (2e-4, 0.5, "non_saturating")
  with pytest.raises(ValueError, match="no preset 'mnist64'"):
    experiment_config("gan", "mnist64")


def test_celeba64_preset_is_the_reference_dcgan():
  config = experiment_config("gan", "celeba64")
  state = jax.eval_shape(lambda: gan.init(config, jax.random.PRNGKey(0),
                                          train.example_batch(config)))
  assert train.count_params(state.params["generator"]) == 3_576_704
  assert train.count_params(state.params["discriminator"]) == 2_765_568


def test_cifar10_preset_trains_on_mock_tfds(tmp_path):
  config = tiny_config(dataset="tfds:cifar10", channels=3, num_train_steps=2)
  with tfds.testing.mock_data(num_examples=64):
    state = train.train_and_evaluate(config, str(tmp_path / "run"))
  assert int(jax.device_get(state.step)) == 2
  assert (tmp_path / "run" / "samples" / "step_2.png").exists()
