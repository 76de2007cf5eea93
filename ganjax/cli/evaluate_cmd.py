"""Evaluates a trained run: the metrics of one of its checkpoints.

Picks the metrics that fit the run's data and algorithm
(ganjax/evaluation/suite.py has the table), prints them and writes
<workdir>/eval.json:

- the 2D mixtures: modes captured, high-quality fraction and reverse KL of
  2,500 points, as VEEGAN and PacGAN define them; precision, recall, density
  and coverage of the points against as many points of the mixture;
- MNIST runs: the MNIST-classifier metrics (FID of classifier features, the
  Inception-Score analogue, label histogram, classes covered, KL from
  uniform, precision / recall / density / coverage of classifier features);
  for conditional runs the conditioning accuracy and TSTR beside TRTR; and
  the Inception metrics where the FID weights can be found;
- other image runs: the sliced Wasserstein distance of Laplacian-pyramid
  patches against the training images (swd; needs no weights, so
  --metrics cheap scores any image run offline), and the Inception metrics
  against the training data: FID, IS, KID, precision, recall, density,
  coverage;
- CycleGAN: the FID of translations against the target domain, the cycle
  reconstruction error, and on the digit pair the fraction of translations
  that keep their digit class.

Protocols (ganjax/evaluation/suite.py): by default the quick one (10,000
images against the first 10,000 training images); --num_samples 50000 runs
the standard one, against the whole training split, with the Inception
Score over 10 splits of 5,000. --reference names another dataset (a spec,
such as tfds:cifar10) or an .npz reference file; a dataset's statistics are
measured once and cached (ganjax/evaluation/reference.py). eval.json records
beside the scores what they were measured under: protocol, n_fake, n_real,
the reference, the Inception weights' SHA-256 and the checkpoint's
(checkpoint_sha256, over its networks' weights).
"""

import os

from ganjax import seeds, train
from ganjax.cli import shared
from ganjax.errors import GanjaxError
from ganjax.evaluation import suite

EXAMPLES = [
    "python -m ganjax evaluate --workdir runs/cgan          # table + runs/cgan/eval.json",
    "python -m ganjax evaluate --workdir runs/cgan --checkpoint best --metrics cheap",
    "python -m ganjax evaluate --workdir runs/gan-cifar10 --num_samples 50000  # standard",
]


def evaluate(workdir: str, num_samples: int | None = None, checkpoint: int | str | None = None,
             seed: int = 0, metrics: str = "all", inception_weights: str | None = None,
             batch_size: int = 200, reference: str | None = None) -> dict:
  """The metrics of a run's checkpoint (default: the newest); also written to eval.json.

  A run of several seeds (num_seeds) is scored replica by replica: each number is the
  mean over seeds, with <name>_std and <name>_per_seed beside it.
  """
  config, state, step = train.load_run(workdir, checkpoint)
  evaluator = suite.Evaluator(config, level=metrics, num_samples=num_samples,
                              inception_weights=inception_weights, batch_size=batch_size,
                              seed=seed, reference=reference)
  if evaluator.empty:
    raise GanjaxError(" ".join(evaluator.notes))
  num_seeds = seeds.count(config)
  values = train.evaluate_seeds(evaluator, state, num_seeds)
  result = {"step": step, "checkpoint": "best" if checkpoint == "best" else step,
            "dataset": config.dataset, "algorithm": config.algorithm,
            "num_seeds": num_seeds, "seeds": seeds.replica_seeds(config),
            "num_samples": evaluator.num_samples, "metrics": metrics,
            **evaluator.record(), "checkpoint_sha256": suite.weights_sha256(state), **values}
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


def make_parser() -> shared.Parser:
  """The evaluate command's flags."""
  parser = shared.Parser("evaluate", __doc__, EXAMPLES)
  parser.add_argument("--workdir", required=True, help="the training run's --workdir")
  shared.add_checkpoint(parser)
  parser.add_argument("--num_samples", type=shared.integer(1), default=None, metavar="N",
                      help="generated samples to score (default 2,500 points, 10,000 images;"
                      " translations: the test split); 50000 is the standard protocol")
  parser.add_argument("--metrics", choices=suite.LEVELS, default="all",
                      help="all, or cheap: without the Inception network; default all")
  parser.add_argument("--inception_weights", default=None, metavar="FILE",
                      help=shared.INCEPTION_WEIGHTS_HELP)
  parser.add_argument("--reference", default=None, metavar="SPEC|FILE",
                      help="the real images of the Inception metrics: a dataset spec"
                      " (bundled:mnist, tfds:<name>, folder:<path>; its training split,"
                      " measured once and cached) or an .npz reference file; default the"
                      " run's dataset")
  parser.add_argument("--batch_size", type=shared.integer(1), default=200, metavar="N",
                      help="images per generator and network call; default 200")
  parser.add_argument("--seed", type=int, default=0, help="of the latents; default 0")
  return parser


def main(argv=None) -> None:
  """The evaluate command; `argv`: its flags (default sys.argv[1:])."""
  shared.run_on_workdir(make_parser(), argv, evaluate_and_print)


def evaluate_and_print(args) -> None:
  """Evaluates as the parsed flags say and prints the table."""
  result = evaluate(args.workdir, args.num_samples, args.checkpoint, args.seed, args.metrics,
                    args.inception_weights, args.batch_size, args.reference)
  notes = result.pop("notes", [])
  width = max(len(k) for k in result)
  # Means over seeds come with <name>_std and <name>_per_seed; a metric's own std
  # (inception_score_std, kid_std) has no _per_seed beside it and is a row of its own.
  over_seeds = {k for k in result if f"{k}_std" in result and f"{k}_per_seed" in result}
  for key, value in result.items():
    if any(key in (f"{k}_std", f"{k}_per_seed") for k in over_seeds):
      continue  # shown beside the mean
    shown = _shown(value)
    if key in over_seeds:
      shown += f" +- {result[key + '_std']:.4f}  (seeds: {_shown(result[key + '_per_seed'])})"
    print(f"{key:<{width}}  {shown}")
  for note in notes:
    print(f"note: {note}")
  print(f"ganjax: wrote {os.path.join(args.workdir, 'eval.json')}")


if __name__ == "__main__":
  main()
