"""Experiment configs for the tests, loaded from experiments/ as the command line does."""

import importlib.util
import pathlib

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[1] / "experiments"


def experiment_config(name: str, preset: str | None = None):
  spec = importlib.util.spec_from_file_location(f"experiment_{name}", EXPERIMENTS / f"{name}.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset)


def tiny_config(**overrides):
  """The default GAN experiment shrunk so that a step takes well under a second on the CPU."""
  config = experiment_config("gan")
  config.update(dict(g_width=8, d_width=8, latent_dim=16, batch_size=16, num_train_steps=4,
                     log_every=2, sample_every=2, checkpoint_every=2, num_samples=16))
  config.update(overrides)
  return config
