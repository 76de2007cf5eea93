"""python -m ganjax.main --config experiments/gan.py[:preset]: the train command.

The same as python -m ganjax train and the console script ganjax-train; the
command itself is ganjax/cli/train_cmd.py (--help lists its flags).
"""

from ganjax.cli.train_cmd import run

if __name__ == "__main__":
  run()
