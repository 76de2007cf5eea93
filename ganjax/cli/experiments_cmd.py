"""Lists the experiment files and their presets: python -m ganjax experiments [NAME].

An experiment is a file experiments/<name>.py with `get_config(preset)`: its
docstring describes it, and its module-level PRESETS maps each preset's name to
a one-line description (a name with <...>, such as folder:<path>, stands for a
family of presets). Each preset is listed with what its config trains: the
algorithm, the dataset and the number of generator steps. Train one with
python -m ganjax train --config experiments/<name>.py[:<preset>]. With NAME,
the experiment's whole docstring is printed as well.

The experiments are found in --experiments_dir, else experiments/ in the
current directory, else experiments/ of the checkout that holds this ganjax.
"""

import dataclasses
import importlib.util
import os
import textwrap

from ganjax.cli import shared
from ganjax.errors import GanjaxError

EXAMPLES = [
    "python -m ganjax experiments",
    "python -m ganjax experiments cgan          # its docstring too",
    "python -m ganjax train --config experiments/cgan.py:cifar10,wgan_gp",
]
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclasses.dataclass
class Preset:
  name: str            # "" for the experiment's default
  description: str
  config: object       # its ConfigDict; None for a family (a name with <...>)
  error: str = ""      # why get_config refused it


@dataclasses.dataclass
class Experiment:
  name: str
  path: str
  doc: str
  presets: list


def find_dir(given: str | None = None) -> str:
  """The folder of experiment files (see the module's docstring for the order)."""
  candidates = [given] if given else ["experiments", os.path.join(CHECKOUT, "experiments")]
  for folder in candidates:
    if os.path.isdir(folder):
      return folder
  if given:
    raise GanjaxError(f"--experiments_dir {given} is not a folder; give the experiments/"
                      " folder of a ganjax checkout")
  raise GanjaxError("no experiments/ folder here or in the ganjax checkout; run from a ganjax"
                    " checkout or give --experiments_dir DIR")


def _build(module, name: str):
  """(config, error) of one preset."""
  try:
    return module.get_config(name or None), ""
  except Exception as e:  # pylint: disable=broad-except  # listed with its reason
    return None, f"{type(e).__name__}: {e}"


def load(path: str) -> Experiment:
  """An experiment file's docstring and presets, each preset's config built."""
  name = os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(f"ganjax_experiment_{name}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except Exception as e:  # pylint: disable=broad-except
    raise GanjaxError(f"cannot load {path}: {type(e).__name__}: {e}") from e
  if not hasattr(module, "get_config"):
    raise GanjaxError(f"{path} has no get_config(preset); an experiment file defines one")
  presets = [Preset("", "", *_build(module, ""))]
  for preset, description in dict(getattr(module, "PRESETS", {})).items():
    if "<" in preset:
      presets.append(Preset(preset, description, None))
    else:
      presets.append(Preset(preset, description, *_build(module, preset)))
  return Experiment(name, path, (module.__doc__ or "").strip(), presets)


def load_all(folder: str) -> list[Experiment]:
  names = sorted(n for n in os.listdir(folder) if n.endswith(".py") and not n.startswith("_"))
  return [load(os.path.join(folder, n)) for n in names]


def facts(config) -> str:
  """What a config trains, in a few words."""
  steps = f"{config.num_train_steps:,} steps"
  return f"{config.algorithm} on {config.dataset}, {steps}"


def show(experiment: Experiment, full: bool = False) -> str:
  """An experiment's title, then each preset: its --config value and what it trains, and
  under it the preset's description."""
  title = experiment.doc.splitlines()[0] if experiment.doc else ""
  path = os.path.relpath(experiment.path)
  path = experiment.path if path.startswith("..") else path
  lines = [f"{experiment.name}: {title}"]
  if full and experiment.doc:
    lines += [f"  {l}".rstrip() for l in experiment.doc.splitlines()[1:]] + [""]
  specs = [path + (f":{p.name}" if p.name else "") for p in experiment.presets]
  width = max(len(s) for s in specs)
  for spec, preset in zip(specs, experiment.presets):
    what = (facts(preset.config) if preset.config is not None else
            f"cannot build: {preset.error}" if preset.error else "")
    wrapped = textwrap.wrap(preset.description, max(40, 88 - width - 4)) if preset.name else []
    if not what and wrapped:  # a family of presets: its description on the first line
      what = wrapped.pop(0)
    lines.append(f"  {spec:<{width}}  {what}".rstrip())
    lines += [" " * (width + 4) + line for line in wrapped]
  return "\n".join(lines)


def make_parser() -> shared.Parser:
  """The experiments command's flags."""
  parser = shared.Parser("experiments", __doc__, EXAMPLES)
  parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                      help="one experiment (gan, experiments/gan.py): print its docstring too")
  parser.add_argument("--experiments_dir", default=None, metavar="DIR",
                      help="the folder of experiment files; default experiments/ here, else"
                           " the checkout's")
  return parser


def main(argv=None) -> None:
  """The experiments command; `argv`: its flags (default sys.argv[1:])."""
  parser = make_parser()
  args = parser.parse_args(argv)
  try:
    folder = find_dir(args.experiments_dir)
    if args.name:
      name = os.path.splitext(os.path.basename(args.name))[0]
      path = os.path.join(folder, name + ".py")
      if not os.path.isfile(path):
        known = sorted(os.path.splitext(n)[0] for n in os.listdir(folder) if n.endswith(".py"))
        raise GanjaxError(f"{folder} has no experiment {args.name!r}; the experiments are"
                          f" {', '.join(known)}")
      print(show(load(path), full=True))
      return
    experiments = load_all(folder)
  except GanjaxError as e:
    shared.fail(e)
  print("Each experiment file, first with its default setting, then with each preset.\n"
        "Train one with python -m ganjax train --config FILE[:PRESET]; python -m ganjax"
        " experiments NAME\nprints an experiment's whole description.\n")
  print("\n\n".join(show(e) for e in experiments))
