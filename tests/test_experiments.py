"""Experiment files: presets resolve to what their docstrings promise, and the tfds path trains."""

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

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


TINY_IMAGES = dict(g_width=8, d_width=8, latent_dim=16, label_dim=8, batch_size=16,
                   num_samples=20)
# lr_decay_start 1: the resumed run below is longer than its first part, and a decaying
# schedule depends on the run's length (test_lr_schedule resumes a decaying run).
TINY_POINTS = dict(g_width=16, d_width=16, batch_size=16, num_samples=100, lr_decay_start=1.0)


@pytest.mark.parametrize("name,preset,overrides", [
    ("cgan", None, TINY_IMAGES),
    ("cgan", "wgan_gp,projection", {**TINY_IMAGES, "n_critic": 2}),
    ("toy_ring", None, TINY_POINTS),
    ("toy_grid", "wgan_gp", {**TINY_POINTS, "n_critic": 2}),
])
def test_experiment_trains_and_resumes(tmp_path, name, preset, overrides):
  def config(steps):
    c = experiment_config(name, preset)
    c.update({**overrides, "num_train_steps": steps, "log_every": 1, "sample_every": 2,
              "checkpoint_every": 1})
    return c

  workdir = tmp_path / "run"
  state = train.train_and_evaluate(config(2), str(workdir))
  assert int(jax.device_get(state.step)) == 2
  figure = np.asarray(Image.open(workdir / "samples" / "step_2.png"))
  if name == "cgan":  # one row of 2 samples per class
    assert figure.shape == (10 * 34 + 2, 2 * 34 + 2)
  else:  # a scatter plot over the mixture's means
    assert figure.shape == (512, 512, 3)
  resumed = train.train_and_evaluate(config(3), str(workdir))
  straight = train.train_and_evaluate(config(3), str(tmp_path / "straight"))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed)),
                  jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(a, b)


def test_new_experiment_presets():
  cgan = experiment_config("cgan")
  assert (cgan.num_classes, cgan.conditioning, cgan.dataset) == (10, "concat", "bundled:mnist")
  both = experiment_config("cgan", "cifar10,wgan_gp")
  assert (both.dataset, both.channels, both.algorithm, both.gp_weight, both.d_norm) == (
      "tfds:cifar10", 3, "wgan_gp", 10.0, "layer")
  assert experiment_config("cgan", "projection").conditioning == "projection"
  with pytest.raises(ValueError, match="no preset 'wgan'"):
    experiment_config("cgan", "wgan")
  ring, grid = experiment_config("toy_ring"), experiment_config("toy_grid", "wgan_gp")
  assert (ring.dataset, ring.architecture, ring.channels, ring.num_samples) == (
      "toy:ring", "mlp", 2, 2500)
  assert (grid.dataset, grid.algorithm, grid.gp_weight, grid.g_norm) == (
      "toy:grid", "wgan_gp", 1.0, "none")
