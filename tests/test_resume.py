"""Resuming with a config that changes what is trained is refused, naming the keys."""

import json
import os

import pytest

from ganjax import resume
from ganjax.errors import GanjaxError
from tests.helpers import experiment_config, tiny_config


def saved_json(config):
  return json.loads(config.to_json_best_effort())


def test_run_length_cadence_and_evaluation_may_change():
  saved = saved_json(tiny_config())
  new = tiny_config(num_train_steps=10_000, log_every=7, sample_every=9, checkpoint_every=11,
                    keep_checkpoints=1, eval_every=0, eval_metrics="all", eval_samples=5,
                    num_samples=9, tfds_data_dir="/data", inception_weights="/w.pth")
  assert resume.resume_conflicts(saved, new) == []


def test_keys_that_change_shapes_or_training_are_listed():
  saved = saved_json(tiny_config())
  new = tiny_config(g_width=16, batch_size=32, loss="hinge", g_lr=1e-3)
  assert resume.resume_conflicts(saved, new) == [
      ("batch_size", 16, 32), ("g_lr", 2e-4, 1e-3), ("g_width", 8, 16),
      ("loss", "non_saturating", "hinge")]
  message = str(resume.conflict_error("/runs/gan", resume.resume_conflicts(saved, new)))
  assert "\n" not in message
  assert message.startswith("/runs/gan holds checkpoints of a run with another config:"
                            " batch_size 16 (saved) vs 32 (now), g_lr 0.0002 (saved) vs 0.001 (now)")
  assert ("resume it with the saved values (--config.batch_size=16 --config.g_lr=0.0002"
          " --config.g_width=8 --config.loss=non_saturating), or start a fresh --workdir") in message


def test_another_algorithm_comes_first_and_long_lists_are_cut():
  conflicts = resume.resume_conflicts(saved_json(experiment_config("gan")),
                                      experiment_config("wgan"))
  assert conflicts[0] == ("algorithm", "gan", "wgan")
  assert {"loss", "weight_clip", "n_critic", "optimizer"} <= {k for k, _, _ in conflicts}
  message = str(resume.conflict_error("w", conflicts, shown=2))
  assert "algorithm 'gan' (saved) vs 'wgan' (now)" in message
  assert "rerun the experiment that started it, or start a fresh --workdir" in message
  assert f"and {len(conflicts) - 2} more (" in message


def test_keys_newer_than_the_saved_config_compare_with_their_defaults():
  saved = saved_json(tiny_config())
  del saved["num_seeds"], saved["dtype"]  # a run saved before these keys existed
  saved["a_removed_key"] = 3              # and a key ganjax no longer has
  assert resume.resume_conflicts(saved, tiny_config()) == []
  assert resume.resume_conflicts(saved, tiny_config(num_seeds=2)) == [("num_seeds", 1, 2)]


def test_check_resume_needs_checkpoints_and_touches_nothing(tmp_path):
  workdir = str(tmp_path)
  with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
    json.dump(saved_json(tiny_config()), f)
  resume.check_resume(tiny_config(g_width=16), workdir)  # no checkpoint yet: a new run
  os.makedirs(os.path.join(workdir, "checkpoints", "4"))
  before = {n: os.stat(os.path.join(workdir, n)).st_mtime_ns for n in os.listdir(workdir)}
  resume.check_resume(tiny_config(num_train_steps=99), workdir)
  with pytest.raises(GanjaxError, match="g_width 8 \\(saved\\) vs 16 \\(now\\)"):
    resume.check_resume(tiny_config(g_width=16), workdir)
  assert {n: os.stat(os.path.join(workdir, n)).st_mtime_ns for n in os.listdir(workdir)} == before
  with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
    f.write("{")
  with pytest.raises(GanjaxError, match="cannot read .*config.json"):
    resume.check_resume(tiny_config(), workdir)
