"""Pure GAN loss functions over discriminator logits.

Each function takes unnormalised logits (the discriminator applies no sigmoid)
and returns a scalar mean over the batch. Written with softplus so that they
stay finite for large logits: -log(sigmoid(l)) = softplus(-l) and
-log(1 - sigmoid(l)) = softplus(l).
"""

import jax
import jax.numpy as jnp


def sigmoid_cross_entropy(logits, target):
  """Mean binary cross-entropy of sigmoid(logits) against a target in [0, 1]."""
  return jnp.mean(target * jax.nn.softplus(-logits) + (1.0 - target) * jax.nn.softplus(logits))


def discriminator_loss(real_logits, fake_logits, real_label: float = 1.0):
  """The GAN discriminator loss -E[log D(x)] - E[log(1 - D(G(z)))].

  `real_label` < 1 is one-sided label smoothing (Salimans et al. 2016): real
  examples are pushed towards that target and fake ones towards 0, never
  smoothed. The two terms are summed, as in the reference DCGAN.
  """
  return (sigmoid_cross_entropy(real_logits, real_label)
          + sigmoid_cross_entropy(fake_logits, 0.0))


def generator_loss_minimax(fake_logits):
  """The original minimax generator objective, minimised: E[log(1 - D(G(z)))].

  Its gradient vanishes when the discriminator confidently rejects the fakes,
  which is why the non-saturating loss is the default.
  """
  return -jnp.mean(jax.nn.softplus(fake_logits))


def generator_loss_non_saturating(fake_logits):
  """The non-saturating generator loss -E[log D(G(z))] (Goodfellow et al. 2014)."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


GENERATOR_LOSSES = {
    "non_saturating": generator_loss_non_saturating,
    "minimax": generator_loss_minimax,
}
