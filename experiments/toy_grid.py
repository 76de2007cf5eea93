"""The grid mixture, the mode-collapse benchmark of VEEGAN and PacGAN.

Run (offline, CPU, one to two minutes; writes runs/toy_grid):

  python -m ganjax.main --config experiments/toy_grid.py
  python -m ganjax.main --config experiments/toy_grid.py:wgan_gp

Data: toy:grid, 25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05, fresh samples every step.
Networks (models/mlp.py) as in PacGAN's 2D experiments: 2-d Gaussian noise, a
generator of 4 hidden layers of 400 ReLU units with BatchNorm and a linear
output, a discriminator of 3 hidden layers of 200 units (LeakyReLU(0.2) where
PacGAN uses maxout) and one logit; batch 256.

Presets:
  (none)    the non-saturating GAN loss, Adam lr 5e-4 beta1 0.5, 3000 steps.
  wgan_gp   WGAN-GP with the toy setting of its authors' gan_toy.py: penalty
            weight 0.1, no BatchNorm, 5 critic updates per generator update,
            Adam (0, 0.9) at lr 5e-4, 1000 generator steps.

The PacGAN and WGAN-GP references train for far longer (hundreds of
thousands of steps at lr 1e-4); the learning rate here is raised so that a
run ends in a minute or two on a laptop CPU. runs/toy_grid/samples/ holds
scatter plots of 2,500 samples over the true means (red), the number of
samples that VEEGAN and PacGAN score (evaluation/toy.py has their metrics).
"""

import ml_collections

from ganjax import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return configs.toy_mixture("grid", arg)
