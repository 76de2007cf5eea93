"""The checks every experiment's config passes before anything is built.

Each algorithm's `validate(config)` calls `common(config)` first and then
checks its own keys, so a run is checked once, in one place, before a mesh, a
state, a data pipeline or a workdir exists: `train_and_evaluate` calls only
`algorithm.validate`. Every failure is one GanjaxError naming the key, its
value and the fix.
"""

from ganjax import data, seeds
from ganjax.errors import GanjaxError

REQUIRED_KEYS = ("algorithm", "dataset", "batch_size", "num_train_steps", "seed")
COUNTS = ("num_train_steps", "log_every", "sample_every", "checkpoint_every",
          "keep_checkpoints", "num_samples", "batch_size")
DTYPES = ("float32", "bfloat16")


def choice(config, key: str, allowed) -> None:
  """Raises unless config[key] is one of `allowed`."""
  if config[key] not in allowed:
    raise GanjaxError(f"{key}={config[key]!r} is not one of {', '.join(map(str, allowed))};"
                      f" set --config.{key}")


def required(config) -> None:
  """Raises unless the config has the keys every experiment sets."""
  missing = [k for k in REQUIRED_KEYS if k not in config]
  if missing:
    raise GanjaxError(f"the config has no {', '.join(missing)}; every experiment sets"
                      f" {', '.join(REQUIRED_KEYS)}")


def common(config) -> None:
  """The keys every experiment has: what to run, for how long, how to report, the
  compute dtype, the EMA and the learning-rate schedule."""
  required(config)
  for key in COUNTS:
    if config[key] < 1:
      raise GanjaxError(f"{key}={config[key]} must be at least 1")
  if config.get("eval_every", 0) < 0:
    raise GanjaxError(f"eval_every={config.eval_every} must be at least 0 (0 = no evaluation"
                      " during training)")
  if config.get("eval_metrics", "cheap") not in ("cheap", "all"):
    raise GanjaxError(f"eval_metrics={config.eval_metrics!r} is unknown; use cheap or all")
  seeds.count(config)
  if config.get("on_nonfinite", "stop") not in ("stop", "rollback"):
    raise GanjaxError(f"on_nonfinite={config.on_nonfinite!r} is unknown; use stop (end the run"
                      " at the first NaN) or rollback (go back to the last checkpoint once)")
  if not 0 < config.get("rollback_lr_factor", 0.5) < 1:
    raise GanjaxError(f"rollback_lr_factor={config.rollback_lr_factor} must be between 0 and 1"
                      " (the learning rates are multiplied by it after a rollback)")
  data.parse_spec(config.dataset)
  if config.get("dtype", "float32") not in DTYPES:
    raise GanjaxError(f"dtype={config.dtype!r} is not one of {', '.join(DTYPES)}; set"
                      " --config.dtype=float32 (or bfloat16 to compute in bfloat16 with"
                      " float32 parameters)")
  if not 0.0 <= config.get("ema_decay", 0.0) < 1.0:
    raise GanjaxError(f"ema_decay={config.ema_decay} must be in [0, 1) (0 = no EMA; 0.999 is"
                      " common)")
  if not 0.0 <= config.get("lr_decay_start", 1.0) <= 1.0:
    raise GanjaxError(f"lr_decay_start={config.lr_decay_start} must be a fraction of the run"
                      " in [0, 1]: the learning rates are constant until then and fall"
                      " linearly to 0 at the end (1.0: constant; 0.5: the second half decays)")
