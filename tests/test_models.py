"""DCGAN networks: the reference parameter counts, shapes, and the phase-form transposed conv."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.models import dcgan, layers


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


@pytest.mark.parametrize("in_size,strides,padding,kernel", [
    (8, (2, 2), ((2, 2), (2, 2)), 4),   # DCGAN: PyTorch k4 s2 p1
    (5, (2, 2), "SAME", 4),
    (5, (2, 2), "VALID", 4),
    (6, (3, 3), ((1, 2), (0, 3)), 6),   # odd pads, stride 3
    (7, (2, 2), ((1, 1), (2, 2)), 3),   # an odd output size: the lax.conv_transpose fallback
    (6, (2, 2), ((1, 2), (1, 2)), 3),   # CycleGAN: PyTorch k3 s2 p1 output_padding 1
    (1, (1, 1), "VALID", 4),            # DCGAN's first layer: 1x1 -> 4x4, a matrix product
    (1, (2, 2), ((3, 2), (1, 3)), 4),   # one pixel, cropped and padded
])
@pytest.mark.parametrize("features", [7, 2])  # 2: few outputs, by overlap-add on the CPU
def test_phase_conv_transpose_matches_flax(in_size, strides, padding, kernel, features):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, in_size, in_size, 5))
  ref = nn.ConvTranspose(features, (kernel, kernel), strides=strides, padding=padding)
  ours = layers.ConvTranspose(features, (kernel, kernel), strides=strides, padding=padding)
  variables = ref.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(  # a non-zero bias too
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), variables)
  assert jax.tree.map(jnp.shape, ours.init(jax.random.PRNGKey(1), x)) == jax.tree.map(
      jnp.shape, variables)

  def loss(module):
    return lambda v, x: jnp.sum(jnp.sin(module.apply(v, x)) * jnp.arange(float(features)))

  want = ref.apply(variables, x)
  got = ours.apply(variables, x)
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  want_grads = jax.grad(loss(ref), argnums=(0, 1))(variables, x)
  got_grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _conv_lines(fn, *args):
  return [line for line in jax.jit(fn).lower(*args).as_text().splitlines()
          if "stablehlo.convolution" in line]


def test_matrix_product_forms_of_transposed_convolutions():
  """On the CPU a transposed convolution of one input pixel (DCGAN's latent) and one to
  few output channels (an image layer) are matrix products, forwards and backwards."""
  assert jax.default_backend() == "cpu"
  for x, kernel, strides, padding in [
      (jnp.ones((2, 1, 1, 8)), jnp.ones((4, 4, 8, 16)), (1, 1), "VALID"),
      (jnp.ones((2, 6, 6, 8)), jnp.ones((4, 4, 8, 3)), (2, 2), ((2, 2), (2, 2)))]:
    def loss(x, k):
      return jnp.sum(jnp.sin(layers.conv_transpose(x, k, strides, padding)))
    assert _conv_lines(jax.grad(loss, argnums=(0, 1)), x, kernel) == []
  # Many outputs from many inputs: stride-1 convolutions, one per phase.
  assert len(_conv_lines(lambda x, k: layers.conv_transpose(x, k, (2, 2), ((2, 2), (2, 2))),
                         jnp.ones((2, 6, 6, 8)), jnp.ones((4, 4, 8, 8)))) == 4


def test_strided_input_gradient_has_no_dilated_convolution():
  """The input gradient of a native strided convolution is computed by phases on the CPU:
  no convolution of the s-dilated output gradient, whose zeros XLA:CPU multiplies."""
  x, kernel = jnp.ones((2, 16, 16, 8)), jnp.ones((4, 4, 8, 16))

  def loss(conv):
    return lambda x, k: jnp.sum(jnp.sin(conv(x, k, (2, 2), ((1, 1), (1, 1)))))
  dilated = re.compile(r"lhs_dilate = \[(?!1, 1\])")
  assert any(dilated.search(line) for line in _conv_lines(jax.grad(loss(_lax_conv)), x, kernel))
  ours = _conv_lines(jax.grad(loss(layers.conv2d)), x, kernel)
  assert len(ours) == 1 + 4 and not any(dilated.search(line) for line in ours)


@pytest.mark.parametrize("in_size,kernel,strides,padding", [
    (32, 4, (2, 2), ((1, 1), (1, 1))),   # DCGAN discriminator
    (4, 4, (1, 1), "VALID"),            # its last layer
    (9, 3, (1, 1), "SAME"),
    (10, 3, (2, 1), ((0, 2), (1, -1))),  # uneven strides, negative padding crops
])
def test_im2col_conv_matches_flax(in_size, kernel, strides, padding):
  x = jax.random.normal(jax.random.PRNGKey(0), (2, in_size, in_size, 3))
  ref = nn.Conv(5, (kernel, kernel), strides=strides, padding=padding)
  ours = layers.Conv(5, (kernel, kernel), strides=strides, padding=padding)
  variables = ref.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), variables)
  assert jax.default_backend() == "cpu"  # in a loop body: the im2col path is under test

  def loss(module):
    return lambda v, x: jnp.sum(jnp.cos(module.apply(v, x)))

  with layers.loop_body():
    np.testing.assert_allclose(ours.apply(variables, x), ref.apply(variables, x),
                               rtol=1e-5, atol=1e-5)
    grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
    lowered = jax.jit(ours.apply).lower(variables, x).as_text()
  assert "convolution" not in lowered and "dot_general" in lowered
  for a, b in zip(jax.tree.leaves(grads),
                  jax.tree.leaves(jax.grad(loss(ref), argnums=(0, 1))(variables, x))):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _lax_conv(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


@pytest.mark.parametrize("form", layers.FORMS)
@pytest.mark.parametrize("x_shape,kernel_shape,strides,padding", [
    ((2, 13, 11, 3), (7, 7, 3, 6), (1, 1), ((3, 3), (3, 3))),   # CycleGAN's input layer
    ((2, 13, 11, 6), (7, 7, 6, 3), (1, 1), ((3, 3), (3, 3))),   # its output layer
    ((2, 9, 9, 5), (3, 3, 5, 2), (1, 1), "SAME"),
    ((2, 10, 9, 4), (4, 3, 4, 1), (2, 1), ((0, 2), (1, -1))),   # strides, a crop
    ((3, 4, 4, 8), (4, 4, 8, 1), (1, 1), "VALID"),              # DCGAN's last layer
])
def test_conv_forms_match_lax(form, x_shape, kernel_shape, strides, padding):
  """Every form of conv2d gives lax.conv_general_dilated's outputs, gradients and the
  gradient of a gradient norm (WGAN-GP differentiates the critic twice)."""
  x = jax.random.normal(jax.random.PRNGKey(0), x_shape)
  kernel = jax.random.normal(jax.random.PRNGKey(1), kernel_shape)
  want = _lax_conv(x, kernel, strides, padding)
  weights = jax.random.normal(jax.random.PRNGKey(2), want.shape)

  def grads(conv):
    loss = lambda x, k: jnp.sum(jnp.sin(conv(x, k, strides, padding)) * weights)  # noqa: E731
    first = jax.grad(loss, argnums=(0, 1))(x, kernel)
    penalty = lambda k: jnp.sum(jax.grad(loss)(x, k) ** 2)  # noqa: E731
    return first + (jax.grad(penalty)(kernel),)
  grads = jax.jit(grads, static_argnums=0)

  # A new function for each form: jit's cache of traces does not see the context.
  conv = jax.jit(lambda x, k: layers.conv2d(x, k, strides, padding))
  with layers.conv_form(form):
    got = conv(x, kernel)
    got_grads = grads(lambda *args: layers.conv2d(*args))  # a new function: a new trace
    lowered = conv.lower(x, kernel).as_text()
  assert got.shape == want.shape
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(want))))
  for a, b in zip(got_grads, grads(_lax_conv)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.max(jnp.abs(b))))
  assert ("convolution" in lowered) == (form == "native")


def test_shifted_sum_under_vmap():
  """A leading seed axis (vmap) sees the same values and gradients as a loop over it."""
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 9, 9, 6))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 5, 6, 2))

  def loss(x, k):
    with layers.conv_form("shifted_sum"):
      return jnp.sum(jnp.tanh(layers.conv2d(x, k, (1, 1), "SAME")))

  got = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(x, kernel)
  for i in range(3):
    want = jax.grad(lambda x, k: jnp.sum(jnp.tanh(_lax_conv(x, k, (1, 1), "SAME"))),
                    argnums=(0, 1))(x[i], kernel[i])
    for a, b in zip(got, want):
      np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5)


def test_conv_form_refuses_unknown_forms():
  with pytest.raises(ValueError, match="'winograd'"):
    with layers.conv_form("winograd"):
      pass


def test_cpu_form_rules(monkeypatch):
  assert jax.default_backend() == "cpu"
  assert layers.cpu_form((7, 7, 3, 64), (1, 1)) == "patches"        # few inputs
  assert layers.cpu_form((4, 4, 1, 32), (2, 2)) == "patches"
  assert layers.cpu_form((7, 7, 64, 3), (1, 1)) == "shifted_sum"    # few outputs
  assert layers.cpu_form((4, 4, 512, 1), (1, 1), "patches") == "shifted_sum"
  assert layers.cpu_form((2, 2, 32, 1), (1, 1)) == "native"         # too few taps
  assert layers.cpu_form((4, 4, 64, 1), (2, 2)) == "native"         # strided
  assert layers.cpu_form((3, 3, 256, 256), (1, 1)) == "native"
  assert layers.cpu_form((3, 3, 256, 256), (1, 1), "patches") == "patches"
  assert layers.cpu_form((3, 3, 64, 128), (2, 2), "shifted_sum") == "patches"
  with layers.loop_body():
    assert layers.cpu_form((3, 3, 256, 256), (1, 1)) == "patches"
    assert layers.cpu_form((7, 7, 64, 3), (1, 1)) == "patches"
  with pytest.raises(ValueError, match="cpu_form='im2col'"):
    layers.cpu_form((3, 3, 8, 8), (1, 1), "im2col")
  # Accelerators keep their native convolutions whatever the layer prefers.
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert layers.cpu_form((7, 7, 64, 3), (1, 1), "patches") == "native"
  with layers.loop_body():
    assert layers.cpu_form((3, 3, 8, 8), (1, 1)) == "native"
  with layers.conv_form("patches"):
    assert layers.cpu_form((3, 3, 8, 8), (1, 1)) == "patches"
