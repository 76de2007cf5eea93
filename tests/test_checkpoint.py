"""Checkpoints: damaged steps are skipped and kept, interrupted saves never replace good ones."""

import asyncio
import glob
import os
import subprocess
import sys
import threading

import jax.numpy as jnp
import numpy as np
import pytest
from orbax.checkpoint._src.path import atomicity

from ganjax.checkpoint import Checkpoints
from ganjax.errors import GanjaxError

# A failed TensorStore read leaves a callback on a closed event loop inside orbax.
pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def state_at(step):
  return {"params": {"w": jnp.full((64, 64), float(step)), "b": jnp.arange(8.0) + step},
          "step": jnp.int32(step)}


def saved(directory, steps, keep=10):
  checkpoints = Checkpoints(directory, keep=keep)
  for step in steps:
    checkpoints.save(step, state_at(step))
  checkpoints.wait()
  return checkpoints


def tree_files(path):
  """{relative path: bytes} of every file under `path`."""
  out = {}
  for root, _, names in os.walk(path):
    for name in names:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = f.read()
  return out


def array_files(step_dir):
  """The data files of a step's arrays (orbax's OCDBT store), largest first."""
  files = glob.glob(os.path.join(step_dir, "default", "**", "d", "*"), recursive=True)
  return sorted(files, key=os.path.getsize, reverse=True)


def delete_array_files(step_dir):
  for f in array_files(step_dir):
    os.remove(f)


def truncate_largest_array_file(step_dir):
  path = array_files(step_dir)[0]
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def garble_metadata(step_dir):
  with open(os.path.join(step_dir, "default", "_METADATA"), "w", encoding="utf-8") as f:
    f.write('{"tree_metadata": {"par')


def garble_manifest(step_dir):
  with open(os.path.join(step_dir, "default", "manifest.ocdbt"), "wb") as f:
    f.write(b"\0" * 40)


def empty_step(step_dir):
  for path in sorted(glob.glob(os.path.join(step_dir, "**"), recursive=True), reverse=True):
    if path != step_dir and not path.endswith(os.sep):
      (os.rmdir if os.path.isdir(path) else os.remove)(path)


@pytest.mark.parametrize("damage", [delete_array_files, truncate_largest_array_file,
                                    garble_metadata, garble_manifest, empty_step])
def test_a_damaged_newest_step_is_skipped_kept_and_saved_again(tmp_path, damage):
  directory = str(tmp_path / "checkpoints")
  saved(directory, [2, 4, 6]).close()
  damage(os.path.join(directory, "6"))
  before = tree_files(os.path.join(directory, "6"))
  warnings = []
  checkpoints = Checkpoints(directory, keep=3)
  step, state = checkpoints.restore_latest(state_at(0), log=lambda m, lead=True: warnings.append(m))
  assert step == 4
  np.testing.assert_array_equal(state["params"]["w"], np.full((64, 64), 4.0))
  assert int(state["step"]) == 4
  # One warning naming the step and where it is kept; the files are all still there.
  assert len(warnings) == 1 and "checkpoint at step 6 cannot be read" in warnings[0]
  kept = os.path.join(directory, "6.unreadable")
  assert f"kept as {kept}" in warnings[0]
  assert tree_files(kept) == before
  # The resumed run saves step 6 again; the damaged copy stays, and no good step is lost.
  assert checkpoints.all_steps() == [2, 4]
  checkpoints.save(6, state_at(6))
  checkpoints.wait()
  assert checkpoints.all_steps() == [2, 4, 6]
  assert sorted(os.listdir(directory)) == ["2", "4", "6", "6.unreadable"]
  assert int(checkpoints.restore(6, state_at(0))["step"]) == 6
  checkpoints.close()


def test_walks_back_over_several_damaged_steps_and_keeps_each(tmp_path):
  directory = str(tmp_path / "checkpoints")
  saved(directory, [1, 2, 3]).close()
  delete_array_files(os.path.join(directory, "3"))
  garble_metadata(os.path.join(directory, "2"))
  os.makedirs(os.path.join(directory, "3.unreadable"))  # from an earlier resume
  warnings = []
  checkpoints = Checkpoints(directory)
  step, state = checkpoints.restore_latest(state_at(0), log=lambda m, lead=True: warnings.append(m))
  assert step == 1 and int(state["step"]) == 1
  assert [w.split("(")[0] for w in warnings] == [
      "warning: the checkpoint at step 3 cannot be read ",
      "warning: the checkpoint at step 2 cannot be read "]
  assert sorted(os.listdir(directory)) == ["1", "2.unreadable", "3.unreadable",
                                           "3.unreadable-2"]
  checkpoints.close()


def test_nothing_readable_starts_afresh_and_no_checkpoints_is_silent(tmp_path):
  warnings = []
  log = lambda m, lead=True: warnings.append(m)  # noqa: E731
  empty = Checkpoints(str(tmp_path / "none"))
  like = state_at(0)
  assert empty.restore_latest(like, log=log) == (0, like) and not warnings
  directory = str(tmp_path / "checkpoints")
  saved(directory, [5]).close()
  delete_array_files(os.path.join(directory, "5"))
  assert Checkpoints(directory).restore_latest(like, log=log) == (0, like)
  assert len(warnings) == 1 and os.path.isdir(os.path.join(directory, "5.unreadable"))


def test_a_checkpoint_of_another_state_is_an_error_not_damage(tmp_path):
  directory = str(tmp_path / "checkpoints")
  saved(directory, [2, 4]).close()
  before = tree_files(directory)
  other = {"params": {"w": jnp.zeros((64, 64))}, "step": jnp.int32(0)}  # another algorithm
  with pytest.raises(GanjaxError, match="step 4 .* does not fit this run's state.*fresh --workdir"):
    Checkpoints(directory).restore_latest(other)
  wider = {**state_at(0), "params": {"w": jnp.zeros((64, 32)), "b": jnp.zeros(8)}}
  with pytest.raises(GanjaxError, match=r"shape: \(64, 32\) is not compatible"):
    Checkpoints(directory).restore_latest(wider)
  assert tree_files(directory) == before  # nothing renamed or rewritten


class BlockedCommit:
  """Holds orbax's final rename of a save (tmp dir -> step dir) until released."""

  def __init__(self, monkeypatch):
    self.release = threading.Event()
    self.reached = threading.Event()
    original = atomicity.AtomicRenameTemporaryPath.finalize

    async def finalize(path_self, *args, **kwargs):
      self.reached.set()
      await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
      return await original(path_self, *args, **kwargs)

    monkeypatch.setattr(atomicity.AtomicRenameTemporaryPath, "finalize", finalize)


def test_old_steps_are_deleted_only_after_the_newer_save_completes(tmp_path, monkeypatch):
  directory = str(tmp_path / "checkpoints")
  checkpoints = saved(directory, [1, 2], keep=2)
  blocked = BlockedCommit(monkeypatch)
  checkpoints.save(3, state_at(3))  # asynchronous: returns while the write goes on
  try:
    assert blocked.reached.wait(60)
    names = sorted(os.listdir(directory))
    assert names[:2] == ["1", "2"] and names[2].startswith("3.orbax-checkpoint-tmp")
    reader = Checkpoints(directory)  # what a process resuming now would find
    assert reader.all_steps() == [1, 2]
    reader.close()
  finally:
    blocked.release.set()
  checkpoints.wait()
  assert sorted(os.listdir(directory)) == ["2", "3"]  # step 1 goes only now
  checkpoints.close()


KILLED_WHILE_SAVING = """
import os, signal, sys, threading
import jax.numpy as jnp
from orbax.checkpoint._src.path import atomicity
from ganjax.checkpoint import Checkpoints
from tests.test_checkpoint import state_at

checkpoints = Checkpoints(sys.argv[1], keep=2)
for step in (1, 2):
  checkpoints.save(step, state_at(step))
checkpoints.wait()
async def finalize(*args, **kwargs):  # the process dies just before the save completes
  os.kill(os.getpid(), signal.SIGKILL)
atomicity.AtomicRenameTemporaryPath.finalize = finalize
checkpoints.save(3, state_at(3))
checkpoints.wait()
"""


def test_a_process_killed_while_saving_loses_nothing(tmp_path):
  directory = str(tmp_path / "checkpoints")
  result = subprocess.run([sys.executable, "-c", KILLED_WHILE_SAVING, directory], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": ROOT})
  assert result.returncode == -9, result.stderr[-2000:]
  names = sorted(os.listdir(directory))
  assert names[:2] == ["1", "2"] and names[2].startswith("3.orbax-checkpoint-tmp"), names
  warnings = []
  checkpoints = Checkpoints(directory, keep=2)
  step, state = checkpoints.restore_latest(state_at(0), log=lambda m, lead=True: warnings.append(m))
  assert step == 2 and int(state["step"]) == 2
  assert len(warnings) == 1 and "never completed" in warnings[0] and names[2] in warnings[0]
  # The resumed run saves step 3 for real; the two newest complete steps remain.
  checkpoints.save(3, state_at(3))
  checkpoints.wait()
  assert checkpoints.all_steps() == [2, 3]
  checkpoints.close()
