"""Algorithm families; each module exposes validate, init, train_step, discriminator_updates,
preview_inputs and preview (GAN-family modules also latent, sample and
sampling_variables; cyclegan translate). `init`, `train_step`, `preview`, `sample`
and `translate` take a keyword `backend` (ganjax/backend.py) that the caller resolves
once per run; its default is the stock Flax layers."""

import importlib

from ganjax.errors import GanjaxError

ALGORITHMS = {
    "gan": "ganjax.algorithms.gan",
    "wgan": "ganjax.algorithms.wgan",
    "wgan_gp": "ganjax.algorithms.wgan",
    "sngan": "ganjax.algorithms.sngan",
    "cyclegan": "ganjax.algorithms.cyclegan",
}


def get(name: str):
  if name not in ALGORITHMS:
    raise GanjaxError(f"algorithm={name!r} is unknown; use one of {', '.join(ALGORITHMS)}")
  return importlib.import_module(ALGORITHMS[name])
