"""Fully connected generator and discriminator for low-dimensional data (the 2D mixtures).

The shapes follow the 2D experiments of PacGAN (Lin et al. 2018): a generator
of `depth` ReLU layers of `width` units (400 x 4 there, with BatchNorm) and a
linear output, and a discriminator of `depth` hidden layers (200 x 3 there; we
use LeakyReLU where PacGAN uses maxout units) and one logit. The
discriminator shares its head with the DCGAN one (dcgan.discriminator_head):
minibatch stddev and `features=True` work alike.

`dtype` is the compute dtype of the hidden layers, as in dcgan.py: parameters,
normalisation statistics, the generator's output layer and the discriminator's
head stay float32.
"""

import flax.linen as nn
import jax.numpy as jnp

from ganjax.models import dcgan


def _norm(kind: str, train: bool, axis_name, dtype):
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                        axis_name=axis_name if train else None, dtype=dtype)
  if kind == "layer":
    return nn.LayerNorm(epsilon=1e-5, dtype=dtype)
  return lambda x: x


class Generator(nn.Module):
  """z [B, latent] -> points [B, out_dim] (linear output, no squashing)."""
  out_dim: int = 2
  width: int = 400
  depth: int = 4
  norm: str = "batch"  # "batch" or "none"
  axis_name: str | None = None
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    del labels  # unconditional
    x = z.astype(self.dtype)
    for _ in range(self.depth):
      x = nn.Dense(self.width, dtype=self.dtype)(x)
      x = nn.relu(_norm(self.norm, train, self.axis_name, self.dtype)(x))
    return nn.Dense(self.out_dim, dtype=jnp.float32)(x)


class Discriminator(nn.Module):
  """points [B, D] -> logits [B]."""
  width: int = 200
  depth: int = 3
  negative_slope: float = 0.2
  norm: str = "none"   # "batch", "layer" or "none"
  axis_name: str | None = None
  minibatch_stddev: int = 0
  num_classes: int = 0          # unconditional; the fields exist for the shared head
  conditioning: str = "concat"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, features: bool = False):
    x = x.astype(self.dtype)
    for i in range(self.depth):
      x = nn.Dense(self.width, dtype=self.dtype)(x)
      if i > 0:
        x = _norm(self.norm, train, self.axis_name, self.dtype)(x)
      x = nn.leaky_relu(x, self.negative_slope)
    return dcgan.discriminator_head(self, x, labels, features)
