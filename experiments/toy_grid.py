"""The grid mixture, the mode-collapse benchmark of VEEGAN and PacGAN.

Run (offline, CPU, one to two minutes; writes runs/toy_grid):

  python -m ganjax.main --config experiments/toy_grid.py
  python -m ganjax.main --config experiments/toy_grid.py:wgan_gp

Data: toy:grid, 25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05, fresh samples every step.
Networks, presets (none: the GAN loss; wgan_gp), run lengths and figures are
those of experiments/toy_ring.py (both come from configs.toy_mixture). The
grid's modes are 2 apart with std 0.05: a sample is of high quality within
0.15 of a mean. Score a run with python -m ganjax.evaluate --workdir runs/toy_grid.
"""

import ml_collections

from ganjax import configs


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return configs.toy_mixture("grid", arg)
