"""The CycleGAN networks (ganjax/models/cyclegan.py) against the reference's shapes and counts."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import cyclegan


def _shapes(module, x):
  """The parameter shapes of `module` on inputs like x, without computing anything."""
  variables = jax.eval_shape(module.init, jax.random.PRNGKey(0), x)
  return variables["params"]


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _kernel_shapes(tree):
  return sorted(tuple(leaf.shape) for path, leaf in jax.tree_util.tree_leaves_with_path(tree)
                if path[-1].key == "kernel")


def _reference_generator_layers(channels, width, blocks):
  """(kh, kw, in, out) of every convolution of the reference ResnetGenerator, in order."""
  convs = [(7, 7, channels, width), (3, 3, width, 2 * width), (3, 3, 2 * width, 4 * width)]
  convs += [(3, 3, 4 * width, 4 * width)] * (2 * blocks)
  convs += [(3, 3, 4 * width, 2 * width), (3, 3, 2 * width, width), (7, 7, width, channels)]
  return convs


def _reference_discriminator_layers(channels, width):
  return [(4, 4, channels, width), (4, 4, width, 2 * width), (4, 4, 2 * width, 4 * width),
          (4, 4, 4 * width, 8 * width), (4, 4, 8 * width, 1)]


def _params_with_bias(convs):
  return sum(kh * kw * cin * cout + cout for kh, kw, cin, cout in convs)


IMAGE_256 = jax.ShapeDtypeStruct((1, 256, 256, 3), jnp.float32)


def test_generator_parameters_match_the_reference():
  params = _shapes(cyclegan.ResnetGenerator(channels=3, width=64, num_blocks=9), IMAGE_256)
  assert _count(params) == 11_378_179  # the reference's printed count for resnet_9blocks
  assert _kernel_shapes(params) == sorted(_reference_generator_layers(3, 64, 9))
  # Every convolution has a bias (the reference: use_bias with instance norm).
  biases = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
            if path[-1].key == "bias"]
  assert len(biases) == len(_reference_generator_layers(3, 64, 9))


def test_six_block_generator_parameters():
  params = _shapes(cyclegan.ResnetGenerator(channels=3, width=64, num_blocks=6),
                   jax.ShapeDtypeStruct((1, 128, 128, 3), jnp.float32))
  per_block = 2 * (3 * 3 * 256 * 256 + 256)
  assert per_block == 1_180_160
  assert _count(params) == 11_378_179 - 3 * per_block == 7_837_699
  assert _count(params) == _params_with_bias(_reference_generator_layers(3, 64, 6))
  assert _kernel_shapes(params) == sorted(_reference_generator_layers(3, 64, 6))


def test_discriminator_parameters_match_the_reference():
  params = _shapes(cyclegan.PatchDiscriminator(width=64, num_layers=3), IMAGE_256)
  assert _count(params) == 2_764_737  # the reference's printed count for the basic netD
  assert _count(params) == _params_with_bias(_reference_discriminator_layers(3, 64))
  assert _kernel_shapes(params) == sorted(_reference_discriminator_layers(3, 64))


def test_parameter_count_does_not_depend_on_image_size():
  small = jax.ShapeDtypeStruct((2, 32, 32, 3), jnp.float32)
  assert _count(_shapes(cyclegan.ResnetGenerator(), small)) == 11_378_179
  assert _count(_shapes(cyclegan.PatchDiscriminator(), small)) == 2_764_737


@pytest.mark.parametrize("height,width", [(256, 256), (32, 48)])
def test_generator_keeps_the_image_shape(height, width):
  g = cyclegan.ResnetGenerator(channels=3, width=8, num_blocks=2)
  x = jax.ShapeDtypeStruct((2, height, width, 3), jnp.float32)
  variables = jax.eval_shape(g.init, jax.random.PRNGKey(0), x)
  out = jax.eval_shape(g.apply, variables, x)
  assert out.shape == (2, height, width, 3) and out.dtype == jnp.float32


@pytest.mark.parametrize("size,patches", [(256, 30), (128, 14), (70, 6), (32, 2)])
def test_discriminator_patch_grid(size, patches):
  d = cyclegan.PatchDiscriminator(width=8)
  x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  variables = jax.eval_shape(d.init, jax.random.PRNGKey(0), x)
  assert jax.eval_shape(d.apply, variables, x).shape == (2, patches, patches)


def test_patch_receptive_field_is_70():
  # Kernel 4 everywhere; strides 2, 2, 2, 1, 1 (num_layers=3): r <- r * s + (k - s).
  field = 1
  for stride in reversed((2, 2, 2, 1, 1)):
    field = field * stride + 4 - stride
  assert field == 70


def test_forward_passes():
  x = jax.random.uniform(jax.random.PRNGKey(0), (2, 32, 32, 3), minval=-1.0, maxval=1.0)
  g = cyclegan.ResnetGenerator(channels=3, width=8, num_blocks=2)
  g_vars = g.init(jax.random.PRNGKey(1), x)
  y = jax.jit(g.apply)(g_vars, x)
  assert y.shape == x.shape and y.dtype == jnp.float32
  assert np.all(np.isfinite(y)) and float(jnp.max(jnp.abs(y))) <= 1.0
  assert float(jnp.std(y)) > 0
  d = cyclegan.PatchDiscriminator(width=8)
  d_vars = d.init(jax.random.PRNGKey(2), x)
  logits = jax.jit(d.apply)(d_vars, y)
  assert logits.shape == (2, 2, 2) and np.all(np.isfinite(logits))


def test_initialisation():
  x = jnp.zeros((1, 32, 32, 3))
  params = cyclegan.ResnetGenerator(width=8, num_blocks=2).init(jax.random.PRNGKey(0), x)
  params = dict(params["params"])
  params.update({f"d_{k}": v for k, v in cyclegan.PatchDiscriminator(width=8).init(
      jax.random.PRNGKey(1), x)["params"].items()})
  kernels = biases = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    leaf = np.asarray(leaf)
    if path[-1].key == "bias":
      biases += 1
      assert not leaf.any(), path
    else:
      assert path[-1].key == "kernel", path
      kernels += 1
      if leaf.size >= 1000:
        assert abs(leaf.mean()) < 0.002 and abs(leaf.std() - 0.02) < 0.002, path
  assert kernels == biases == 1 + 2 + 2 * 2 + 2 + 1 + 5
  everything = np.concatenate([np.asarray(leaf).ravel()
                               for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                               if path[-1].key == "kernel"])
  assert abs(everything.std() - 0.02) < 5e-4


@pytest.mark.parametrize("p", [1, 3])
def test_reflect_pad_matches_numpy(p):
  x = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype(np.float32)
  want = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")
  np.testing.assert_array_equal(cyclegan.reflect_pad(jnp.asarray(x), p), want)


def test_reflect_pad_refuses_pads_as_large_as_the_image():
  with pytest.raises(ValueError, match="reflection padding of 3"):
    cyclegan.reflect_pad(jnp.zeros((1, 3, 8, 1)), 3)


def test_instance_norm_matches_numpy():
  rng = np.random.default_rng(0)
  x = (3.0 + 2.0 * rng.normal(size=(3, 6, 5, 4))).astype(np.float32)
  x[1, :, :, 2] = 7.0  # a constant channel: zero after normalisation, not NaN
  got = np.asarray(cyclegan.instance_norm(jnp.asarray(x)))
  want = np.empty_like(x, dtype=np.float64)
  for b in range(x.shape[0]):
    for c in range(x.shape[3]):
      plane = x[b, :, :, c].astype(np.float64)
      want[b, :, :, c] = (plane - plane.mean()) / np.sqrt(plane.var() + 1e-5)  # biased var
  varying = np.ones(x.shape, bool)
  varying[1, :, :, 2] = False
  np.testing.assert_allclose(got[varying], want[varying], rtol=1e-4, atol=1e-4)
  # The constant channel's float32 rounding of its mean is amplified by 1 / sqrt(eps).
  np.testing.assert_allclose(got[1, :, :, 2], 0.0, atol=1e-3)
  np.testing.assert_allclose(got.mean(axis=(1, 2)), 0.0, atol=1e-3)


@pytest.mark.parametrize("shape", [(1, 30, 30, 3), (1, 32, 30, 3), (1, 4, 4, 3)])
def test_generator_refuses_sizes_it_cannot_build(shape):
  g = cyclegan.ResnetGenerator(width=8, num_blocks=1)
  with pytest.raises(ValueError, match=f"image size {shape[1]}x{shape[2]}"):
    g.init(jax.random.PRNGKey(0), jnp.zeros(shape))


def test_generator_refuses_other_channel_counts():
  with pytest.raises(ValueError, match="3 channels got 1"):
    cyclegan.ResnetGenerator(width=8, num_blocks=1).init(
        jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 1)))


def test_discriminator_refuses_images_too_small_for_a_patch():
  with pytest.raises(ValueError, match="16x16"):
    cyclegan.PatchDiscriminator(width=8).init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)))


def _torch_conv_transpose(x, kernel, stride, padding, output_padding):
  """PyTorch's ConvTranspose2d (NHWC; kernel [kh, kw, in, out]) as scatter-add, in NumPy."""
  b, h, w, _ = x.shape
  kh, kw, _, cout = kernel.shape
  full = np.zeros((b, (h - 1) * stride + kh + output_padding,
                   (w - 1) * stride + kw + output_padding, cout))
  for i in range(h):
    for j in range(w):
      full[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum(
          "bc,hwco->bhwo", x[:, i, j], kernel)
  out_h = (h - 1) * stride - 2 * padding + kh + output_padding
  out_w = (w - 1) * stride - 2 * padding + kw + output_padding
  return full[:, padding:padding + out_h, padding:padding + out_w]


def test_upsampling_is_pytorch_conv_transpose_k3_s2_p1_op1():
  """The generator's ConvTranspose with pads (1, 2) is PyTorch's (k3, s2, p1,
  output_padding 1) with the kernel flipped: exactly 2x, the same values."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, 6, 6, 5))
  up = nn.ConvTranspose(features=4, kernel_size=(3, 3), strides=(2, 2), padding=((1, 2), (1, 2)))
  variables = up.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), variables)
  got = up.apply(variables, x)
  assert got.shape == (2, 12, 12, 4)  # exactly 2x
  kernel = np.asarray(variables["params"]["kernel"])[::-1, ::-1]
  want = _torch_conv_transpose(np.asarray(x, np.float64), kernel.astype(np.float64), 2, 1, 1)
  np.testing.assert_allclose(got, want + np.asarray(variables["params"]["bias"]),
                             rtol=1e-4, atol=1e-4)
