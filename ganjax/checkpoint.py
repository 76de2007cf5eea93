"""Checkpoints of the whole training state in <workdir>/checkpoints (orbax).

Saves are asynchronous: the state is copied off the devices before `save`
returns, and written while training goes on. On a local or shared file system
orbax writes a step into `<step>.orbax-checkpoint-tmp-<time>/` and renames it
to `<step>/` once complete (on GCS it writes `commit_success.txt` last), so a
save interrupted by a crash never shows up as a step. Old steps beyond `keep`
are deleted only after the newer save is committed (tests/test_checkpoint.py
checks both).

A step directory that exists but cannot be read (files deleted, truncated or
garbled after the fact) is skipped by `restore_latest`: it warns, renames the
directory to `<step>.unreadable` (orbax ignores that name; nothing is deleted)
and restores the step before it.
"""

import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from ganjax import logs
from ganjax.errors import GanjaxError

UNREADABLE = ".unreadable"  # suffix of a step directory that could not be restored
_TMP_MARK = ".orbax-checkpoint-tmp"


def _mismatch(error: Exception) -> bool:
  """Whether a restore failed because the saved tree does not fit the target (not corruption)."""
  text = str(error)
  return isinstance(error, ValueError) and ("tree structures do not match" in text
                                            or "is not compatible with the stored shape" in text)


def _agree(ok: bool) -> bool:
  """True only if `ok` holds on every process (a multi-host run decides as one)."""
  if jax.process_count() == 1:
    return ok
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return bool(np.all(multihost_utils.process_allgather(np.asarray(ok, np.int32))))


class Checkpoints:
  """The run's checkpoints: the newest `keep` are kept."""

  def __init__(self, directory: str, keep: int = 3):
    self.directory = os.path.abspath(directory)
    self.keep = keep
    self._manager = self._open()

  def _open(self):
    options = ocp.CheckpointManagerOptions(max_to_keep=self.keep, create=True,
                                           enable_async_checkpointing=True)
    return ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self._manager.all_steps())

  def save(self, step: int, state) -> None:
    self._manager.save(step, args=ocp.args.StandardSave(state), force=True)

  def restore(self, step: int, like):
    """The state saved at `step`, with the shapes, dtypes and shardings of `like`."""
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
    try:
      return self._manager.restore(step, args=ocp.args.StandardRestore(target))
    except ValueError as e:
      if not _mismatch(e):
        raise
      lines = str(e).split("\n")
      detail = " ".join(lines[1:4] if len(lines) > 1 else lines[0].split(". ")[:1]).strip()
      raise GanjaxError(
          f"the checkpoint at step {step} in {self.directory} does not fit this run's"
          f" state ({detail}): it was saved by another algorithm or configuration, or by an"
          " older ganjax; use a fresh --workdir") from e

  def restore_latest(self, like, log=logs.info) -> tuple[int, object]:
    """(step, state) of the newest checkpoint that can be read, or (0, like) if none.

    Unreadable steps are skipped, newest first: each is named in a warning and
    renamed to `<step>.unreadable`, so that the run can save that step again.
    A checkpoint that does not fit `like` (another algorithm or config) is a
    GanjaxError, not skipped. In a multi-host run every process must call this;
    a step counts as readable only if every process read it.
    """
    lead = jax.process_index() == 0
    for name in self.interrupted_saves():
      log(f"warning: {os.path.join(self.directory, name)} is a save that never completed"
          " (the process stopped while writing it); it is ignored", lead)
    for step in reversed(self.all_steps()):
      error = None
      try:
        state = self.restore(step, like)
      except GanjaxError:
        raise
      except Exception as e:  # pylint: disable=broad-except  # any failure to read is damage
        error = e
      if _agree(error is None):
        return step, state
      why = self._why(step, error)
      kept = self._set_aside(step, lead)
      log(f"warning: the checkpoint at step {step} cannot be read ({why}); it is kept as"
          f" {kept} and the run resumes from an earlier one", lead)
    return 0, like

  def _why(self, step: int, error: Exception | None) -> str:
    if error is None:
      return "another process could not read it"
    path = os.path.join(self.directory, str(step))
    if not any(files for _, _, files in os.walk(path)):
      return "its directory is empty"
    return f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"

  def interrupted_saves(self) -> list[str]:
    """Names of directories left by saves that never completed (orbax ignores them)."""
    if not os.path.isdir(self.directory):
      return []
    return sorted(n for n in os.listdir(self.directory) if _TMP_MARK in n)

  def _set_aside(self, step: int, lead: bool) -> str:
    """Renames step directory `step` to `<step>.unreadable[-k]` (process 0); its new path."""
    source = os.path.join(self.directory, str(step))
    target, k = source + UNREADABLE, 1
    while os.path.exists(target):
      k += 1
      target = f"{source}{UNREADABLE}-{k}"
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      target = str(multihost_utils.broadcast_one_to_all(np.frombuffer(
          target.encode().ljust(4096, b"\0"), np.uint8)).tobytes().rstrip(b"\0").decode())
    if lead:
      os.rename(source, target)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices(f"ganjax set aside step {step}")
    # A fresh manager: a failed restore can leave orbax's one with wrong beliefs about
    # the layout of every step (an empty step dir makes it expect several items).
    self._manager.close()
    self._manager = self._open()
    return target

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
