"""Algorithm families; each module exposes validate, init, train_step, critic_iterations,
compiler_options, preview_inputs and preview (GAN-family modules also latent and sample;
cyclegan translate)."""

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
