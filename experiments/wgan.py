"""WGAN with weight clipping (Arjovsky, Chintala and Bottou 2017).

Run (offline, CPU; writes runs/wgan):

  python -m ganjax.main --config experiments/wgan.py

Presets:
  (none)    bundled:mnist padded to 32x32x1, DCGAN networks at width 32, batch 64.
  cifar10   tfds:cifar10, 32x32x3, width 64.

As in the paper and its reference code: a DCGAN critic (with BatchNorm) whose
output is linear, the Wasserstein loss, every critic weight clipped to
[-0.01, 0.01] after each critic update, RMSProp lr 5e-5, 5 critic updates per
generator update, and 100 critic updates for the first 25 generator
iterations and every 500th (critic_warmup). Logged: d_loss (the critic loss),
wasserstein (the estimate E[D(x)] - E[D(G(z))], which should fall as samples
improve), clipped_fraction, and the gradient norms.
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "cifar10": "CIFAR-10 32x32x3 at width 64",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  c = configs.adversarial()
  c.algorithm = "wgan"
  c.loss = "wasserstein"
  c.weight_clip = 0.01
  c.d_norm = "batch"
  c.optimizer = "rmsprop"
  c.g_lr = c.d_lr = 5e-5
  c.n_critic = 5
  c.critic_warmup = True
  configs.cpu_sized(c)
  c.num_train_steps = 2000
  c.log_every = 25
  c.sample_every = 250

  if arg == "cifar10":
    configs.tfds_preset(c, "tfds:cifar10", 32, num_train_steps=100_000)
  elif arg:
    raise ValueError(f"experiments/wgan.py has no preset {arg!r}; presets: {', '.join(PRESETS)}")
  return c
