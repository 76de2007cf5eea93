"""The grid mixture, the mode-collapse benchmark of VEEGAN and PacGAN.

Run (offline, CPU, one to two minutes each; writes runs/toy_grid, runs/toy_grid-wgan_gp):

  python -m ganjax.main --config experiments/toy_grid.py
  python -m ganjax.main --config experiments/toy_grid.py:wgan_gp
  python benchmarks/toy_seeds.py experiments/toy_grid.py:wgan_gp --seeds 10

  python -m ganjax.main --config experiments/toy_grid.py:pacgan_paper --config.pack=2 \
      --workdir runs/pacgan/grid_pack2   # PacGAN's protocol, 10 seeds (toy_ring.py)

Data: toy:grid, 25 Gaussians on {-4, -2, 0, 2, 4}^2 with std 0.05, fresh samples every step.
Networks, presets (none: the GAN loss; wgan_gp), learning rates and their
decay are those of experiments/toy_ring.py (both come from
configs.toy_mixture); the grid runs 2,500 GAN steps (the ring 3,000) and 1,500
WGAN-GP steps (the ring 500), and its WGAN-GP penalty weight is 1.0, not 0.1.
The WGAN-GP gets the longer run because it gains most from more steps.
The grid's modes are 2 apart with std 0.05: a sample is of high quality within
0.15 of a mean. Score a run with python -m ganjax evaluate --workdir runs/toy_grid.

Expected (10 seeds, 2,500 samples each, docs/toy_mixtures.md): GAN 16.1 +- 1.8
modes (min 14), 11.2% +- 4.1% high quality (min 4.5%): far from converged;
WGAN-GP 25/25 modes on every seed, 74.7% +- 2.9% high quality (min 68.6%),
reverse KL 0.014. The 10 seeds took 11 and 19 minutes on a 2-core AMD EPYC
(AVX2) shared with other jobs, JAX 0.10.2.

The grid is far harder in a few thousand steps than the ring (PacGAN trains
both for 400,000): the GAN's points still run along lines between the modes.
Tuning runs, seed 0 (modes, high-quality fraction; constant lr 5e-4 for 3,000
GAN steps gave 16/25, 0.07):
  GAN      lr 5e-4, decay 0.5, 3,000 steps                   22/25, 0.10
           lr 1e-3, decay 0.5, 3,000 steps                   17/25, 0.34
           lr 1e-3, decay 1.0, 3,000 steps                   20/25, 0.07
           lr 5e-4, decay 0.5, 3,000 steps, no G BatchNorm    1/25, 0.02
           lr 5e-4, decay 0.5, 3,000 steps, uniform noise    20/25, 0.14
  WGAN-GP  lr 5e-4, decay 0.5, 1,000 steps, penalty 0.1      23/25, 0.21
           lr 5e-4, decay 0.5, 1,000 steps, penalty 1.0      25/25, 0.19
           lr 1e-3, decay 0.5, 1,000 steps, penalty 1.0      25/25, 0.47
           lr 1e-3, decay 0.5,   800 steps, penalty 1.0      25/25, 0.28 (seed 1: 0.23)
           lr 1e-3, decay 0.5, 1,500 steps, penalty 1.0      25/25, 0.76 (chosen)
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "wgan_gp": "WGAN-GP as toy_ring's, with penalty 1.0",
    "wgan_gp_pack2": "WGAN-GP with PacGAN packing 2, 128-unit networks, batch 128: every mode at"
                     " 95% high quality or more",
    "pacgan_paper": "PacGAN's published protocol (Table 1): 400,000 steps, 10 seeds; --config.pack=1..4",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return configs.toy_mixture("grid", arg)
