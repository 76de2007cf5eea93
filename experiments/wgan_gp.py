"""WGAN-GP: Wasserstein GAN with a gradient penalty (Gulrajani et al. 2017).

Run (offline, CPU; writes runs/wgan_gp):

  python -m ganjax.main --config experiments/wgan_gp.py

Presets:
  (none)    bundled:mnist padded to 32x32x1, DCGAN networks at width 32, batch 64.
  cifar10   tfds:cifar10, 32x32x3, width 64.

As in the paper's Algorithm 1: the penalty 10 * (||grad D(x_hat)||_2 - 1)^2 at
x_hat = u x + (1 - u) G(z), one u ~ U[0, 1] per example; no BatchNorm in the
critic (LayerNorm here; d_norm='none' also works, d_norm='batch' is refused);
Adam lr 1e-4, beta1 0, beta2 0.9; 5 critic updates per generator update.
Logged: d_loss, wasserstein (E[D(x)] - E[D(G(z))]), gradient_penalty and the
gradient norms.
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "cifar10": "CIFAR-10 32x32x3 at width 64",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = configs.adversarial()
  configs.wgan_gp_objective(c)
  configs.cpu_sized(c)
  c.num_train_steps = 2000
  c.log_every = 25
  c.sample_every = 250

  if arg == "cifar10":
    configs.tfds_preset(c, "tfds:cifar10", 32, num_train_steps=100_000)
  elif arg:
    raise ValueError(f"experiments/wgan_gp.py has no preset {arg!r}; presets: {', '.join(PRESETS)}")
  return c
