"""DCGAN (Radford et al. 2016) trained with the non-saturating GAN loss.

Run (offline, CPU, a few minutes; writes runs/gan):

  python -m ganjax.main --config experiments/gan.py

Presets:
  (none)    bundled:mnist, the 4,500 MNIST training digits shipped with ganjax, padded
            from 28x28 to 32x32 with background, 1 channel; half the paper's
            width (32) and batch (64) so that it trains in minutes on a laptop
            CPU. Expect recognisable digits in runs/gan/samples/ from about
            step 1,500.
  cifar10   tfds:cifar10, 32x32x3.
  celeba64  tfds:celeb_a, centre-cropped to 178x178 and resized to 64x64x3:
            the classic DCGAN setting (and the PyTorch DCGAN tutorial's
            network, 3,576,704 generator / 2,765,568 discriminator parameters).

  python -m ganjax.main --config experiments/gan.py:celeba64 --config.batch_size=256

Architecture and optimisation follow the paper: strided (transposed)
convolutions, BatchNorm, ReLU in the generator and LeakyReLU(0.2) in the
discriminator, tanh output, N(0, 0.02) initialisation, Adam lr 2e-4 beta1 0.5,
batch 128 and width 64 (the presets; the MNIST default halves both).
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "cifar10": "CIFAR-10 at the paper's width (64) and batch (128)",
    "celeba64": "CelebA centre-cropped to 64x64: the classic DCGAN setting",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = configs.adversarial()
  c.algorithm = "gan"
  c.loss = "non_saturating"
  configs.cpu_sized(c)
  c.num_train_steps = 3000

  if arg in PRESETS:  # the paper's width and batch, a longer schedule
    dataset, size = {"cifar10": ("tfds:cifar10", 32), "celeba64": ("tfds:celeb_a", 64)}[arg]
    configs.tfds_preset(c, dataset, size, num_train_steps=50_000)
    c.batch_size = 128
  elif arg:
    raise ValueError(f"experiments/gan.py has no preset {arg!r}; presets: {', '.join(PRESETS)}")
  return c
