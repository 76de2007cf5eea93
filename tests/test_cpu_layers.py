"""ganjax/cpu_layers.py: every CPU form computes what the stock Flax layers compute.

Each form sums the same products as `flax.linen.Conv` / `ConvTranspose` (or lax) in
another order, so the comparisons use `helpers.float32_tolerance`: a bound on the
rounding of a float32 sum of that many terms, which holds on any CPU.
"""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import backend, cpu_layers
from ganjax.cpu_layers import Rules
from ganjax.models import Layers, cyclegan, dcgan
from tests.helpers import float32_tolerance

LOOP = Rules(in_loop=True)


def _close(got, want, terms, err_msg=""):
  want = np.asarray(want)
  scale = float(np.max(np.abs(want))) if want.size else 0.0
  np.testing.assert_allclose(got, want, rtol=0, atol=float32_tolerance(terms, scale) + 1e-30,
                             err_msg=err_msg)


def _lax_conv(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


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
@pytest.mark.parametrize("features", [7, 2])  # 2: few outputs, by overlap-add
def test_conv_transpose_matches_flax(in_size, strides, padding, kernel, features):
  # Batch 2 takes matrix-product phases, batch 8 (the DCGAN case) native ones.
  batch = 8 if padding == ((2, 2), (2, 2)) else 2
  x = jax.random.normal(jax.random.PRNGKey(0), (batch, in_size, in_size, 5))
  ref = nn.ConvTranspose(features, (kernel, kernel), strides=strides, padding=padding)
  ours = cpu_layers.ConvTranspose(features, (kernel, kernel), strides=strides, padding=padding)
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
  _close(got, want, kernel * kernel * 5)
  want_grads = jax.grad(loss(ref), argnums=(0, 1))(variables, x)
  got_grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  # A gradient sums products whose factors carry the forward pass's rounding: the
  # bound adds the forward sums' length to the longest backward one (the kernel's).
  terms = kernel * kernel * 5 + batch * (in_size * max(strides) + kernel) ** 2
  for a, b in zip(jax.tree.leaves(got_grads), jax.tree.leaves(want_grads)):
    _close(a, b, terms)


def _conv_lines(fn, *args):
  return [line for line in jax.jit(fn).lower(*args).as_text().splitlines()
          if "stablehlo.convolution" in line]


def test_matrix_product_forms_of_transposed_convolutions():
  """A transposed convolution of one input pixel (DCGAN's latent) and one to few output
  channels (an image layer) are matrix products, forwards and backwards."""
  for x, kernel, strides, padding in [
      (jnp.ones((2, 1, 1, 8)), jnp.ones((4, 4, 8, 16)), (1, 1), "VALID"),
      (jnp.ones((2, 6, 6, 8)), jnp.ones((4, 4, 8, 3)), (2, 2), ((2, 2), (2, 2)))]:
    def loss(x, k):
      return jnp.sum(jnp.sin(cpu_layers.conv_transpose(x, k, strides, padding)))
    assert _conv_lines(jax.grad(loss, argnums=(0, 1)), x, kernel) == []
  # Many outputs from many inputs over a large batch: stride-1 convolutions, one per phase.
  assert len(_conv_lines(lambda x, k: cpu_layers.conv_transpose(x, k, (2, 2), ((2, 2), (2, 2))),
                         jnp.ones((8, 6, 6, 8)), jnp.ones((4, 4, 8, 8)))) == 4


def test_strided_input_gradient_has_no_dilated_convolution():
  """The input gradient of a native strided convolution is computed by phases: no
  convolution of the s-dilated output gradient, whose zeros XLA:CPU multiplies."""
  x, kernel = jnp.ones((8, 16, 16, 8)), jnp.ones((4, 4, 8, 16))

  def loss(conv):
    return lambda x, k: jnp.sum(jnp.sin(conv(x, k, (2, 2), ((1, 1), (1, 1)))))
  dilated = re.compile(r"lhs_dilate = \[(?!1, 1\])")
  assert any(dilated.search(line) for line in _conv_lines(jax.grad(loss(_lax_conv)), x, kernel))
  ours = _conv_lines(jax.grad(loss(cpu_layers.conv2d)), x, kernel)
  assert len(ours) == 1 + 4 and not any(dilated.search(line) for line in ours)


@pytest.mark.parametrize("in_size,kernel,strides,padding", [
    (32, 4, (2, 2), ((1, 1), (1, 1))),   # DCGAN discriminator
    (4, 4, (1, 1), "VALID"),            # its last layer
    (9, 3, (1, 1), "SAME"),
    (10, 3, (2, 1), ((0, 2), (1, -1))),  # uneven strides, negative padding crops
])
def test_loop_body_conv_is_matrix_products_and_matches_flax(in_size, kernel, strides, padding):
  """In a loop body every convolution is im2col (patches): no convolution is left."""
  x = jax.random.normal(jax.random.PRNGKey(0), (2, in_size, in_size, 3))
  ref = nn.Conv(5, (kernel, kernel), strides=strides, padding=padding)
  ours = cpu_layers.Conv(5, (kernel, kernel), strides=strides, padding=padding, rules=LOOP)
  variables = ref.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(
      lambda a: a + 0.1 * jax.random.normal(jax.random.PRNGKey(2), a.shape), variables)

  def loss(module):
    return lambda v, x: jnp.sum(jnp.cos(module.apply(v, x)))

  _close(ours.apply(variables, x), ref.apply(variables, x), kernel * kernel * 3)
  grads = jax.grad(loss(ours), argnums=(0, 1))(variables, x)
  lowered = jax.jit(ours.apply).lower(variables, x).as_text()
  assert "convolution" not in lowered and "dot_general" in lowered
  for a, b in zip(jax.tree.leaves(grads),
                  jax.tree.leaves(jax.grad(loss(ref), argnums=(0, 1))(variables, x))):
    _close(a, b, kernel * kernel * 3 + 2 * in_size * in_size)


@pytest.mark.parametrize("form", cpu_layers.FORMS)
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
  rules = Rules(forced=form)

  def grads(conv):
    loss = lambda x, k: jnp.sum(jnp.sin(conv(x, k, strides, padding)) * weights)  # noqa: E731
    first = jax.grad(loss, argnums=(0, 1))(x, kernel)
    penalty = lambda k: jnp.sum(jax.grad(loss)(x, k) ** 2)  # noqa: E731
    return first + (jax.grad(penalty)(kernel),)

  ours = lambda x, k, s, p: cpu_layers.conv2d(x, k, s, p, rules)  # noqa: E731
  got = jax.jit(ours, static_argnums=(2, 3))(x, kernel, strides, padding)
  lowered = jax.jit(ours, static_argnums=(2, 3)).lower(x, kernel, strides, padding).as_text()
  assert got.shape == want.shape
  taps = int(np.prod(kernel_shape[:3]))
  positions = int(np.prod(want.shape[:3]))
  _close(got, want, taps)
  # Gradients add the forward sums' rounding to their own (see the transposed case);
  # the gradient of a gradient norm goes through both twice.
  chains = (2 * taps, taps + positions, 2 * (taps + positions))
  for a, b, terms in zip(grads(ours), grads(_lax_conv), chains):
    _close(a, b, terms)
  assert ("convolution" in lowered) == (form == "native")


def test_shifted_sum_under_vmap():
  """A leading seed axis (vmap) sees the same values and gradients as a loop over it."""
  x = jax.random.normal(jax.random.PRNGKey(0), (3, 2, 9, 9, 6))
  kernel = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 5, 6, 2))
  rules = Rules(forced="shifted_sum")

  def loss(x, k):
    return jnp.sum(jnp.tanh(cpu_layers.conv2d(x, k, (1, 1), "SAME", rules)))

  got = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1))))(x, kernel)
  for i in range(3):
    want = jax.grad(lambda x, k: jnp.sum(jnp.tanh(_lax_conv(x, k, (1, 1), "SAME"))),
                    argnums=(0, 1))(x[i], kernel[i])
    for a, b, terms in zip(got, want, (5 * 5 * 6 + 5 * 5 * 2, 5 * 5 * 6 + 2 * 9 * 9)):
      _close(a[i], b, terms)


def test_rules_refuse_unknown_forms():
  with pytest.raises(ValueError, match="'winograd'"):
    Rules(forced="winograd")


def test_rules():
  rules = Rules()
  assert rules.form((7, 7, 3, 64), (1, 1), 1) == "patches"          # few inputs
  assert rules.form((4, 4, 1, 32), (2, 2), 64) == "patches"
  assert rules.form((7, 7, 64, 3), (1, 1), 1) == "shifted_sum"      # few outputs
  assert rules.form((4, 4, 512, 1), (1, 1), 64) == "shifted_sum"
  assert rules.form((2, 2, 32, 1), (1, 1), 64) == "native"          # too few taps
  assert rules.form((4, 4, 64, 1), (2, 2), 64) == "native"          # strided
  assert rules.form((3, 3, 256, 256), (1, 1), 64) == "native"       # a large batch
  assert rules.form((3, 3, 256, 256), (1, 1), 1) == "patches"       # batch 1
  assert rules.form((2, 2, 256, 128), (1, 1), 1) == "shifted_sum"   # batch 1, fewer outputs
  assert rules.form((3, 3, 64, 128), (2, 2), 1) == "patches"        # strided: no shifted sum
  assert LOOP.form((3, 3, 256, 256), (1, 1), 64) == "patches"
  assert LOOP.form((7, 7, 64, 3), (1, 1), 64) == "patches"
  assert Rules(forced="shifted_sum").form((3, 3, 64, 128), (2, 2), 64) == "patches"
  assert Rules(patches_batch=0).form((3, 3, 256, 256), (1, 1), 1) == "native"
  assert rules.transposed_form(64, 3) == "overlap_add"
  assert rules.transposed_form(64, 32) == "phases"
  assert Rules(forced="native").transposed_form(64, 3) == "phases"


def test_networks_built_with_cpu_layers_have_the_stock_parameters():
  """The CPU layers have the stock layers' parameter names, shapes and initial values, so a
  checkpoint of either restores into the other."""
  cpu = Layers(*cpu_layers.layers(Rules()))
  x = jnp.zeros((2, 32, 32, 3))
  z = jnp.zeros((2, 16))
  pairs = [
      (dcgan.Generator(image_size=32, channels=3, width=8), z,
       dict(conv_transpose=cpu.conv_transpose)),
      (dcgan.Discriminator(image_size=32, width=8), x, dict(conv=cpu.conv)),
      (cyclegan.ResnetGenerator(channels=3, width=4, num_blocks=1), x,
       dict(conv=cpu.conv, conv_transpose=cpu.conv_transpose)),
      (cyclegan.PatchDiscriminator(width=4), x, dict(conv=cpu.conv)),
  ]
  for stock, inputs, factories in pairs:
    ours = stock.clone(**factories)
    a = stock.init(jax.random.PRNGKey(0), inputs)
    b = ours.init(jax.random.PRNGKey(0), inputs)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
      assert u.shape == v.shape and u.dtype == v.dtype
      np.testing.assert_array_equal(u, v)


def test_resolved_cpu_backend_uses_the_cpu_forms():
  cpu = backend.resolve(jax.devices()[:1], "gan", environ={})
  assert cpu.platform == "cpu" and cpu.layers != cpu.loop_layers
  assert cpu.layers.conv.func is cpu_layers.Conv and cpu.layers.conv.keywords["rules"] == Rules()
  assert cpu.loop_layers.conv.keywords["rules"].in_loop
  assert cpu.unroll_d_updates(5) and not cpu.unroll_d_updates(100) and not cpu.unroll_d_updates(1)
  stock = backend.resolve(jax.devices()[:1], "gan", environ={"GANJAX_CPU_FORMS": "0"})
  assert stock.layers.conv is nn.Conv and stock.compiler_options == ()


def test_upsampling_avoids_input_dilated_convolutions():
  """CycleGAN's transposed convolution takes the phase form (ordinary stride-1
  convolutions), whose gradients XLA:CPU computes fast, not lax.conv_transpose's
  input-dilated convolution, in the forward pass and in both gradients."""
  up = cpu_layers.ConvTranspose(4, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                                rules=Rules(forced="native"))
  x = jnp.zeros((1, 8, 8, 5))
  variables = up.init(jax.random.PRNGKey(0), x)
  jaxpr = jax.make_jaxpr(jax.grad(lambda v, x: jnp.sum(up.apply(v, x)), argnums=(0, 1)))(
      variables, x)
  dilations = {tuple(eqn.params["lhs_dilation"]) for eqn in jaxpr.eqns
               if eqn.primitive.name == "conv_general_dilated"}
  assert dilations == {(1, 1)}


def test_cyclegan_generator_with_cpu_layers_matches_stock():
  """With the CPU layers at batch 1 the ResNet generator computes every convolution as
  matrix products; outputs and gradients equal the stock layers'."""
  stock = cyclegan.ResnetGenerator(channels=3, width=8, num_blocks=1)
  cpu = Layers(*cpu_layers.layers(Rules()))
  ours = stock.clone(conv=cpu.conv, conv_transpose=cpu.conv_transpose)
  x = jax.random.uniform(jax.random.PRNGKey(0), (1, 32, 32, 3), minval=-1.0, maxval=1.0)
  variables = stock.init(jax.random.PRNGKey(1), x)
  variables = jax.tree.map(lambda a: a + 0.05 * jax.random.normal(jax.random.PRNGKey(2),
                                                                   a.shape), variables)
  target = jax.random.uniform(jax.random.PRNGKey(3), x.shape, minval=-1.0, maxval=1.0)

  def run(g):
    loss = lambda v, x: jnp.mean(jnp.abs(g.apply(v, g.apply(v, x)) - target))  # noqa: E731
    fn = jax.jit(lambda v, x: (g.apply(v, x), jax.grad(loss, argnums=(0, 1))(v, x)))
    return fn(variables, x), fn.lower(variables, x).as_text()

  (out, grads), lowered = run(ours)
  (want, want_grads), native = run(stock)
  assert "convolution" not in lowered and "convolution" in native
  # Seven layers deep, instance norm between: each layer's rounding (<= 7*7*8 terms) is
  # carried through the next; the bound is the deepest sum times the depth.
  _close(out, want, 7 * 7 * 8 * 7)
  # Biases followed by instance norm have a gradient of 0 up to rounding: their tolerance
  # is relative to the largest gradient.
  largest = max(float(np.max(np.abs(b))) for b in jax.tree.leaves(want_grads))
  for a, b in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(
        a, b, rtol=0, atol=float32_tolerance(32 * 32 * 7, float(np.max(np.abs(b))))
        + float32_tolerance(32 * 32, largest))
