"""Evaluates a trained run: python -m ganjax.evaluate --workdir W [--num_samples N] [--checkpoint STEP].

Picks the metrics that fit the run's data, prints them as a table and writes
<workdir>/eval.json. So far: the 2D mixtures (toy:ring, toy:grid), scored as
VEEGAN and PacGAN score them on 2,500 samples: modes captured, the fraction
of high-quality samples, and the reverse KL of the mode histogram
(ganjax/evaluation/toy.py). The image metrics (FID, IS, KID, the MNIST
classifier metrics) are not built yet; for an image run this says so.
"""

import argparse
import os
import sys

import jax
import numpy as np

from ganjax import algorithms, data, train
from ganjax.errors import GanjaxError


def evaluate(workdir: str, num_samples: int | None = None, checkpoint: int | None = None,
             seed: int = 0) -> dict:
  """The metrics of a run's checkpoint; also written to <workdir>/eval.json."""
  config, state, step = train.load_run(workdir, checkpoint)
  spec = data.parse_spec(config.dataset)
  if spec.kind != "toy":
    raise GanjaxError(f"evaluate: no metrics for dataset={config.dataset!r} yet (image"
                      " metrics are not built); it evaluates toy:ring and toy:grid runs")
  from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
  algorithm = algorithms.get(config.algorithm)
  n = num_samples or toy.EVAL_SAMPLES
  z = algorithm.latent(config, jax.random.PRNGKey(seed), n)
  points = np.asarray(jax.device_get(jax.jit(
      lambda s, z: algorithm.sample(config, s, z))(state, z)))
  metrics = toy.mode_metrics(points, spec.name)
  result = {"step": step, "dataset": config.dataset, "num_samples": n, **metrics}
  train.write_json(os.path.join(workdir, "eval.json"), result)
  return result


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m ganjax.evaluate", description=__doc__)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--num_samples", type=int, default=None)
  parser.add_argument("--checkpoint", type=int, default=None, help="a step; default the newest")
  args = parser.parse_args(argv)
  try:
    result = evaluate(args.workdir, args.num_samples, args.checkpoint)
  except GanjaxError as e:
    sys.exit(f"ganjax: error: {e}")
  width = max(len(k) for k in result)
  for key, value in result.items():
    shown = f"{value:.4f}" if isinstance(value, float) else str(value)
    print(f"{key:<{width}}  {shown}")
  print(f"ganjax: wrote {os.path.join(args.workdir, 'eval.json')}")


if __name__ == "__main__":
  main()
