"""Evaluates a trained run.

  python -m ganjax.evaluate --workdir W [--num_samples N] [--checkpoint STEP|best]
                            [--metrics all|cheap] [--inception_weights FILE]

Picks the metrics that fit the run's data and algorithm
(ganjax/evaluation/suite.py has the table), prints them and writes
<workdir>/eval.json:

- the 2D mixtures: modes captured, high-quality fraction and reverse KL of
  2,500 points, as VEEGAN and PacGAN define them;
- MNIST runs: the MNIST-classifier metrics (FID of classifier features, the
  Inception-Score analogue, label histogram, classes covered, KL from
  uniform); for conditional runs the conditioning accuracy and TSTR beside
  TRTR; and the Inception FID / IS / KID where the FID weights can be found;
- other image runs: Inception FID / IS / KID against the training data;
- CycleGAN: the FID of translations against the target domain, the cycle
  reconstruction error, and on the digit pair the fraction of translations
  that keep their digit class.
"""

import argparse
import os
import sys

from ganjax import seeds, train
from ganjax.errors import GanjaxError
from ganjax.evaluation import suite


def evaluate(workdir: str, num_samples: int | None = None, checkpoint: int | str | None = None,
             seed: int = 0, metrics: str = "all", inception_weights: str | None = None,
             batch_size: int = 200) -> dict:
  """The metrics of a run's checkpoint (default: the newest); also written to eval.json.

  A run of several seeds (num_seeds) is scored replica by replica: each number is the
  mean over seeds, with <name>_std and <name>_per_seed beside it.
  """
  config, state, step = train.load_run(workdir, checkpoint)
  evaluator = suite.Evaluator(config, level=metrics, num_samples=num_samples,
                              inception_weights=inception_weights, batch_size=batch_size,
                              seed=seed)
  if evaluator.empty:
    raise GanjaxError(" ".join(evaluator.notes))
  num_seeds = seeds.count(config)
  values = train.evaluate_seeds(evaluator, state, num_seeds)
  result = {"step": step, "checkpoint": "best" if checkpoint == "best" else step,
            "dataset": config.dataset, "algorithm": config.algorithm,
            "num_seeds": num_seeds, "seeds": seeds.replica_seeds(config),
            "num_samples": evaluator.num_samples, "metrics": metrics, **values}
  if evaluator.notes:
    result["notes"] = evaluator.notes
  train.write_json(os.path.join(workdir, "eval.json"), result)
  return result


def _shown(value) -> str:
  if isinstance(value, float):
    return f"{value:.4f}"
  if isinstance(value, list) and value and isinstance(value[0], float):
    return "[" + ", ".join(f"{v:.3f}" for v in value) + "]"
  return str(value)


def checkpoint_arg(text: str):
  """--checkpoint: a step, or 'best'."""
  if text == "best":
    return text
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is neither a step nor 'best'") from None


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m ganjax.evaluate", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--num_samples", type=int, default=None,
                      help="generated samples to score (default 2,500 points, 10,000 images;"
                      " translations: the test split)")
  parser.add_argument("--checkpoint", type=checkpoint_arg, default=None,
                      help="a step, or 'best' (the best by eval_every); default the newest")
  parser.add_argument("--metrics", choices=suite.LEVELS, default="all")
  parser.add_argument("--inception_weights", default=None,
                      help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth")
  parser.add_argument("--batch_size", type=int, default=200)
  parser.add_argument("--seed", type=int, default=0, help="of the latents")
  args = parser.parse_args(argv)
  try:
    result = evaluate(args.workdir, args.num_samples, args.checkpoint, args.seed, args.metrics,
                      args.inception_weights, args.batch_size)
  except GanjaxError as e:
    sys.exit(f"ganjax: error: {e}")
  notes = result.pop("notes", [])
  width = max(len(k) for k in result)
  for key, value in result.items():
    if any(key.endswith(end) and key[:-len(end)] in result for end in ("_std", "_per_seed")):
      continue  # shown beside the mean
    shown = _shown(value)
    if f"{key}_std" in result:
      shown += f" +- {result[key + '_std']:.4f}  (seeds: {_shown(result[key + '_per_seed'])})"
    print(f"{key:<{width}}  {shown}")
  for note in notes:
    print(f"note: {note}")
  print(f"ganjax: wrote {os.path.join(args.workdir, 'eval.json')}")


if __name__ == "__main__":
  main()
