"""WGAN (Arjovsky, Chintala and Bottou 2017) and WGAN-GP (Gulrajani et al. 2017).

Both train a discriminator (the papers' "critic") with a linear, unbounded
output to maximise the Wasserstein estimate E[D(x)] - E[D(G(z))] and the
generator to maximise E[D(G(z))]. They differ in how they keep the
discriminator (roughly) 1-Lipschitz:

  WGAN     clips every discriminator weight to [-c, c] after each of its updates
           (config.weight_clip = 0.01), RMSProp lr 5e-5, n_critic = 5, and the
           reference schedule of 100 discriminator updates for the first 25
           generator iterations and every 500th (config.critic_warmup).
  WGAN-GP  adds lambda * (||grad D(x_hat)||_2 - 1)^2 at random interpolates
           x_hat of real and fake examples (config.gp_weight = 10); no
           BatchNorm in the discriminator; Adam lr 1e-4, beta1 0, beta2 0.9, n_critic 5.

The step itself is gan.py's: the n_critic discriminator updates run in a
`lax.scan` inside one jitted step, and clipping and the penalty are its options.
"""

from ganjax.algorithms import gan
from ganjax.algorithms.gan import (GANState, discriminator_updates, init, latent, preview,
                                   preview_inputs, sample, sampling_variables, train_step)
from ganjax.errors import GanjaxError

__all__ = ["GANState", "discriminator_updates", "init", "latent", "preview", "preview_inputs",
           "sample", "sampling_variables", "train_step", "validate"]


def validate(config) -> None:
  gan.validate(config)
  if config.loss != "wasserstein":
    raise GanjaxError(f"loss={config.loss!r}: algorithm={config.algorithm!r} trains with"
                      " loss='wasserstein'; for other losses use algorithm='gan'")
  if (config.weight_clip > 0) == (config.gp_weight > 0):
    raise GanjaxError(
        f"weight_clip={config.weight_clip}, gp_weight={config.gp_weight}: a Wasserstein"
        " discriminator needs exactly one Lipschitz constraint, weight clipping (WGAN, 0.01) or"
        " the gradient penalty (WGAN-GP, 10)")
