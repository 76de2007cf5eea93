"""DCGAN networks: the reference parameter counts, shapes and initialisation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import dcgan


def count(tree):
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def test_reference_dcgan_parameter_counts():
  # The PyTorch DCGAN tutorial network at 64x64x3, nz=100, ngf=ndf=64.
  g = dcgan.Generator(image_size=64, channels=3, width=64)
  d = dcgan.Discriminator(image_size=64, width=64)
  g_vars = g.init(jax.random.PRNGKey(0), jnp.zeros((2, 100)))
  d_vars = d.init(jax.random.PRNGKey(1), jnp.zeros((2, 64, 64, 3)))
  assert count(g_vars["params"]) == 3_576_704
  assert count(d_vars["params"]) == 2_765_568
  # Running statistics are state, not parameters: 2 x (512 + 256 + 128 + 64) and 2 x (128 + 256 + 512).
  assert count(g_vars["batch_stats"]) == 2 * (512 + 256 + 128 + 64)
  assert count(d_vars["batch_stats"]) == 2 * (128 + 256 + 512)


@pytest.mark.parametrize("size,channels", [(32, 1), (32, 3), (64, 3), (128, 3)])
def test_shapes_and_ranges(size, channels):
  g = dcgan.Generator(image_size=size, channels=channels, width=8)
  d = dcgan.Discriminator(image_size=size, width=8)
  z = jax.random.normal(jax.random.PRNGKey(0), (3, 16))
  g_vars = g.init(jax.random.PRNGKey(0), z)
  images, _ = g.apply(g_vars, z, mutable=["batch_stats"])
  assert images.shape == (3, size, size, channels)
  assert float(jnp.max(jnp.abs(images))) <= 1.0
  d_vars = d.init(jax.random.PRNGKey(1), images)
  logits, _ = d.apply(d_vars, images, mutable=["batch_stats"])
  assert logits.shape == (3,)


def test_initialisation_follows_dcgan():
  g = dcgan.Generator(image_size=64, channels=3, width=64)
  params = g.init(jax.random.PRNGKey(0), jnp.zeros((2, 100)))["params"]
  kernel = np.asarray(params["ConvTranspose_1"]["kernel"])
  scale = np.asarray(params["BatchNorm_1"]["scale"])
  assert abs(kernel.mean()) < 1e-3 and abs(kernel.std() - 0.02) < 1e-3
  assert abs(scale.mean() - 1.0) < 0.01 and abs(scale.std() - 0.02) < 0.005


@pytest.mark.parametrize("size", [0, 4, 48, 100])
def test_unbuildable_image_size_is_refused(size):
  with pytest.raises(ValueError, match=f"image_size={size}"):
    dcgan.num_stages(size)
