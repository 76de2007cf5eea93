"""CycleGAN generator and discriminator (Zhu, Park, Isola and Efros, 2017).

The networks as the authors' reference code builds them
(junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py: ResnetGenerator and
NLayerDiscriminator, with norm='instance' and init_type='normal'). NHWC, float32.

`ResnetGenerator` (Johnson et al. 2016's transformation network): a reflect-padded
7x7 convolution to `width` channels; two stride-2 3x3 convolutions, each halving the
resolution and doubling the channels; `num_blocks` residual blocks at 1/4 resolution
(x + [reflect pad 1, 3x3 conv, IN, ReLU, reflect pad 1, 3x3 conv, IN], no dropout);
two stride-2 3x3 transposed convolutions (PyTorch padding=1, output_padding=1: exactly
2x; here a ConvTranspose with padding (1, 2) on the dilated input, equal to PyTorch's
with the kernel flipped), each halving the channels; a reflect-padded 7x7 convolution
to the image channels and tanh. Every hidden convolution is followed by instance
normalisation (no affine parameters, no running statistics) and ReLU. The output has
the input's shape; its height and width must divide by 4 (and be at least 8).

`PatchDiscriminator` (pix2pix's PatchGAN, Isola et al. 2017): 4x4 convolutions with
padding 1; the first `num_layers` halve the resolution (stride 2), the first with
LeakyReLU(0.2) only and the rest with instance norm and LeakyReLU, to width * 2**n
channels (capped at 8 * width); then a stride-1 one to width * min(2**num_layers, 8)
channels with instance norm and LeakyReLU, and a stride-1 one to one logit per patch.
With num_layers=3 each logit sees a 70x70 patch of the input: 256x256 images give
30x30 logits, 32x32 images 2x2. The output is [B, h, w] (no trailing channel axis).

`dtype` is the compute dtype (float32, or bfloat16 on GPU/TPU): parameters stay
float32, instance normalisation computes its statistics in float32, and the
last convolution of each network runs in float32, so that images and patch
logits leave the networks in float32.

Every convolution has a bias (the reference sets use_bias when the norm is instance
norm, and its last layers always have one). Kernels are drawn from N(0, 0.02) and
biases are zero (the reference's init_weights 'normal' with gain 0.02).

Trainable parameters at width 64 and 3 channels (any image size), as the reference
prints them: the 9-block generator (for 256x256 images) 11,378,179; the 6-block
generator (for 128x128) 7,837,699 (each residual block has 1,180,160); the
discriminator (num_layers=3) 2,764,737.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

CYCLEGAN_INIT = nn.initializers.normal(stddev=0.02)


def reflect_pad(x, p: int):
  """Reflection padding of H and W by p, like torch.nn.ReflectionPad2d(p). x: [B, H, W, C]."""
  if p >= x.shape[1] or p >= x.shape[2]:
    raise ValueError(f"reflection padding of {p} needs images larger than {p}x{p};"
                     f" got {x.shape[1]}x{x.shape[2]}")
  return jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")


def instance_norm(x, eps: float = 1e-5):
  """Instance normalisation without affine parameters. x: [B, H, W, C].

  Each example's channels are normalised over H and W with their mean and biased
  variance, like torch.nn.InstanceNorm2d(affine=False, track_running_stats=False)
  (the same in training and in evaluation).
  """
  y = x.astype(jnp.float32)
  mean = jnp.mean(y, axis=(1, 2), keepdims=True)
  centred = y - mean
  var = jnp.mean(jnp.square(centred), axis=(1, 2), keepdims=True)
  return (centred * lax.rsqrt(var + eps)).astype(x.dtype)


def _conv(conv, features: int, kernel: int, strides: int = 1, padding=((0, 0), (0, 0)),
          dtype=jnp.float32):
  """A square convolution with a bias, N(0, 0.02) kernels, from the factory `conv`."""
  return conv(features, (kernel, kernel), strides=(strides, strides), padding=padding,
              use_bias=True, kernel_init=CYCLEGAN_INIT, dtype=dtype)


class ResnetBlock(nn.Module):
  """x + [reflect pad 1, 3x3 conv, IN, ReLU, reflect pad 1, 3x3 conv, IN](x)."""
  dtype: jnp.dtype = jnp.float32
  conv: Any = nn.Conv

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    h = nn.relu(instance_norm(_conv(self.conv, features, 3, dtype=self.dtype)(
        reflect_pad(x, 1))))
    h = instance_norm(_conv(self.conv, features, 3, dtype=self.dtype)(reflect_pad(h, 1)))
    return x + h


class ResnetGenerator(nn.Module):
  """images [B, H, W, channels] -> images of the same shape in [-1, 1]; H, W divide by 4."""
  channels: int = 3
  width: int = 64
  num_blocks: int = 9
  dtype: jnp.dtype = jnp.float32  # compute dtype; the output is float32
  conv: Any = nn.Conv
  conv_transpose: Any = nn.ConvTranspose

  @nn.compact
  def __call__(self, x):
    height, width = x.shape[1], x.shape[2]
    if height % 4 or width % 4 or min(height, width) < 8:
      raise ValueError(
          f"ResnetGenerator: image size {height}x{width} must divide by 4 (it is downsampled"
          " twice by 2) and be at least 8x8, e.g. 32, 128 or 256")
    if x.shape[-1] != self.channels:
      raise ValueError(f"ResnetGenerator built for {self.channels} channels got"
                       f" {x.shape[-1]}")
    x = x.astype(self.dtype)
    h = nn.relu(instance_norm(_conv(self.conv, self.width, 7, dtype=self.dtype)(
        reflect_pad(x, 3))))
    features = self.width
    for _ in range(2):  # downsampling: PyTorch Conv2d(k=3, s=2, p=1)
      features *= 2
      h = _conv(self.conv, features, 3, 2, ((1, 1), (1, 1)), dtype=self.dtype)(h)
      h = nn.relu(instance_norm(h))
    for _ in range(self.num_blocks):
      h = ResnetBlock(dtype=self.dtype, conv=self.conv)(h)
    for _ in range(2):  # upsampling: PyTorch ConvTranspose2d(k=3, s=2, p=1, output_padding=1)
      features //= 2
      h = self.conv_transpose(features, (3, 3), strides=(2, 2), padding=((1, 2), (1, 2)),
                              use_bias=True, kernel_init=CYCLEGAN_INIT, dtype=self.dtype)(h)
      h = nn.relu(instance_norm(h))
    h = _conv(self.conv, self.channels, 7, dtype=jnp.float32)(reflect_pad(h, 3))
    return jnp.tanh(h)


class PatchDiscriminator(nn.Module):
  """images [B, H, W, C] -> patch logits [B, h, w] (real: high); 256x256 -> 30x30."""
  width: int = 64
  num_layers: int = 3
  negative_slope: float = 0.2
  dtype: jnp.dtype = jnp.float32  # compute dtype; logits are float32
  conv: Any = nn.Conv

  @nn.compact
  def __call__(self, x):
    size = min(x.shape[1], x.shape[2])
    out = size
    for _ in range(self.num_layers):
      out //= 2  # a 4x4 stride-2 convolution with padding 1
    out -= 2     # two 4x4 stride-1 convolutions with padding 1
    if out < 1:
      raise ValueError(f"PatchDiscriminator with {self.num_layers} layers: images of"
                       f" {x.shape[1]}x{x.shape[2]} are too small for one patch")
    pad = ((1, 1), (1, 1))
    h = nn.leaky_relu(_conv(self.conv, self.width, 4, 2, pad, self.dtype)(x), self.negative_slope)
    for n in range(1, self.num_layers):
      h = _conv(self.conv, self.width * min(2 ** n, 8), 4, 2, pad, self.dtype)(h)
      h = nn.leaky_relu(instance_norm(h), self.negative_slope)
    h = _conv(self.conv, self.width * min(2 ** self.num_layers, 8), 4, 1, pad, self.dtype)(h)
    h = nn.leaky_relu(instance_norm(h), self.negative_slope)
    logits = _conv(self.conv, 1, 4, 1, pad, jnp.float32)(h)
    return logits[..., 0]
