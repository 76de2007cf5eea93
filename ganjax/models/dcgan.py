"""DCGAN generator and discriminator (Radford, Metz and Chintala, 2016).

The networks are parameterised by image size (4 * 2**k: 32, 64, 128, ...),
image channels, latent size and width. At 64x64x3, latent 100 and width 64
they are the reference DCGAN: the generator has 3,576,704 trainable
parameters and the discriminator 2,765,568.

Generator: the latent vector becomes a 4x4 map with a 4x4 transposed
convolution, then each stride-2 4x4 transposed convolution doubles the
resolution and halves the channels (padding 2 on the dilated input, which is
PyTorch's padding=1); BatchNorm and ReLU follow every layer but
the last, which ends in tanh. Discriminator: the mirror image, strided 4x4
convolutions with LeakyReLU(0.2), BatchNorm on all but the first layer (or
LayerNorm, or none, for critics that need per-example outputs), and a final
4x4 valid convolution to one logit. No convolution has a bias. All
weights are drawn from N(0, 0.02); BatchNorm scales from N(1, 0.02).
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from ganjax.models import layers

DCGAN_INIT = nn.initializers.normal(stddev=0.02)


def bn_scale_init(key, shape, dtype=jnp.float32):
  """BatchNorm scale drawn from N(1, 0.02), as in the reference DCGAN."""
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def num_stages(image_size: int) -> int:
  """Number of 2x resolution changes between 4x4 and `image_size`."""
  stages = math.log2(image_size / 4) if image_size >= 8 else 0
  if not float(stages).is_integer() or stages < 1:
    raise ValueError(
        f"image_size={image_size} cannot be built by DCGAN (4x4 doubled k times);"
        " use 4 * 2**k with k >= 1, e.g. 32, 64 or 128")
  return int(stages)


def _batch_norm(train: bool, axis_name):
  # PyTorch-equivalent BatchNorm: momentum 0.1 there is 0.9 here, eps 1e-5.
  return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5,
      scale_init=bn_scale_init, axis_name=axis_name if train else None)


class Generator(nn.Module):
  """z [B, latent] -> images [B, size, size, channels] in [-1, 1]."""
  image_size: int = 64
  channels: int = 3
  width: int = 64
  axis_name: str | None = None  # mesh axis for cross-device BatchNorm

  @nn.compact
  def __call__(self, z, train: bool = True):
    stages = num_stages(self.image_size)
    features = self.width * 2 ** (stages - 1)
    x = z.reshape(z.shape[0], 1, 1, -1)
    x = layers.ConvTranspose(features, (4, 4), padding="VALID", use_bias=False,
                         kernel_init=DCGAN_INIT)(x)
    x = nn.relu(_batch_norm(train, self.axis_name)(x))
    for _ in range(stages - 1):
      features //= 2
      x = layers.ConvTranspose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                           use_bias=False, kernel_init=DCGAN_INIT)(x)
      x = nn.relu(_batch_norm(train, self.axis_name)(x))
    x = layers.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                         use_bias=False, kernel_init=DCGAN_INIT)(x)
    return jnp.tanh(x)


class Discriminator(nn.Module):
  """images [B, size, size, channels] -> logits [B] (real: positive)."""
  image_size: int = 64
  width: int = 64
  negative_slope: float = 0.2
  norm: str = "batch"  # "batch", "layer" (per example, over H, W, C) or "none"
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x, train: bool = True):
    if x.shape[1] != self.image_size or x.shape[2] != self.image_size:
      raise ValueError(f"Discriminator built for {self.image_size}x{self.image_size}"
                       f" images got {x.shape[1]}x{x.shape[2]}")
    stages = num_stages(self.image_size)
    features = self.width
    for i in range(stages):
      x = layers.Conv(features, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                  use_bias=False, kernel_init=DCGAN_INIT)(x)
      if i > 0 and self.norm == "batch":
        x = _batch_norm(train, self.axis_name)(x)
      elif i > 0 and self.norm == "layer":
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1)(x)
      x = nn.leaky_relu(x, self.negative_slope)
      features *= 2
    x = layers.Conv(1, (4, 4), padding="VALID", use_bias=False, kernel_init=DCGAN_INIT)(x)
    return x.reshape(x.shape[0])
