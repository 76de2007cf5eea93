"""Conditional GAN (Mirza and Osindero 2014) with DCGAN networks.

Run (offline, CPU, a few minutes; writes runs/cgan):

  python -m ganjax.main --config experiments/cgan.py

Presets (combine them with a comma, e.g. experiments/cgan.py:cifar10,wgan_gp):
  (none)      bundled:mnist padded to 32x32x1, 10 classes, width 32, batch 64,
              the non-saturating GAN loss.
  cifar10     tfds:cifar10, 32x32x3, 10 classes, width 64, batch 128.
  wgan_gp     the WGAN-GP objective instead (gradient penalty 10, LayerNorm
              critic, Adam 1e-4 (0, 0.9), 5 critic updates per generator update).
  projection  the projection discriminator (Miyato and Koyama 2018) instead of
              one-hot label channels.

Both networks see the class label. The generator concatenates a learned
10-dimensional label embedding to its 100-dimensional noise; the discriminator takes the
label as 10 one-hot channels concatenated to the image
(--config.conditioning=concat) or through a projection head
(--config.conditioning=projection). The fakes of each critic update carry the
labels of the real batch beside them. The sample grids in runs/cgan/samples/
have one row per class (0 to 9 from the top) and one latent vector per column.

The embedding's size matters: with a 50-dimensional N(0, 1)
embedding the generator learned to ignore its noise (each class drawn as one
digit, a within-class mode collapse that neither minibatch stddev nor the
projection discriminator undid in 1,000 steps), while the 10-dimensional
one keeps the samples of a class varied. The discriminator's BatchNorm over
a fake batch (which detects a batch of identical samples) cannot detect a
collapse within each class, since a batch still holds ten different digits.
"""

import ml_collections

from ganjax import configs

# Each preset with one line for python -m ganjax experiments (which shows the default too).
PRESETS = {
    "cifar10": "CIFAR-10 32x32x3 at width 64, batch 128 (presets combine: cifar10,wgan_gp)",
    "wgan_gp": "the WGAN-GP objective (penalty 10, LayerNorm critic, 5 critic updates)",
    "projection": "the projection discriminator (Miyato and Koyama 2018)",
}


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  parts = [p for p in (arg or "").split(",") if p]
  unknown = [p for p in parts if p not in PRESETS]
  if unknown:
    raise ValueError(f"experiments/cgan.py has no preset {unknown[0]!r}; presets:"
                     f" {', '.join(PRESETS)} (combine them with commas)")
  c = configs.adversarial()
  c.algorithm = "gan"
  c.loss = "non_saturating"
  c.num_classes = 10
  c.conditioning = "concat"
  c.label_dim = 10
  configs.cpu_sized(c)
  c.num_train_steps = 3000
  c.num_samples = 100  # 10 classes x 10 latents

  if "wgan_gp" in parts:
    configs.wgan_gp_objective(c)
    c.num_train_steps = 2000
    c.log_every = 25
  if "projection" in parts:
    c.conditioning = "projection"
  if "cifar10" in parts:
    configs.tfds_preset(c, "tfds:cifar10", 32, num_train_steps=50_000)
    c.batch_size = 128
  return c
