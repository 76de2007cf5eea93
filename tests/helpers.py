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


EPS32 = float(__import__("numpy").finfo("float32").eps)


def float32_tolerance(terms: int, scale: float, factor: float = 2.0) -> float:
  """The absolute tolerance between two float32 computations of the same sums of `terms`
  products in different orders (other kernels, another CPU, another form): each
  reordering of a sum of n terms changes it by at most about n * eps * sum |terms|,
  with `scale` standing for that sum's size (the largest magnitude compared)."""
  return factor * terms * EPS32 * scale
