"""Translates your own images with a trained CycleGAN.

--input is an image file or a folder of them (png, jpg, jpeg, bmp, webp). Each
image is translated at its own size when the generator accepts it (height and
width divisible by 4); other sizes are resized to the nearest that are, and
the command says so. The outputs are PNGs named after the inputs. The
generators of the --checkpoint (default the newest) are used, their EMA
weights when the run kept them. Existing files are never overwritten without
--overwrite, and an input is never overwritten.
"""

import os

import jax
import numpy as np

from ganjax import backend
from ganjax.cli import shared
from ganjax.data import IMAGE_EXTENSIONS, decode_image
from ganjax.errors import GanjaxError

EXAMPLES = [
    "python -m ganjax translate --workdir runs/cyclegan-horse2zebra --input my_horses/"
    " --output zebras/",
    "python -m ganjax translate --workdir runs/cyclegan --input photo.jpg --output out/"
    " --direction BtoA",
    "python -m ganjax translate --workdir runs/cyclegan --input photos/ --output out/"
    " --checkpoint best --overwrite",
]


def load_run(workdir: str, checkpoint: int | str | None = None, replica: int = 0):
  """(config, state, step) of a CycleGAN run's checkpoint (default: the newest); of one
  replica when the run trained several seeds."""
  from ganjax import seeds, train  # pylint: disable=g-import-not-at-top
  config, state, step = train.load_run(workdir, checkpoint)
  if config.algorithm != "cyclegan":
    raise GanjaxError(f"{workdir} holds a {config.algorithm!r} run; translate needs a"
                      " CycleGAN run (experiments/cyclegan.py)")
  config, state = seeds.select(config, state, replica)
  return config, state, step


def list_images(path: str) -> list[str]:
  if os.path.isfile(path):
    return [path]
  if not os.path.isdir(path):
    raise GanjaxError(f"--input {path} does not exist; give an image file or a folder of images")
  files = sorted(os.path.join(path, f) for f in os.listdir(path)
                 if f.lower().endswith(IMAGE_EXTENSIONS))
  if not files:
    raise GanjaxError(f"--input {path} has no image files ({', '.join(IMAGE_EXTENSIONS)})")
  return files


def fit_size(image: np.ndarray) -> tuple[np.ndarray, str | None]:
  """uint8 [H, W, C] at a size the generator accepts (H and W divisible by 4, at least 8)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  nh, nw = max(8, round(h / 4) * 4), max(8, round(w / 4) * 4)
  if (nh, nw) == (h, w):
    return image, None
  pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
  resized = np.asarray(pil.resize((nw, nh), Image.BICUBIC)).reshape(nh, nw, image.shape[-1])
  return resized, f"resized from {w}x{h} to {nw}x{nh} (height and width must divide by 4)"


def translate_files(workdir: str, inputs: str, output: str, direction: str = "AtoB",
                    checkpoint: int | str | None = None, overwrite: bool = False,
                    replica: int = 0) -> list[str]:
  """Translates every image of `inputs` into `output`; returns the written paths."""
  from ganjax.algorithms import cyclegan  # pylint: disable=g-import-not-at-top
  from ganjax.logs import save_png  # pylint: disable=g-import-not-at-top
  if direction not in cyclegan.DIRECTIONS:
    raise GanjaxError(f"--direction {direction}: use AtoB or BtoA")
  files = list_images(inputs)
  targets = [os.path.join(output, os.path.splitext(os.path.basename(f))[0] + ".png")
             for f in files]
  sources = {os.path.realpath(f) for f in files}
  for target in targets:
    if os.path.realpath(target) in sources:
      raise GanjaxError(f"writing {target} would overwrite an input; choose another --output")
    if os.path.exists(target) and not overwrite:
      raise GanjaxError(f"{target} exists; choose another --output or pass --overwrite")
  config, state, step = load_run(workdir, checkpoint, replica)
  os.makedirs(output, exist_ok=True)
  run_backend = backend.resolve(algorithm=config.algorithm)
  apply = jax.jit(lambda s, x: cyclegan.translate(config, s, x, direction, run_backend))
  print(f"ganjax: translating {len(files)} image(s) {direction} with the checkpoint at step"
        f" {step} of {workdir}")
  for source, target in zip(files, targets):
    image, note = fit_size(decode_image("--input", source, config.channels))
    if note:
      print(f"ganjax: {source}: {note}")
    x = image.astype(np.float32)[None] * (2.0 / 255.0) - 1.0
    y = np.asarray(jax.device_get(apply(state, x)))[0]
    save_png(target, np.clip(np.rint((y + 1.0) * 127.5), 0, 255).astype(np.uint8))
  print(f"ganjax: wrote {len(targets)} image(s) to {output}")
  return targets


def make_parser() -> shared.Parser:
  """The translate command's flags."""
  parser = shared.Parser("translate", __doc__, EXAMPLES)
  parser.add_argument("--workdir", required=True, help="the CycleGAN run's --workdir")
  parser.add_argument("--input", required=True, metavar="FILE|DIR",
                      help="an image file or a folder of images")
  parser.add_argument("--output", required=True, metavar="DIR",
                      help="the folder for the translations")
  parser.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                      help="AtoB (default): domain A to B; BtoA: B to A")
  shared.add_checkpoint(parser)
  parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
  shared.add_replica(parser)
  return parser


def main(argv=None) -> None:
  """The translate command; `argv`: its flags (default sys.argv[1:])."""
  shared.run_on_workdir(make_parser(), argv, lambda args: translate_files(
      args.workdir, args.input, args.output, args.direction, args.checkpoint, args.overwrite,
      args.replica))


if __name__ == "__main__":
  main()
