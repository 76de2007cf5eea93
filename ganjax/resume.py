"""Refusing to resume a workdir with a config that would train something else.

A workdir's checkpoints hold a state whose shapes, and whose meaning, follow
from the config saved beside them in config.json. Running the same command
again resumes; a changed key that only says how long to train, how often to
report, or how to evaluate is fine (`RESUMABLE`); any other changed key
(algorithm, dataset, networks, objective, optimiser, batch size, seed ...) is
refused before anything in the workdir is touched, with a message that lists
the differing keys and the two ways out.
"""

import json
import os

from ganjax import configs
from ganjax.errors import GanjaxError

# Keys a resumed run may change. A changed num_train_steps with lr_decay_start < 1 also
# moves the decay: the resumed run is then not the run that was started.
RESUMABLE = frozenset({
    "num_train_steps", "log_every", "sample_every", "num_samples", "checkpoint_every",
    "keep_checkpoints", "eval_every", "eval_metrics", "eval_samples", "inception_weights",
    "tfds_data_dir", "dtype", "on_nonfinite", "rollback_lr_factor",
})


def _plain(config) -> dict:
  """A ConfigDict (or dict) as the JSON values train.py writes to config.json."""
  if isinstance(config, dict):
    return json.loads(json.dumps(config))
  return json.loads(config.to_json_best_effort())


def resume_conflicts(saved: dict, config) -> list[tuple[str, object, object]]:
  """(key, saved value, new value) for each key outside RESUMABLE that differs.

  A key the saved config lacks (ganjax gained it after the run started)
  compares against its neutral default; keys only the saved config has are
  ignored. `algorithm` comes first when it differs.
  """
  new = _plain(config)
  algorithm = saved.get("algorithm", new.get("algorithm", "gan"))
  defaults = _plain(configs.defaults(algorithm))
  out = []
  for key in sorted(new, key=lambda k: (k != "algorithm", k)):
    if key in RESUMABLE:
      continue
    if key in saved:
      old = saved[key]
    elif key in defaults:
      old = defaults[key]
    else:
      continue
    if old != new[key]:
      out.append((key, old, new[key]))
  return out


def conflict_error(workdir: str, conflicts, shown: int = 8) -> GanjaxError:
  """One line naming the differing keys, their saved and new values, and the fix."""
  listed = ", ".join(f"{k} {old!r} (saved) vs {new!r} (now)" for k, old, new in conflicts[:shown])
  if len(conflicts) > shown:
    listed += f" and {len(conflicts) - shown} more ({', '.join(k for k, _, _ in conflicts[shown:])})"
  if conflicts[0][0] == "algorithm":
    fix = "rerun the experiment that started it"
  else:
    fix = "resume it with the saved values (" + " ".join(
        f"--config.{k}={old}" for k, old, _ in conflicts) + ")"
  return GanjaxError(
      f"{workdir} holds checkpoints of a run with another config: {listed}; {fix}, or start a"
      f" fresh --workdir (a resumed run may change only {', '.join(sorted(RESUMABLE))})")


def saved_steps(workdir: str) -> list[int]:
  """The checkpoint steps in <workdir>/checkpoints (complete or not), without orbax."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return []
  return sorted(int(n) for n in os.listdir(directory) if n.isdigit())


def check_resume(config, workdir: str) -> None:
  """Raises a GanjaxError if `workdir` has checkpoints saved under a conflicting config.

  Reads <workdir>/config.json only; writes nothing. A workdir without
  checkpoints (a new run, or one that stopped before its first checkpoint)
  takes any config.
  """
  path = os.path.join(workdir, "config.json")
  if not saved_steps(workdir) or not os.path.isfile(path):
    return
  try:
    with open(path, encoding="utf-8") as f:
      saved = configs.upgrade(json.load(f))
  except (OSError, ValueError) as e:
    raise GanjaxError(f"cannot read {path} ({e}), the config the checkpoints in {workdir}"
                      " were saved with; restore that file or start a fresh --workdir") from e
  conflicts = resume_conflicts(saved, config)
  if conflicts:
    raise conflict_error(workdir, conflicts)
