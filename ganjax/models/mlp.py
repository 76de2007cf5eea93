"""Fully connected generator and discriminator for low-dimensional data (the 2D mixtures).

The shapes follow the 2D experiments of PacGAN (Lin et al. 2018): a generator
of `depth` ReLU layers of `width` units (400 x 4 there, with BatchNorm and no
bias before it) and a linear output, and a discriminator of `depth` hidden
layers (200 x 3 there, of maxout units with 5 pieces; LeakyReLU by default)
and one logit. The discriminator shares its head with the DCGAN one
(dcgan.discriminator_head): minibatch stddev and `features=True` work alike.

`init_std` > 0 draws every weight from N(0, init_std) with zero biases, as
PacGAN does (0.02); 0 keeps Flax's defaults (LeCun normal weights).

`dtype` is the compute dtype of the hidden layers, as in dcgan.py: parameters,
normalisation statistics, the generator's output layer and the discriminator's
head stay float32.
"""

import flax.linen as nn
import jax.numpy as jnp

from ganjax.models import dcgan


def _norm(kind: str, train: bool, axis_name, dtype, momentum: float = 0.9):
  if kind == "batch":
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-5,
                        axis_name=axis_name if train else None, dtype=dtype)
  if kind == "layer":
    return nn.LayerNorm(epsilon=1e-5, dtype=dtype)
  return lambda x: x


def _kernel_init(std: float):
  return nn.initializers.normal(std) if std > 0 else nn.linear.default_kernel_init


class Maxout(nn.Module):
  """The maximum of `pieces` affine maps per unit (Goodfellow et al. 2013): x [..., D] ->
  [..., features]. One Dense of features * pieces outputs, unit j's pieces contiguous."""
  features: int
  pieces: int = 5
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    y = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init, dtype=self.dtype)(x)
    return jnp.max(y.reshape(y.shape[:-1] + (self.features, self.pieces)), axis=-1)


class Generator(nn.Module):
  """z [B, latent] -> points [B, out_dim] (linear output, no squashing)."""
  out_dim: int = 2
  width: int = 400
  depth: int = 4
  norm: str = "batch"  # "batch" or "none"
  axis_name: str | None = None
  dtype: jnp.dtype = jnp.float32
  hidden_bias: bool = True  # biases of the hidden layers (BatchNorm's shift makes them redundant)
  momentum: float = 0.9     # of BatchNorm's running statistics
  init_std: float = 0.0

  @nn.compact
  def __call__(self, z, labels=None, train: bool = True):
    del labels  # unconditional
    init = _kernel_init(self.init_std)
    x = z.astype(self.dtype)
    for _ in range(self.depth):
      x = nn.Dense(self.width, use_bias=self.hidden_bias, kernel_init=init, dtype=self.dtype)(x)
      x = nn.relu(_norm(self.norm, train, self.axis_name, self.dtype, self.momentum)(x))
    return nn.Dense(self.out_dim, kernel_init=init, dtype=jnp.float32)(x)


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
  maxout_pieces: int = 0  # > 0: hidden layers of maxout units with this many pieces
  init_std: float = 0.0

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, features: bool = False):
    init = _kernel_init(self.init_std)
    x = x.astype(self.dtype)
    for i in range(self.depth):
      if self.maxout_pieces:
        x = Maxout(self.width, self.maxout_pieces, kernel_init=init, dtype=self.dtype)(x)
      else:
        x = nn.Dense(self.width, kernel_init=init, dtype=self.dtype)(x)
      if i > 0:
        x = _norm(self.norm, train, self.axis_name, self.dtype)(x)
      if not self.maxout_pieces:
        x = nn.leaky_relu(x, self.negative_slope)
    return dcgan.discriminator_head(self, x, labels, features, kernel_init=init)
