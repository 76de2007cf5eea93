"""Trains an experiment: python -m ganjax.main --config experiments/gan.py[:preset].

  --config experiments/gan.py:cifar10   an experiment file and an optional preset
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
"""

import difflib
import importlib.util
import os
import re
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import configs, train
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


def default_workdir(config_arg: str) -> str:
  """runs/<experiment>[-<preset>] for a --config value like experiments/gan.py:cifar10."""
  path, _, preset = config_arg.partition(":")
  name = os.path.splitext(os.path.basename(path))[0]
  preset = re.sub(r"[^A-Za-z0-9_.,-]+", "-", preset).strip("-")  # tfds:cycle_gan/x -> tfds-cycle_gan-x
  return os.path.join("runs", f"{name}-{preset}" if preset else name)


def parse_flags(argv):
  """absl flag parsing, with config mistakes (unknown key, bad value, bad preset) as one line."""
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


def _known_values() -> dict:
  """The keys of the --config experiment with their values (ganjax's defaults if it won't load)."""
  try:
    path, _, preset = flags.FLAGS["config"].config_filename.partition(":")
    spec = importlib.util.spec_from_file_location("ganjax_experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.get_config(preset or None))
  except Exception:  # pylint: disable=broad-except  # a broken file has its own error
    return dict(configs.defaults("gan"))


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
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # orbax and jax are chatty at INFO
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
  try:
    initialize_distributed()
    train.train_and_evaluate(_CONFIG.value, workdir)
  except GanjaxError as e:
    sys.exit(f"ganjax: error: {e}")


def run():
  """The `ganjax-train` console script: the same as python -m ganjax.main."""
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  run()
