"""python -m ganjax <command> [flags]: the commands of ganjax/cli/ (--help lists them)."""

import difflib
import os
import sys

from ganjax import cli


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(cli.usage())
    sys.exit(0 if argv else 2)
  name, rest = argv[0], argv[1:]
  if name not in cli.COMMANDS:
    close = difflib.get_close_matches(name, list(cli.COMMANDS), n=1, cutoff=0.5)
    hint = f"did you mean {close[0]!r}? " if close else ""
    sys.exit(f"ganjax: error: {name!r} is not a command; {hint}the commands are"
             f" {', '.join(cli.COMMANDS)} (python -m ganjax --help)")
  # The train command's absl flags (and ml_collections' config overrides) read sys.argv.
  sys.argv = [f"{sys.argv[0]} {name}", *rest]
  try:
    cli.entry(name)(rest)
  except BrokenPipeError:  # the output went to a pipe that closed early (| head)
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)


if __name__ == "__main__":
  main()
