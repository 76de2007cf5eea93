"""Writes generated samples of a trained run to an .npz file or PNG images.

FILE.npz holds `images`, uint8 [N, H, W, C] (or `points`, float32 [N, 2] for
the 2D mixtures), and for conditional models `labels`, int32 [N]. DIR gets one
PNG per image, 000000.png, ... (conditional: 000000_label3.png, ...). The same
seed gives the same samples. --labels picks the classes of a conditional
model: "all" (default) cycles through every class, one number asks for that
class only, a comma-separated list is cycled through. --replica picks one seed
of a run that trained several (num_seeds): replica I is the run's seed + I.
"""

import os

import jax
import numpy as np

from ganjax import data, logs, seeds, train
from ganjax.cli import shared
from ganjax.errors import GanjaxError
from ganjax.evaluation import suite

EXAMPLES = [
    "python -m ganjax sample --workdir runs/gan --num 64 --output samples/      # PNG images",
    "python -m ganjax sample --workdir runs/cgan --num 1000 --output cgan.npz --labels 3",
    "python -m ganjax sample --workdir runs/gan --num 10000 --output fake.npz --checkpoint best",
]


def parse_labels(text: str | None, n: int, num_classes: int) -> np.ndarray | None:
  """The labels of n samples: None for an unconditional model."""
  if not num_classes:
    if text not in (None, "all"):
      raise GanjaxError(f"--labels {text}: this model is unconditional (num_classes=0)")
    return None
  if text in (None, "all"):
    return np.arange(n, dtype=np.int32) % num_classes
  try:
    classes = [int(t) for t in text.split(",")]
  except ValueError:
    raise GanjaxError(f"--labels {text!r}: give all, a class, or classes separated by commas"
                      f" (0 to {num_classes - 1})") from None
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad:
    raise GanjaxError(f"--labels {text}: class {bad[0]} is outside 0..{num_classes - 1}")
  return np.resize(np.asarray(classes, np.int32), n)


def write_samples(output: str, samples: np.ndarray, labels: np.ndarray | None,
                  points: bool) -> str:
  """Writes samples to an .npz file or a directory of PNGs; returns what was written."""
  if output.endswith(".npz"):
    arrays = {"points": samples.astype(np.float32)} if points else {
        "images": suite.to_uint8(samples)}
    if labels is not None:
      arrays["labels"] = labels
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = output[:-4] + f".tmp{os.getpid()}.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, output)
    return f"{len(samples)} samples to {output}"
  if points:
    raise GanjaxError(f"--output {output}: 2D points go to an .npz file, not PNG images")
  if os.path.exists(output) and not os.path.isdir(output):
    raise GanjaxError(f"--output {output} is a file; give a directory or a path ending in .npz")
  os.makedirs(output, exist_ok=True)
  images = suite.to_uint8(samples)
  for i, image in enumerate(images):
    name = f"{i:06d}" + (f"_label{labels[i]}" if labels is not None else "") + ".png"
    logs.save_png(os.path.join(output, name), image)
  return f"{len(images)} PNG images to {output}"


def sample(workdir: str, num: int, output: str, labels: str | None = None,
           checkpoint: int | str | None = None, seed: int = 0, batch_size: int = 200,
           replica: int = 0) -> str:
  if num < 1:
    raise GanjaxError(f"--num {num} must be at least 1")
  config, state, step = train.load_run(workdir, checkpoint)
  if config.algorithm == "cyclegan":
    raise GanjaxError(f"{workdir} is a CycleGAN run: it translates images rather than"
                      " sampling noise; use python -m ganjax translate")
  config, state = seeds.select(config, state, replica)
  y = parse_labels(labels, num, config.get("num_classes", 0))
  samples = suite.generate(config, state, num, jax.random.PRNGKey(seed), y, batch_size)
  points = data.parse_spec(config.dataset).kind == "toy"
  return f"step {step}: wrote " + write_samples(output, samples, y, points)


def make_parser() -> shared.Parser:
  """The sample command's flags."""
  parser = shared.Parser("sample", __doc__, EXAMPLES)
  parser.add_argument("--workdir", required=True, help="the training run's --workdir")
  parser.add_argument("--num", type=int, required=True, metavar="N",
                      help="number of samples")
  parser.add_argument("--output", required=True, metavar="FILE.npz|DIR",
                      help="an .npz file, or a directory for PNG images")
  parser.add_argument("--labels", default=None, metavar="all|C|C,C,...",
                      help="the classes of a conditional model: all (default), a class, or"
                      " classes separated by commas")
  shared.add_checkpoint(parser)
  parser.add_argument("--seed", type=int, default=0, help="of the latents; default 0")
  parser.add_argument("--batch_size", type=shared.integer(1), default=200, metavar="N",
                      help="samples per generator call; default 200")
  shared.add_replica(parser)
  return parser


def main(argv=None) -> None:
  """The sample command; `argv`: its flags (default sys.argv[1:])."""
  shared.run_on_workdir(make_parser(), argv, lambda args: print("ganjax: " + sample(
      args.workdir, args.num, args.output, args.labels, args.checkpoint, args.seed,
      args.batch_size, args.replica)))


if __name__ == "__main__":
  main()
