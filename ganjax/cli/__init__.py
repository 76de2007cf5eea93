"""ganjax's command line: `python -m ganjax <command> [flags]`.

Each command is one module of this package, ganjax/cli/<command>_cmd.py, whose
entry function takes the flags after the command name (argv=None: sys.argv[1:]).
The suffix keeps module names unique in ganjax (ganjax/train.py is the training
loop, ganjax/evaluation/fid.py the metric). ganjax/__main__.py dispatches to them;
the console scripts ganjax-<command> of pyproject.toml call the same functions, and
`python -m ganjax.main` is the train command under the name the documentation uses.
shared.py holds the rules the commands share (flag style, --checkpoint, errors).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Command:
  entry: str    # "module:function", as a console script names it
  summary: str


COMMANDS = {
    "train": Command("ganjax.cli.train_cmd:run",
                     "train an experiment; the same command again resumes it"),
    "evaluate": Command("ganjax.cli.evaluate_cmd:main",
                        "score a run's checkpoint with the metrics that fit it; writes"
                        " <workdir>/eval.json"),
    "sample": Command("ganjax.cli.sample_cmd:main",
                      "write generated samples of a run to an .npz file or PNG images"),
    "translate": Command("ganjax.cli.translate_cmd:main",
                         "translate your own images with a trained CycleGAN"),
    "fid": Command("ganjax.cli.fid_cmd:main",
                   "FID (and KID, IS, precision/recall) between two sets of images, as"
                   " pytorch-fid computes it"),
    "experiments": Command("ganjax.cli.experiments_cmd:main",
                           "list the experiment files and their presets"),
}

EXAMPLES = [
    "python -m ganjax experiments",
    "python -m ganjax train --config experiments/gan.py",
    "python -m ganjax evaluate --workdir runs/gan",
    "python -m ganjax sample --workdir runs/gan --num 64 --output samples/",
]


def usage() -> str:
  """What `python -m ganjax --help` prints."""
  width = max(len(name) for name in COMMANDS)
  lines = ["usage: python -m ganjax <command> [flags]   (python -m ganjax <command> --help:"
           " its flags)", "", "commands:"]
  lines += [f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()]
  lines += ["", "Each command is also a console script, ganjax-<command>; python -m ganjax.main"
            " is the train command.", "", "examples:"]
  lines += [f"  {e}" for e in EXAMPLES]
  return "\n".join(lines)


def entry(name: str):
  """The entry function of command `name`."""
  import importlib  # pylint: disable=import-outside-toplevel
  module, _, function = COMMANDS[name].entry.partition(":")
  return getattr(importlib.import_module(module), function)
