"""The keys every adversarial (GAN-family) experiment has, with neutral defaults.

Experiment files start from `adversarial()` and change what their paper
says; the config is then locked, so every key a user can set is listed here.
"""

import ml_collections


def adversarial() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.algorithm = "gan"
  c.dataset = "bundled:mnist"
  c.image_size = 32
  c.channels = 1
  c.seed = 0

  # Networks (DCGAN, models/dcgan.py).
  c.latent_dim = 100
  c.g_width = 64             # generator channels before the last layer
  c.d_width = 64             # discriminator channels after the first layer
  c.d_norm = "batch"         # discriminator normalisation: "batch", "layer" or "none"
  c.leaky_relu_slope = 0.2
  c.noise = "normal"         # latent distribution: "normal" N(0, 1) or "uniform" U(-1, 1)

  # Objective.
  c.loss = "non_saturating"  # non_saturating, minimax, wasserstein, hinge, least_squares
  c.real_label = 1.0         # < 1 is one-sided label smoothing (0.9 is common)
  c.separate_batches = True  # D sees real and fake batches in separate BatchNorm passes
  c.gp_weight = 0.0          # gradient penalty lambda (WGAN-GP: 10); 0 = off
  c.weight_clip = 0.0        # clip critic weights to [-c, c] after each update (WGAN: 0.01); 0 = off

  # Optimisation.
  c.batch_size = 128         # global, over all devices and hosts
  c.num_train_steps = 10_000  # generator iterations
  c.n_critic = 1             # critic (discriminator) updates per generator update
  c.critic_warmup = False    # WGAN's 100 critic updates for the first 25 and every 500th G step
  c.optimizer = "adam"       # "adam" or "rmsprop" (PyTorch's: decay 0.99, eps outside the root)
  c.g_lr = 2e-4
  c.d_lr = 2e-4              # a different d_lr than g_lr is TTUR (Heusel et al. 2017)
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
  return c


def cpu_sized(c: ml_collections.ConfigDict) -> None:
  """Half the DCGAN paper's width (32) and batch (64): the bundled-MNIST defaults,
  which train in minutes on a laptop CPU."""
  c.g_width = c.d_width = 32
  c.batch_size = 64


def tfds_preset(c: ml_collections.ConfigDict, dataset: str, image_size: int,
                num_train_steps: int) -> None:
  """A 3-channel tfds dataset at the paper's width (64) and a long schedule."""
  c.dataset, c.image_size, c.channels = dataset, image_size, 3
  c.g_width = c.d_width = 64
  c.num_train_steps = num_train_steps
  c.sample_every = 1000
  c.checkpoint_every = 5000
