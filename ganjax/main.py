"""Trains an experiment: python -m ganjax.main --config experiments/gan.py[:preset].

  --config experiments/gan.py:cifar10   an experiment file and an optional preset
  --config.batch_size=256               override any config key (unknown keys are errors)
  --workdir runs/my-run                 default runs/<experiment>[-<preset>]

Running the same command again resumes from the newest checkpoint in the workdir.
"""

import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from ganjax import train
from ganjax.errors import GanjaxError

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Experiment file and optional preset, e.g. experiments/gan.py:cifar10.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Directory for checkpoints, samples and metrics; default"
    " runs/<experiment>[-<preset>].")
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
  missing = re.search(r"Attempted \[.*?\]:\s*(\S+)\s*\[Errno \d+\] ([^:]+)", text)
  if missing:
    return f"cannot load --config {missing.group(1)}: {missing.group(2)}"
  if any(l.startswith("Traceback") for l in lines):
    lines = lines[-1:]  # an exception raised inside get_config: keep its own message
  message = " ".join(lines)
  if isinstance(error, (KeyError, AttributeError)) and len(lines) == 1:
    message = f"unknown config key {message.strip(chr(34) + chr(39))!r}"
  return message


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  logging.set_verbosity(logging.WARNING)  # orbax and jax are chatty at INFO
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS["config"].config_filename)
  try:
    train.train_and_evaluate(_CONFIG.value, workdir)
  except GanjaxError as e:
    sys.exit(f"ganjax: error: {e}")


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
