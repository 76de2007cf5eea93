"""Pure GAN loss functions over discriminator (discriminator) outputs.

Each function takes unnormalised outputs (the discriminator applies no
sigmoid) and returns a scalar mean over the batch. Written with softplus so that they
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


# ----------------------------------------------------------------------------
# Other adversarial objectives. Each pair is (discriminator loss, generator loss),
# both minimised; logits are the discriminator's raw outputs.


def wasserstein_critic_loss(real_logits, fake_logits):
  """E[D(G(z))] - E[D(x)]: the discriminator maximises the Wasserstein estimate
  E[D(x)] - E[D(G(z))]."""
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


def wasserstein_generator_loss(fake_logits):
  """-E[D(G(z))] (Arjovsky et al. 2017)."""
  return -jnp.mean(fake_logits)


def hinge_critic_loss(real_logits, fake_logits):
  """E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] (Lim and Ye 2017; Miyato et al. 2018)."""
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def least_squares_critic_loss(real_logits, fake_logits, real_label: float = 1.0):
  """LSGAN (Mao et al. 2017), a=0, b=c=1: 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2]."""
  return 0.5 * jnp.mean((real_logits - real_label) ** 2) + 0.5 * jnp.mean(fake_logits ** 2)


def least_squares_generator_loss(fake_logits):
  """1/2 E[(D(G(z)) - c)^2] with c = 1."""
  return 0.5 * jnp.mean((fake_logits - 1.0) ** 2)


def gradient_penalty(discriminator, real, fake, key, weight: float = 10.0,
                     axis_name: str | None = None):
  """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)||_2 - 1)^2].

  x_hat = u x + (1 - u) G(z) with one u ~ U[0, 1] per example (not per pixel).
  The weights u are drawn from `key` for the whole batch. Inside a device map,
  `axis_name` names the mesh axis over which `real` and `fake` are this
  device's rows of the global batch: the u of the global batch are drawn on
  every device and each device takes its own rows, so every example gets the
  weight it gets on one device, whatever the device count. Without
  `axis_name` the batch given is the whole batch.
  `discriminator` maps a batch to one output per example and must treat examples
  independently (no BatchNorm, no minibatch statistics), so that the gradient
  of the sum of its outputs is each example's own gradient. Returns (penalty,
  per-example gradient norms). The norms are computed in float32 whatever
  dtype the discriminator computes in.
  """
  n = real.shape[0]
  if axis_name is None:
    u = jax.random.uniform(key, (n,), real.dtype)
  else:
    u = jax.random.uniform(key, (n * jax.lax.axis_size(axis_name),), real.dtype)
    u = jax.lax.dynamic_slice_in_dim(u, jax.lax.axis_index(axis_name) * n, n)
  u = u.reshape((n,) + (1,) * (real.ndim - 1))
  x_hat = u * real + (1.0 - u) * fake
  grads = jax.grad(lambda x: jnp.sum(discriminator(x)))(x_hat).astype(jnp.float32)
  norms = jnp.sqrt(jnp.sum(grads.reshape(grads.shape[0], -1) ** 2, axis=1))
  return weight * jnp.mean((norms - 1.0) ** 2), norms


# name -> (discriminator loss(real_logits, fake_logits, real_label), generator loss(fake_logits))
OBJECTIVES = {
    "non_saturating": (discriminator_loss, generator_loss_non_saturating),
    "minimax": (discriminator_loss, generator_loss_minimax),
    "wasserstein": (lambda r, f, real_label=1.0: wasserstein_critic_loss(r, f),
                    wasserstein_generator_loss),
    "hinge": (lambda r, f, real_label=1.0: hinge_critic_loss(r, f), wasserstein_generator_loss),
    "least_squares": (least_squares_critic_loss, least_squares_generator_loss),
}
# Objectives whose real target can be smoothed (one-sided label smoothing).
SMOOTHABLE = ("non_saturating", "minimax", "least_squares")


def mean_squared_error(outputs, target: float):
  """E[(outputs - target)^2]: the least-squares GAN terms as CycleGAN's reference writes
  them (torch.nn.MSELoss), without LSGAN's factor 1/2."""
  return jnp.mean((outputs - target) ** 2)


def l1(x, y):
  """E|x - y|, the cycle-consistency and identity losses of CycleGAN (Zhu et al. 2017)."""
  return jnp.mean(jnp.abs(x - y))
