"""Algorithm families; each module exposes validate, init, train_step, sample, latent
and critic_iterations."""

import importlib

from ganjax.errors import GanjaxError

ALGORITHMS = {
    "gan": "ganjax.algorithms.gan",
    "wgan": "ganjax.algorithms.wgan",
    "wgan_gp": "ganjax.algorithms.wgan",
}


def get(name: str):
  if name not in ALGORITHMS:
    raise GanjaxError(f"algorithm={name!r} is unknown; use one of {', '.join(ALGORITHMS)}")
  return importlib.import_module(ALGORITHMS[name])
