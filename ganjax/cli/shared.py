"""What the commands share: their argument parser, --checkpoint, and integer flags.

Rules every command follows:

- flags are snake_case, as absl's and ml_collections' are (--num_samples,
  --batch_size); the fid command also takes pytorch-fid's spellings of its
  flags (--batch-size, --save-stats, --dims, --device, --num-workers);
- one name per concept: --workdir (a training run's directory), --checkpoint
  (which of its checkpoints), --output (where a command writes), --inception_weights
  (the FID Inception weights file, as the config key of the same name);
- a mistake is one line on stderr, "ganjax: error: ..." naming the value and
  the fix, and exit status 1, whether the parser refuses a flag or the command
  finds something wrong later (ganjax.errors.GanjaxError);
- abbreviations of flags are not accepted (--num is not --num_samples), so that
  a new flag never changes what an old command line means;
- every --help ends with example commands.
"""

import argparse
import difflib
import os
import sys

from ganjax import backend
from ganjax.errors import GanjaxError

CHECKPOINT_HELP = ("which checkpoint of the run: a saved step (e.g. 2000), 'best' (the best"
                   " by eval_every, kept in <workdir>/best) or 'newest'; default the newest")
INCEPTION_WEIGHTS_HELP = ("pytorch-fid's FID Inception weights,"
                          " pt_inception-2015-12-05-6726825d.pth (the config key"
                          " inception_weights); default"
                          " $GANJAX_INCEPTION_WEIGHTS, else the file in $GANJAX_CACHE (default"
                          " ~/.cache/ganjax), downloaded there once")
REPLICA_HELP = ("which seed of a run that trained several (num_seeds): replica I is the"
                " run's seed + I; default 0")


def checkpoint_arg(text: str) -> int | str | None:
  """--checkpoint: a saved step -> int, 'best' -> 'best', 'newest' -> None (the newest)."""
  value = text.strip().lower()
  if value == "newest":
    return None
  if value == "best":
    return "best"
  if not (value.isascii() and value.isdigit()):
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a checkpoint; give a saved step (e.g. 2000), 'best' or 'newest'")
  return int(value)


def add_checkpoint(parser: argparse.ArgumentParser) -> None:
  """--checkpoint STEP|best|newest, as every command that reads a run's checkpoint takes it."""
  parser.add_argument("--checkpoint", type=checkpoint_arg, default=None,
                      metavar="STEP|best|newest", help=CHECKPOINT_HELP)


def check_best(workdir: str, checkpoint: int | str | None) -> None:
  """Refuses --checkpoint best for a run that has kept no best checkpoint yet, in one line
  with the fix (a run keeps one at each evaluation, every eval_every steps)."""
  from ganjax import train  # pylint: disable=import-outside-toplevel
  from ganjax.errors import GanjaxError  # pylint: disable=import-outside-toplevel
  best = os.path.join(workdir, train.BEST_DIR)
  if checkpoint == "best" and os.path.isdir(best) and not any(
      name.isdigit() for name in os.listdir(best)):
    raise GanjaxError(f"--checkpoint best: {workdir} has kept no best checkpoint yet (one is"
                      " kept at each evaluation, every eval_every steps); give a step or"
                      " 'newest'")


def add_replica(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--replica", type=integer(0), default=0, metavar="I", help=REPLICA_HELP)


def integer(minimum: int):
  """An argparse type: an integer of at least `minimum`, refused in one line otherwise."""
  def parse(text: str) -> int:
    try:
      value = int(text)
    except ValueError:
      raise argparse.ArgumentTypeError(
          f"{text!r} is not an integer; give one of at least {minimum}") from None
    if value < minimum:
      raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give at least {minimum}")
    return value
  parse.__name__ = f"integer of at least {minimum}"
  return parse


def error_line(message: str) -> str:
  """The one line every command prints for a mistake."""
  return "ganjax: error: " + " ".join(line.strip() for line in str(message).splitlines())


def fail(error: Exception):
  """Exits with status 1 and the error's one line (for a GanjaxError found after parsing)."""
  sys.exit(error_line(error))


def run_on_workdir(parser: argparse.ArgumentParser, argv, action):
  """A command on a run's workdir: parses `argv` (default sys.argv[1:]), tunes the host for
  a CPU run, checks that a `--checkpoint best` exists, and returns `action(args)`; a
  GanjaxError is one line and exit status 1."""
  args = parser.parse_args(argv)
  backend.tune_host_if_cpu()
  try:
    check_best(args.workdir, args.checkpoint)
    return action(args)
  except GanjaxError as e:
    fail(e)


class Parser(argparse.ArgumentParser):
  """argparse for one command: `python -m ganjax <command>`, an epilog of examples,
  no abbreviated flags, and one error line that names the flag and the fix."""

  def __init__(self, command: str, description: str, examples: list[str]):
    epilog = "examples:\n" + "\n".join(f"  {e}" for e in examples)
    super().__init__(prog=f"python -m ganjax {command}", description=description,
                     epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter,
                     allow_abbrev=False)
    self.command = command

  def long_flags(self) -> list[str]:
    return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

  def unknown_flag(self, flag: str) -> str:
    """The message for a flag this command does not have, with the one it likely means:
    its other spelling (--batch-size: --batch_size), a flag it is part of (--num:
    --num_samples, --weights: --inception_weights), or one like it (--out: --output)."""
    known = self.long_flags()
    snake, kebab = "--" + flag[2:].replace("-", "_"), "--" + flag[2:].replace("_", "-")
    guesses = [s for s in (snake, kebab) if s in known]
    guesses += [s for s in known if s.startswith(snake + "_") or s.endswith("_" + snake[2:])]
    guesses += difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
    hint = f"did you mean {guesses[0]}?" if guesses else f"{self.prog} --help lists the flags"
    return f"{self.prog} has no flag {flag}; {hint}"

  def parse_args(self, args=None, namespace=None):
    args = sys.argv[1:] if args is None else list(args)
    known = set(self.long_flags())
    for arg in args:
      if arg == "--":
        break
      if arg.startswith("--") and arg.split("=", 1)[0] not in known:
        self.error(self.unknown_flag(arg.split("=", 1)[0]))
    return super().parse_args(args, namespace)

  def error(self, message: str):
    if message.startswith("the following arguments are required"):
      message += f" ({self.prog} --help shows them)"
    sys.exit(error_line(message))
