"""SNGAN: a spectrally normalised critic with the hinge loss (Miyato et al. 2018).

Run (offline, CPU; writes runs/sngan):

  python -m ganjax.main --config experiments/sngan.py

Presets:
  (none)    bundled:mnist padded to 32x32x1; the paper's batch (64), half its width
            (critic 32 to 256 channels, generator 32), and a LayerNorm after each
            critic convolution but the first (below).
  paper     the same, with the paper's critic: spectral normalisation alone.
  cifar10   tfds:cifar10, 32x32x3, the paper's critic at the paper's width (64 to
            512 channels), 100,000 generator steps.

The critic is the paper's "standard CNN" (its Table 3; ganjax/models/sngan.py):
seven convolutions and a dense output, every one spectrally normalised by
flax.linen.SpectralNorm with one power-iteration step per update, LeakyReLU 0.1.
The generator is ganjax's DCGAN generator, which differs from the paper's in
its first layer (a 4x4 transposed convolution of z, where the paper has a dense
layer: the same map) and its last (a stride-2 transposed convolution to the
image, where the paper upsamples once more and ends in a 3x3 convolution). The
objective is the hinge loss; the optimisation is the setting the authors'
Chainer code runs (pfnet-research/chainer-gan-lib, example.sh): Adam lr 2e-4,
betas (0.5, 0.999), one critic update per generator update, batch 64, latent
size 128.

On MNIST the paper's critic lets this generator collapse (runs in
docs/extending.md): with spectral normalisation alone all 64 samples were
one image by step 250, and stayed so in every setting tried (the paper's
settings B and C, n_critic 5, TTUR, a slower critic, a smaller critic,
minibatch stddev). With LayerNorm after convolutions 2-7 (d_norm="layer") the
samples were varied by step 500 (the spread of the 64 grid samples, 0.12 at
step 300, was 0.19 at 500 and 0.26 at 1,000, about that of real digits) and
were rough but varied digits at step 1,000 (classifier FID 269, all 10
classes). LayerNorm is not in the paper; preset `paper` removes it.

Logged: d_loss (the critic's hinge loss), wasserstein (E[D(x)] - E[D(G(z))]),
g_loss (-E[D(G(z))]) and the gradient norms.

The algorithm is ganjax/algorithms/sngan.py; docs/extending.md walks through
how it was added.
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "paper": "the paper's critic: spectral normalisation alone, no LayerNorm",
    "cifar10": "CIFAR-10 with the paper's critic at the paper's width (64 to 512 channels)",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = configs.adversarial()
  c.algorithm = "sngan"
  c.loss = "hinge"
  c.d_norm = "layer"            # MNIST: see the docstring; the paper's critic is "none"
  c.separate_batches = False    # one critic pass over real and fake: one power-iteration step
  c.leaky_relu_slope = 0.1
  c.latent_dim = 128
  c.optimizer = "adam"
  c.g_lr = c.d_lr = 2e-4
  c.beta1, c.beta2 = 0.5, 0.999
  c.n_critic = 1
  configs.cpu_sized(c)          # width 32, batch 64
  c.num_train_steps = 1000

  if arg == "paper":
    c.d_norm = "none"
  elif arg == "cifar10":
    configs.tfds_preset(c, "tfds:cifar10", 32, num_train_steps=100_000)
    c.d_norm = "none"
  elif arg:
    raise ValueError(f"experiments/sngan.py has no preset {arg!r}; presets: {', '.join(PRESETS)}")
  return c
