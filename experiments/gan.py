"""DCGAN (Radford et al. 2016) trained with the non-saturating GAN loss.

Run (offline, CPU, a few minutes; writes runs/gan):

  python -m ganjax.main --config experiments/gan.py

Presets:
  (none)    bundled:mnist, the 5,000 MNIST digits shipped with ganjax, padded
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

PRESETS = ("cifar10", "celeba64")


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.algorithm = "gan"
  c.dataset = "bundled:mnist"
  c.image_size = 32
  c.channels = 1
  c.seed = 0

  # Networks.
  c.latent_dim = 100
  c.g_width = 32            # generator channels before the last layer (64 in the paper)
  c.d_width = 32            # discriminator channels after the first layer (64 in the paper)
  c.leaky_relu_slope = 0.2
  c.noise = "normal"        # latent distribution: "normal" N(0, 1) or "uniform" U(-1, 1)

  # Losses.
  c.loss = "non_saturating"  # generator loss: "non_saturating" or "minimax"
  c.real_label = 1.0         # < 1 is one-sided label smoothing (0.9 is common)

  # Optimisation.
  c.batch_size = 64          # global, over all devices and hosts (128 in the paper)
  c.num_train_steps = 3000
  c.g_lr = 2e-4
  c.d_lr = 2e-4
  c.beta1 = 0.5
  c.beta2 = 0.999

  # Data.
  c.tfds_data_dir = ""       # "" = TFDS default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.shuffle_buffer = 10_000

  # Reporting and checkpoints.
  c.log_every = 50
  c.sample_every = 250
  c.num_samples = 64
  c.checkpoint_every = 500
  c.keep_checkpoints = 3

  if arg in PRESETS:  # the paper's width and batch, a longer schedule
    c.dataset, c.image_size = {"cifar10": ("tfds:cifar10", 32),
                               "celeba64": ("tfds:celeb_a", 64)}[arg]
    c.channels = 3
    c.g_width = c.d_width = 64
    c.batch_size = 128
    c.num_train_steps = 50_000
    c.sample_every = 1000
    c.checkpoint_every = 5000
  elif arg:
    raise ValueError(f"experiments/gan.py has no preset {arg!r}; presets: {', '.join(PRESETS)}")
  return c
