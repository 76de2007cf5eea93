"""train_and_evaluate end to end on bundled data: outputs, then resume."""

import json
import os

import jax
import numpy as np

from ganjax import train
from tests.helpers import tiny_config


def read_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def test_train_writes_the_workdir_then_resumes_exactly(tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config(num_train_steps=4), workdir)

  summary = json.load(open(os.path.join(workdir, "summary.json"), encoding="utf-8"))
  assert summary["devices"] == 8 and summary["global_batch_size"] == 16
  assert summary["per_device_batch_size"] == 2
  assert set(summary["params"]) == {"generator", "discriminator"}
  assert all(n > 0 for n in summary["params"].values())
  assert json.load(open(os.path.join(workdir, "config.json"), encoding="utf-8"))["g_width"] == 8
  records = read_metrics(workdir)
  assert [r["step"] for r in records] == [2, 4]
  for key in ("d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"):
    assert all(np.isfinite(r[key]) for r in records), key
  assert 0 < records[0]["d_real"] < 1 and records[0]["d_grad_norm"] > 0
  assert sorted(os.listdir(os.path.join(workdir, "samples"))) == ["step_2.png", "step_4.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4"]

  # The same command with a longer run resumes at step 4 and continues to 6 ...
  resumed = train.train_and_evaluate(tiny_config(num_train_steps=6), workdir)
  assert int(jax.device_get(resumed.step)) == 6
  assert [r["step"] for r in read_metrics(workdir)] == [2, 4, 6]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["2", "4", "6"]

  # ... and ends where an uninterrupted 6-step run ends: same batches, noise, optimizer state.
  straight = train.train_and_evaluate(tiny_config(num_train_steps=6), str(tmp_path / "straight"))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed)), jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(a, b)


def test_a_finished_run_does_nothing_more(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config(num_train_steps=2), workdir)
  train.train_and_evaluate(tiny_config(num_train_steps=2), workdir)
  assert "already trained to step 2" in capsys.readouterr().out
  assert [r["step"] for r in read_metrics(workdir)] == [2]
