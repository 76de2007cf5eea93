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
LayerNorm, or none, for discriminators that need per-example outputs), and a final
4x4 valid convolution to one logit. No convolution has a bias. All
weights are drawn from N(0, 0.02); BatchNorm scales from N(1, 0.02).

Class conditioning (Mirza and Osindero 2014), with `num_classes` > 0: the
generator concatenates a learned label embedding (N(0, 1) init, like the
noise) to the latent vector. The discriminator takes the label either as
one-hot maps concatenated to the image channels (`conditioning="concat"`) or
through a projection head (`"projection"`, Miyato and Koyama 2018): the logit
gains <embed(y), sum over positions of the last hidden features>.

`dtype` is the compute dtype (float32, or bfloat16 on GPU/TPU): inputs and
hidden activations are cast to it, while parameters stay float32, BatchNorm
and LayerNorm compute their statistics in float32 (Flax's promotion), and the
last layer of each network runs in float32, so that images and logits leave
the networks in float32.

The convolutions are `conv` and `conv_transpose`, `flax.linen.Conv` and
`flax.linen.ConvTranspose` unless the caller gives other factories with the
same parameters (ganjax/models/__init__.py).

`minibatch_stddev` > 0 appends the minibatch standard deviation (groups of
that size, layers.minibatch_stddev) to the last hidden features before the
final convolution. Called with `features=True` the discriminator also
returns those last hidden features, flattened (for feature matching).
"""

import math
from typing import Any

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


def _batch_norm(train: bool, axis_name, dtype=jnp.float32):
  # PyTorch-equivalent BatchNorm: momentum 0.1 there is 0.9 here, eps 1e-5.
  return nn.BatchNorm(
      use_running_average=not train, momentum=0.9, epsilon=1e-5,
      scale_init=bn_scale_init, axis_name=axis_name if train else None, dtype=dtype)


class Generator(nn.Module):
  """z [B, latent] -> images [B, size, size, channels] in [-1, 1]."""
  image_size: int = 64
  channels: int = 3
  width: int = 64
  axis_name: str | None = None  # mesh axis for cross-device BatchNorm
  num_classes: int = 0          # > 0: conditioned on int labels [B]
  label_dim: int = 10           # size of the label embedding concatenated to z
  dtype: jnp.dtype = jnp.float32  # compute dtype; the output is float32
  conv_transpose: Any = nn.ConvTranspose

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    stages = num_stages(self.image_size)
    features = self.width * 2 ** (stages - 1)
    z = z.astype(self.dtype)
    if self.num_classes:
      z = jnp.concatenate(
          [z, label_embedding(self.num_classes, self.label_dim, labels, self.dtype)], -1)
    x = z.reshape(z.shape[0], 1, 1, -1)
    x = self.conv_transpose(features, (4, 4), padding="VALID", use_bias=False,
                             kernel_init=DCGAN_INIT, dtype=self.dtype)(x)
    x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    for _ in range(stages - 1):
      features //= 2
      x = self.conv_transpose(features, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                               use_bias=False, kernel_init=DCGAN_INIT, dtype=self.dtype)(x)
      x = nn.relu(_batch_norm(train, self.axis_name, self.dtype)(x))
    x = self.conv_transpose(self.channels, (4, 4), strides=(2, 2), padding=((2, 2), (2, 2)),
                             use_bias=False, kernel_init=DCGAN_INIT, dtype=jnp.float32)(x)
    return jnp.tanh(x)


def label_embedding(num_classes: int, dim: int, labels, dtype=jnp.float32):
  """A learned embedding of int labels [B] -> [B, dim], drawn from N(0, 1)."""
  if labels is None:
    raise ValueError(f"a network conditioned on {num_classes} classes needs labels")
  return nn.Embed(num_classes, dim, embedding_init=nn.initializers.normal(1.0),
                  dtype=dtype, name="label_embedding")(labels)


def discriminator_head(module: nn.Module, h, labels, features: bool,
                       kernel_init=nn.linear.default_kernel_init):
  """The end every discriminator shares: minibatch stddev, a linear logit, projection.

  `h` is the last hidden activation [B, ..., C]; `module` has the fields
  num_classes, conditioning, minibatch_stddev and (for feature maps) conv. Returns logits [B], or
  (logits, flattened h) with `features`. The head computes in float32 whatever
  h's dtype: logits and features are float32. `kernel_init` initialises the linear
  logit of a flat `h` (the MLP's).
  """
  h = h.astype(jnp.float32)
  hidden = h.reshape(h.shape[0], -1)
  x = layers.minibatch_stddev(h, module.minibatch_stddev) if module.minibatch_stddev else h
  if x.ndim == 4:  # DCGAN: a 4x4 valid convolution over the 4x4 map
    logits = module.conv(1, (4, 4), padding="VALID", use_bias=False,
                         kernel_init=DCGAN_INIT)(x).reshape(x.shape[0])
  else:
    logits = nn.Dense(1, kernel_init=kernel_init)(x).reshape(x.shape[0])
  if module.num_classes and module.conditioning == "projection":
    pooled = jnp.sum(h.reshape(h.shape[0], -1, h.shape[-1]), axis=1)  # sum over positions
    embed = nn.Embed(module.num_classes, h.shape[-1], embedding_init=DCGAN_INIT,
                     name="projection")(labels)
    logits = logits + jnp.sum(embed * pooled, axis=-1)
  return (logits, hidden) if features else logits


class Discriminator(nn.Module):
  """images [B, size, size, channels] -> logits [B] (real: positive)."""
  image_size: int = 64
  width: int = 64
  negative_slope: float = 0.2
  norm: str = "batch"  # "batch", "layer" (per example, over H, W, C) or "none"
  axis_name: str | None = None
  num_classes: int = 0           # > 0: conditioned on int labels [B]
  conditioning: str = "concat"   # "concat" (one-hot channels) or "projection"
  minibatch_stddev: int = 0      # group size of the minibatch-stddev feature; 0 = off
  dtype: jnp.dtype = jnp.float32  # compute dtype; logits are float32
  conv: Any = nn.Conv

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, features: bool = False):
    if x.shape[1] != self.image_size or x.shape[2] != self.image_size:
      raise ValueError(f"Discriminator built for {self.image_size}x{self.image_size}"
                       f" images got {x.shape[1]}x{x.shape[2]}")
    if self.num_classes and labels is None:
      raise ValueError(f"a discriminator conditioned on {self.num_classes} classes needs labels")
    x = x.astype(self.dtype)
    if self.num_classes and self.conditioning == "concat":
      maps = jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)[:, None, None, :]
      x = jnp.concatenate([x, jnp.broadcast_to(maps, x.shape[:3] + maps.shape[-1:])], -1)
    stages = num_stages(self.image_size)
    width = self.width
    for i in range(stages):
      x = self.conv(width, (4, 4), strides=(2, 2), padding=((1, 1), (1, 1)),
                      use_bias=False, kernel_init=DCGAN_INIT, dtype=self.dtype)(x)
      if i > 0 and self.norm == "batch":
        x = _batch_norm(train, self.axis_name, self.dtype)(x)
      elif i > 0 and self.norm == "layer":
        x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                         dtype=self.dtype)(x)
      x = nn.leaky_relu(x, self.negative_slope)
      width *= 2
    return discriminator_head(self, x, labels, features)
