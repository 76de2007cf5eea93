"""SNGAN: a GAN whose discriminator is spectrally normalised (Miyato et al. 2018).

What differs from gan.py is the discriminator network alone (models/sngan.py): every
layer's weight is divided by an estimate of its largest singular value, which
bounds the discriminator's Lipschitz constant without clipping, a penalty or
BatchNorm. The power-iteration vectors of that estimate live in the state's
`batch_stats`, like BatchNorm statistics: updated by each discriminator update,
checkpointed, restored.

The objective is any of ganjax's (config.loss); experiments/sngan.py uses the
hinge loss of the paper's best results:
  discriminator     E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]
  generator  -E[D(G(z))]
The generator is DCGAN's (models/dcgan.py), as gan.py builds it.

The interface is every GAN-family algorithm's (see algorithms/__init__.py),
and all of it but the discriminator is gan.py's: the state (GANState), the train step
(discriminator updates in a `lax.scan`, the generator's forward pass reused for its
update through `jax.vjp`), the optimizers, the latents, the sampling and the
sample figures. This module supplies `models`, which builds the SN discriminator and
which `init` and `train_step` hand to gan.py's, and `validate`, which refuses
the options this discriminator does not implement.

The power iteration runs in every training-mode pass of the discriminator. The
discriminator updates keep the new `u` (gan.discriminator_update stores `batch_stats`); the
generator's update scores its fakes with the updated discriminator and discards
what that pass would store, as it does BatchNorm's statistics.
"""

from ganjax.algorithms import gan
from ganjax.algorithms.gan import (GANState, discriminator_updates, latent, preview_inputs,
                                   sampling_variables)
from ganjax.errors import GanjaxError
from ganjax.models import STOCK, Layers
from ganjax.models import sngan as sngan_models
from ganjax.parallel import AXIS

__all__ = ["GANState", "discriminator_updates", "init", "latent", "models", "preview",
           "preview_inputs", "sample", "sampling_variables", "train_step", "validate"]

# Options of gan.py that this discriminator does not implement, with the value that turns each off.
OFF = {"num_classes": 0, "feature_matching": 0.0, "gp_weight": 0.0, "weight_clip": 0.0}


def validate(config) -> None:
  """Raises GanjaxError for a config this algorithm cannot train."""
  gan.validate(config)  # includes the DCGAN generator's image sizes, 8, 16, 32, ...: all fit
  #                       the discriminator, which halves the image three times
  for key, off in OFF.items():
    if config[key] != off:
      raise GanjaxError(f"{key}={config[key]!r}: the SNGAN discriminator does not implement it;"
                        f" set --config.{key}={off}")
  if config.d_norm not in ("none", "layer"):
    raise GanjaxError(f"d_norm={config.d_norm!r}: the SNGAN discriminator takes no BatchNorm; set"
                      " --config.d_norm=none (spectral normalisation alone) or layer")
  if config.architecture != "dcgan":
    raise GanjaxError(f"architecture={config.architecture!r}: SNGAN uses the DCGAN generator"
                      " for images; set --config.architecture=dcgan")
  if config.get("dtype", "float32") != "float32":
    raise GanjaxError(f"dtype={config.dtype!r}: SNGAN computes in float32 only; set"
                      " --config.dtype=float32")


def models(config, axis_name: str | None = AXIS, layers: Layers = STOCK):
  """(DCGAN generator, spectrally normalised discriminator), built with `layers`' convolutions."""
  generator, _ = gan.models(config, axis_name, layers)
  discriminator = sngan_models.Discriminator(image_size=config.image_size, width=config.d_width,
                                      negative_slope=config.leaky_relu_slope,
                                      norm=config.d_norm,
                                      minibatch_stddev=config.minibatch_stddev,
                                      conv=layers.conv)
  return generator, discriminator


def init(config, rng, example_batch, **options) -> GANState:
  """A fresh state; the discriminator's `batch_stats` hold SpectralNorm's `u` and `sigma`."""
  return gan.init(config, rng, example_batch, networks=models, **options)


def train_step(config, state: GANState, batch, **options):
  """gan.py's step (n discriminator updates, then one generator update) with the SN
  discriminator."""
  return gan.train_step(config, state, batch, networks=models, **options)


def sample(config, state: GANState, z, labels=None, **options):
  """gan.py's sampling, of the generator that `models` builds."""
  return gan.sample(config, state, z, labels, networks=models, **options)


def preview(config, state, inputs, **options):
  return sample(config, state, *inputs, **options)

