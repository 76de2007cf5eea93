"""Trains an experiment: python -m ganjax train --config experiments/gan.py[:preset].

The same command as python -m ganjax.main and the console script ganjax-train.

  --config experiments/gan.py:cifar10   an experiment file and an optional preset
                                        (python -m ganjax experiments lists them)
  --config.batch_size=256               override any config key (unknown keys are errors)
  --workdir runs/my-run                 default runs/<experiment>[-<preset>]

Running the same command again resumes from the newest checkpoint in the workdir.

Several hosts (a TPU pod slice, GPU machines) run the same command on every host
with --distributed; JAX finds the coordinator on Cloud TPU, SLURM and Open MPI.
Elsewhere name it, and each host's index:

  --coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=0   # on host 0
  --coordinator_address=10.0.0.1:1234 --num_processes=2 --process_id=1   # on host 1

Every host feeds its own slice of the global batch and must see the same --workdir
on a shared file system (NFS, or a bucket mounted with gcsfuse); process 0 writes the
logs and samples, every process writes its shards of each checkpoint.

--help shows these flags; --helpfull every flag of every module, and every key of
the --config experiment as a --config.<key> flag with its value.
"""

import difflib
import importlib.util
import os
import re
import sys
import textwrap

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import backend, configs, train
from ganjax.errors import GanjaxError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file and optional preset, e.g. experiments/gan.py:cifar10.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, samples and metrics; default"
    " runs/<experiment>[-<preset>].")
_DISTRIBUTED = flags.DEFINE_bool(
    "distributed", False, "Join the other hosts of a multi-host run"
    " (jax.distributed.initialize); implied by --coordinator_address.")
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0 in a multi-host run; default: found"
    " by JAX on Cloud TPU, SLURM and Open MPI.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in a multi-host run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0 ..."
                                   " num_processes - 1.")
flags.mark_flags_as_required(["config"])

# The flags --help shows, with their metavars; --helpfull shows every flag.
USER_FLAGS = {"config": "FILE[:PRESET]", "workdir": "DIR"}
DISTRIBUTED_FLAGS = {"distributed": None, "coordinator_address": "HOST:PORT",
                     "num_processes": "N", "process_id": "I"}
HELP_COLUMN = 36
HELP = ("-h", "-?", "--help", "--helpshort")
HELPFULL = ("--helpfull",)
EXAMPLES = [
    "python -m ganjax train --config experiments/gan.py",
    "python -m ganjax train --config experiments/gan.py:cifar10 --config.batch_size=256"
    " --workdir runs/cifar10",
    "python -m ganjax train --config experiments/cgan.py --helpfull     # every config key",
]


def default_workdir(config_arg: str) -> str:
  """runs/<experiment>[-<preset>] for a --config value like experiments/gan.py:cifar10."""
  path, _, preset = config_arg.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  preset = re.sub(r"[^A-Za-z0-9_.,-]+", "-", preset).strip("-")  # tfds:cycle_gan/x -> tfds-cycle_gan-x
  return os.path.join("runs", f"{name}-{preset}" if preset else name)


def parse_flags(argv):
  """absl flag parsing, with config mistakes (unknown key, bad value, bad preset) as one line.

  --help prints the flags a user needs (short_help), --helpfull every flag (full_help).
  """
  given = argv[1:argv.index("--")] if "--" in argv else argv[1:]
  if any(a in HELP for a in given):
    print(short_help())
    sys.exit(0)
  if any(a in HELPFULL for a in given):
    print(full_help(given))
    sys.exit(0)
  try:
    rest = flags.FLAGS(argv)
    _ = _CONFIG.value.keys()  # the file loads lazily: surface a missing or broken one here
    return rest
  except (flags.Error, AttributeError, KeyError, TypeError, ValueError, OSError) as e:
    sys.exit(f"ganjax: error: {config_error_message(e)}")


def config_error_message(error: Exception) -> str:
  """One line for an error raised while loading or overriding the config."""
  text = str(error).replace("\\n", "\n").replace("\\'", "'")
  lines = [l.strip() for l in text.splitlines() if l.strip()]
  unknown = re.search(r"Did you mean \"(\w+)\" instead of \"(\w+)\"", text)
  if unknown:
    return (f"unknown config key {unknown.group(2)!r}; did you mean {unknown.group(1)!r}?"
            " (the config is locked: only its own keys can be set)")
  bad_value = re.match(r"flag --config\.(\w+)=(.*?): ", text)
  if bad_value:
    key, value = bad_value.groups()
    example = _known_values().get(key)
    kind = {bool: "True or False", int: "an integer", float: "a number",
            str: "a string"}.get(type(example), type(example).__name__)
    hint = f", e.g. --config.{key}={example}" if example is not None else ""
    return f"--config.{key}={value}: {key} takes {kind}{hint}"
  flag = re.match(r"Unknown command line flag '([^']+)'(?:\. Did you mean: ([^ ?,]+))?", text)
  if flag:
    hint = f"did you mean --{flag.group(2)}?" if flag.group(2) else "--help lists the flags"
    return f"python -m ganjax train has no flag --{flag.group(1)}; {hint}"
  missing = re.search(r"Attempted \[.*?\]:\s*(\S+)\s*\[Errno \d+\] ([^:]+)", text)
  if missing:
    return f"cannot load --config {missing.group(1)}: {missing.group(2)}"
  if any(l.startswith("Traceback") for l in lines):
    lines = lines[-1:]  # an exception raised inside get_config: keep its own message
  message = " ".join(lines)
  if isinstance(error, (KeyError, AttributeError)) and len(lines) == 1:
    key = message.strip(chr(34) + chr(39))
    close = difflib.get_close_matches(key, list(_known_values()), n=1, cutoff=0.6)
    message = f"unknown config key {key!r}; " + (
        f"did you mean {close[0]!r}?" if close else
        "no key is like it (--helpfull lists the keys as --config.<key> flags)")
  return message


def load_experiment(config_arg: str):
  """The config of a --config value (experiments/gan.py:cifar10), unlocked and without
  command-line overrides."""
  path, _, preset = config_arg.partition(":")
  spec = importlib.util.spec_from_file_location("ganjax_experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(preset or None)


def _known_values() -> dict:
  """The keys of the --config experiment with their values (ganjax's defaults if it won't load)."""
  try:
    return dict(load_experiment(flags.FLAGS["config"].config_filename))
  except Exception:  # pylint: disable=broad-except  # a broken file has its own error
    return dict(configs.defaults("gan"))


def _flag_rows(names: dict) -> list[str]:
  rows = []
  for name, metavar in names.items():
    flag = flags.FLAGS[name]
    left = f"--[no]{name}" if flag.boolean else f"--{name} {metavar}"
    wrapped = textwrap.wrap(flag.help, 88 - HELP_COLUMN) or [""]
    rows.append(f"  {left:<{HELP_COLUMN - 4}}  {wrapped[0]}")
    rows += [" " * HELP_COLUMN + line for line in wrapped[1:]]
  return rows


def short_help() -> str:
  """What --help prints: the flags of a run and how to set config keys."""
  lines = ["usage: python -m ganjax train --config FILE[:PRESET] [--workdir DIR]"
           " [--config.KEY=VALUE ...]",
           "  (python -m ganjax.main and ganjax-train are the same command)", "",
           "Trains an experiment. The same command again resumes from the newest checkpoint"
           " in its workdir.", "", "flags:"]
  lines += _flag_rows(USER_FLAGS)
  overrides = textwrap.wrap("Sets a key of the experiment's config, e.g."
                            " --config.batch_size=256 --config.num_train_steps=5000; unknown"
                            " keys are errors. --config FILE --helpfull lists every key with"
                            " its value in that experiment.", 88 - HELP_COLUMN)
  lines += [f"  {'--config.KEY=VALUE':<{HELP_COLUMN - 4}}  {overrides[0]}"]
  lines += [" " * HELP_COLUMN + line for line in overrides[1:]]
  lines += ["", "multi-host flags (the same command on every host):"]
  lines += _flag_rows(DISTRIBUTED_FLAGS)
  lines += ["", "python -m ganjax experiments lists the experiment files and their presets;"
            " --helpfull lists", "every flag.", "", "examples:"]
  lines += [f"  {e}" for e in EXAMPLES]
  return "\n".join(lines)


def _config_arg(args: list[str]) -> str | None:
  """The value of --config in a command line, before absl has parsed it."""
  for i, arg in enumerate(args):
    if arg in ("--config", "-config") and i + 1 < len(args):
      return args[i + 1]
    if arg.startswith(("--config=", "-config=")):
      return arg.partition("=")[2]
  return None


def full_help(args: list[str]) -> str:
  """What --helpfull prints: the module's description, every flag of every module, and
  every key of the --config experiment (of ganjax's defaults without --config)."""
  config_arg = _config_arg(args)
  try:
    config = load_experiment(config_arg) if config_arg else configs.defaults("gan")
    title = (f"config keys of {config_arg} (set with --config.KEY=VALUE):" if config_arg else
             "config keys of ganjax's defaults (give --config FILE for an experiment's own"
             " keys and values; set with --config.KEY=VALUE):")
  except Exception as e:  # pylint: disable=broad-except  # the help still shows the flags
    config, title = {}, f"config keys: cannot load --config {config_arg} ({e})"
  keys = [f"  --config.{key}={value!r}" if value == "" else f"  --config.{key}={value}"
          for key, value in dict(config).items()]
  return "\n".join([__doc__.strip(), "", "flags:", flags.FLAGS.get_help(), "", title, *keys,
                    "", "examples:", *[f"  {e}" for e in EXAMPLES]])


def initialize_distributed() -> None:
  """jax.distributed.initialize for a multi-host run (CPU hosts join by gloo collectives)."""
  explicit = (_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  if not _DISTRIBUTED.value and all(v is None for v in explicit):
    return
  try:
    jax.distributed.initialize(*explicit)
  except (ValueError, TypeError) as e:  # missing or inconsistent flags
    raise GanjaxError(f"cannot join a multi-host run ({e}); give --coordinator_address,"
                      " --num_processes and --process_id, or run where JAX finds them"
                      " (Cloud TPU, SLURM, Open MPI)") from e


def main(argv):
  if len(argv) > 1:
    sys.exit(f"ganjax: error: unexpected arguments {' '.join(argv[1:])}; the train command"
             " takes flags only (--help lists them)")
  logging.set_verbosity(logging.WARNING)  # orbax and jax are chatty at INFO
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
  try:
    initialize_distributed()
    backend.tune_host_if_cpu()  # process-wide CPU settings, for a run on the CPU only
    train.train_and_evaluate(_CONFIG.value, workdir)
  except GanjaxError as e:
    sys.exit(f"ganjax: error: {e}")


def run(argv=None):
  """The train command: python -m ganjax train, python -m ganjax.main and the console
  script ganjax-train. `argv`: its flags (default sys.argv[1:])."""
  if argv is not None:
    sys.argv = [sys.argv[0], *argv]  # ml_collections reads the config overrides there
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
