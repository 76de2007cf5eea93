"""Checkpoints of the whole training state in <workdir>/checkpoints (orbax).

Saves are asynchronous: the state is copied off the devices before `save`
returns, and written while training goes on. A checkpoint directory becomes
visible under its step number only once it is complete, so an interrupted save
never hides the previous one, and old checkpoints are deleted only after a
newer one is committed.
"""

import os

import jax
import orbax.checkpoint as ocp

from ganjax.errors import GanjaxError


class Checkpoints:
  """The run's checkpoints: the newest `keep` are kept."""

  def __init__(self, directory: str, keep: int = 3):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=True)
    self._manager = ocp.CheckpointManager(self.directory, options=options)

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
      if "tree structures do not match" not in str(e) and "shape" not in str(e):
        raise
      detail = " ".join(str(e).split("\n")[1:4]).strip()
      raise GanjaxError(
          f"the checkpoint at step {step} in {self.directory} does not fit this run's"
          f" state ({detail}): it was saved by another algorithm or configuration, or by an"
          " older ganjax; use a fresh --workdir") from e

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
