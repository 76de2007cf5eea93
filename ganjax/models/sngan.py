"""The spectrally normalised discriminator of SNGAN (Miyato, Kataoka, Koyama and Yoshida, 2018).

The "standard CNN" discriminator of the paper's Table 3, for images whose
side divides by 8 (32x32 for CIFAR-10 and for MNIST padded as ganjax pads it):

  3x3 conv, stride 1, width      -> LeakyReLU(0.1)
  4x4 conv, stride 2, width      -> LeakyReLU(0.1)      size / 2
  3x3 conv, stride 1, 2 * width  -> LeakyReLU(0.1)
  4x4 conv, stride 2, 2 * width  -> LeakyReLU(0.1)      size / 4
  3x3 conv, stride 1, 4 * width  -> LeakyReLU(0.1)
  4x4 conv, stride 2, 4 * width  -> LeakyReLU(0.1)      size / 8
  3x3 conv, stride 1, 8 * width  -> LeakyReLU(0.1)
  dense -> 1 output (unbounded, no sigmoid)

with width 64 in the paper. `minibatch_stddev` > 0 (not in the paper) appends
the minibatch standard deviation (layers.minibatch_stddev) to the last
feature map before the dense layer. Every convolution and the dense layer is wrapped in
`flax.linen.SpectralNorm`: its weight W, reshaped to a matrix
[kh * kw * in, out], is divided by an estimate of its largest singular value
sigma(W) before use. The estimate is one step of power iteration per forward
pass from a vector `u` kept between steps (in the `batch_stats` collection,
beside `sigma`), which is updated when the discriminator is called with `train=True`;
with `train=False` the same estimate is computed but not stored. There is no
BatchNorm or LayerNorm: spectral normalisation alone bounds each layer.

Weights are drawn from N(0, 0.02), as in the authors' Chainer code
(pfnet-research/chainer-gan-lib, `SNDCGANDiscriminator`); the convolutions and
the dense layer have biases, which spectral normalisation leaves alone.
"""

from typing import Any

import flax.linen as nn

from ganjax.models import layers

INIT = nn.initializers.normal(stddev=0.02)


class Discriminator(nn.Module):
  """images [B, size, size, channels] -> outputs [B] (real: positive)."""
  image_size: int = 32
  width: int = 64
  negative_slope: float = 0.1
  norm: str = "none"         # "none" (the paper) or "layer": LayerNorm after convolutions 2-7
  power_iterations: int = 1  # power-iteration steps per forward pass (the paper: 1)
  minibatch_stddev: int = 0  # group size of the minibatch-stddev feature; 0 = off (the paper)
  conv: Any = nn.Conv        # the convolution's module factory

  def _normalised(self, layer: nn.Module, x, train: bool):
    return nn.SpectralNorm(layer, n_steps=self.power_iterations)(x, update_stats=train)

  def _conv(self, x, features: int, kernel: int, stride: int, index: int, train: bool):
    pad = ((1, 1), (1, 1))
    x = self._normalised(self.conv(features, (kernel, kernel), strides=(stride, stride),
                                     padding=pad, kernel_init=INIT, name=f"conv{index}"),
                         x, train)
    if index > 0 and self.norm == "layer":
      x = nn.LayerNorm(epsilon=1e-5, reduction_axes=(1, 2, 3), feature_axes=-1,
                       name=f"layer_norm{index}")(x)
    return nn.leaky_relu(x, self.negative_slope)

  @nn.compact
  def __call__(self, x, labels=None, train: bool = True, features: bool = False):
    if labels is not None:
      raise ValueError("the SNGAN discriminator is unconditional; set num_classes=0")
    if x.shape[1] != self.image_size or x.shape[2] != self.image_size:
      raise ValueError(f"Discriminator built for {self.image_size}x{self.image_size}"
                       f" images got {x.shape[1]}x{x.shape[2]}")
    for i, multiple in enumerate((1, 2, 4)):
      x = self._conv(x, self.width * multiple, 3, 1, 2 * i, train)
      x = self._conv(x, self.width * multiple, 4, 2, 2 * i + 1, train)
    x = self._conv(x, self.width * 8, 3, 1, 6, train)
    hidden = x.reshape(x.shape[0], -1)
    if self.minibatch_stddev:
      x = layers.minibatch_stddev(x, self.minibatch_stddev)
    out = self._normalised(nn.Dense(1, kernel_init=INIT, name="dense"),
                           x.reshape(x.shape[0], -1), train)
    out = out.reshape(x.shape[0])
    return (out, hidden) if features else out
