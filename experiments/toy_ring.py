"""The ring mixture, the mode-collapse benchmark of VEEGAN and PacGAN.

Run (offline, CPU, one to two minutes each; writes runs/toy_ring, runs/toy_ring-wgan_gp):

  python -m ganjax.main --config experiments/toy_ring.py
  python -m ganjax.main --config experiments/toy_ring.py:wgan_gp
  python -m ganjax evaluate --workdir runs/toy_ring     # modes, high-quality fraction
  python benchmarks/toy_seeds.py experiments/toy_ring.py --seeds 10   # over seeds

Data: toy:ring, 8 Gaussians on the unit circle with std 0.01, fresh samples every step.
Networks (models/mlp.py) as in PacGAN's 2D experiments: 2-d Gaussian noise, a
generator of 4 hidden layers of 400 ReLU units with BatchNorm and a linear
output, a discriminator of 3 hidden layers of 200 units (LeakyReLU(0.2) where
PacGAN uses maxout) and one logit; batch 256.

Presets:
  (none)    the non-saturating GAN loss, Adam beta1 0.5, lr 1e-3 for 1,500 steps,
            then falling linearly to 0 over 1,500 more (lr_decay_start 0.5): 3,000 steps.
  wgan_gp   WGAN-GP with the toy setting of its authors' gan_toy.py: penalty
            weight 0.1, no BatchNorm, 5 critic updates per generator update,
            Adam (0, 0.9); lr 1e-3 with the same decay, 500 generator steps.
  wgan_gp_pack2  that WGAN-GP with PacGAN packing 2 (the discriminator scores pairs
            of points), networks of 128 units, batch 128, 20,000 steps;
            expected (10 seeds): 8/8 modes on every seed, 98.0% +- 0.3% high
            quality (min 97.4%); on the grid (3 seeds) 25/25 modes, 92.7-96.2%.
  pacgan_paper  PacGAN's 2D protocol (Lin et al. 2018, Table 1), ten seeds in one
            program; --config.pack=2, 3, 4 give the PacGAN2-4 rows (below).

Expected (10 seeds, 2,500 samples each, docs/toy_mixtures.md): GAN 7.0 +- 0.8
modes (min 6), 89.5% +- 1.4% high quality (min 87.1%), the GAN's mode dropping
of PacGAN's table (6.3 modes); WGAN-GP 8/8 modes on every seed, 91.5% +- 1.0%
high quality (min 89.0%). A sample is of high quality within 3 std (0.03) of a
mean. The 10 seeds took 14 and 8 minutes on a 2-core AMD EPYC (AVX2) shared
with other jobs, JAX 0.10.2.

The PacGAN reference trains for 400 epochs of 100,000 points at batch 100
(400,000 steps) at lr 1e-4. Here the lr is raised and then decayed so that a
run ends in a minute or two on a CPU: the decay is what makes the points
precise (the GAN at a constant 5e-4 for 3,000 steps put 35% of its points
within 3 std). Tuning runs, seed 0 (modes, high-quality fraction):
  GAN      lr 5e-4, decay 0.5, 3,000 steps      7/8, 0.90
           lr 5e-4, decay 1.0, 2,000 steps      8/8, 0.78
           lr 5e-4, decay 0.5, 2,000 steps      8/8, 0.85 (seed 1: 7/8, 0.86)
           lr 1e-3, decay 0.5, 1,500 steps      7/8, 0.81 (10 seeds: 6.1 modes, 0.82)
           lr 1e-3, decay 0.5, 3,000 steps      7/8, 0.90 (chosen; 10 seeds: 7.0 modes, 0.90)
  WGAN-GP  lr 5e-4, decay 0.5, 1,000 steps      8/8, 0.94
           lr 5e-4, decay 0.5,   500 steps      8/8, 0.81
           lr 1e-3, decay 0.5,   500 steps      8/8, 0.89 (chosen)
The pacgan_paper preset (configs.pacgan_paper; both mixtures) follows the
authors' released 2DRing/2DGrid configuration and code: 100,000 points drawn
once per run, batch 100, 400,000 steps (400 epochs), one discriminator and one
generator step per batch taken simultaneously, Adam lr 1e-4 with beta1 0.2 (the
code's beta1=0.8 is Blocks' convention, one minus the usual one), a generator of
4 x 400 bias-free ReLU layers with BatchNorm, a discriminator of 3 x 200 maxout
units of 5 pieces, N(0, 0.02) weights and zero biases, 2-d N(0, 1) noise, and
2,500 samples scored. What ganjax does differently, or could not pin down:
  - with packing, the released code runs the generator once per packed slot, so
    BatchNorm's batch statistics are over 100 samples each and its running
    statistics average the slots'; ganjax runs it once over the 100 x pack samples;
  - each packed real input there draws its points from the set with replacement;
    ganjax reads the set in shuffled epochs of 100 x pack points per step;
  - BatchNorm's epsilon (Blocks' default) was not checked: ganjax uses 1e-5;
  - the paper's trials are seeded at random, ganjax's are seeds 0-9;
  - the released code scores after every epoch on one fixed latent batch; ganjax
    scores the final checkpoint (python -m ganjax evaluate) on its fixed key.
Run, one row per packing (7.7-9.7 steps/s for 10 seeds at pack 1 on a 2-core
Intel Xeon with AVX-512, JAX 0.10.2: 11.5-14.5 hours a row):
  python -m ganjax.main --config experiments/toy_ring.py:pacgan_paper \
      --config.pack=2 --workdir runs/pacgan/ring_pack2

runs/toy_ring/samples/ holds scatter plots of 2,500 samples over the true
means (red), the number of samples that VEEGAN and PacGAN score
(evaluation/toy.py has their metrics).
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "wgan_gp": "WGAN-GP in its authors' toy setting (penalty 0.1, no BatchNorm, 5 critic"
               " updates)",
    "wgan_gp_pack2": "WGAN-GP with PacGAN packing 2, 128-unit networks, batch 128: every mode at"
                     " 95% high quality or more",
    "pacgan_paper": "PacGAN's published protocol (Table 1): 400,000 steps, 10 seeds; --config.pack=1..4",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return configs.toy_mixture("ring", arg)
