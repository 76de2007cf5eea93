"""A NaN or infinity stops the run, or rolls it back once, and nothing bad is written."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import train
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from tests.helpers import tiny_config


def poisoned(where: str, at_step: int, above_lr: float = 0.0):
  """gan.train_step, but the step that completes step `at_step` makes `where` NaN
  (while g_lr is above `above_lr`)."""
  original = gan.train_step

  def step(config, state, batch, **options):
    new_state, metrics = original(config, state, batch, **options)
    bad = (state.step + 1 == at_step) & (config.g_lr > above_lr)
    nan = jnp.where(bad, jnp.nan, 0.0)
    if where == "d_loss":
      metrics = {**metrics, "d_loss": metrics["d_loss"] + nan}
    else:
      params = dict(new_state.params)
      params[where] = jax.tree.map(lambda x: x + nan, params[where])
      new_state = new_state.replace(params=params)
    return new_state, metrics
  return step


def config(**overrides):
  return tiny_config(**{**dict(num_train_steps=6, log_every=2, sample_every=2,
                               checkpoint_every=2, eval_every=0), **overrides})


def steps_logged(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line)["step"] for line in f]


@pytest.mark.parametrize("where,named", [("generator", "params of the generator"),
                                         ("d_loss", "d_loss")])
def test_stops_at_the_first_nan_and_keeps_the_last_good_checkpoint(monkeypatch, tmp_path, where,
                                                                   named):
  monkeypatch.setattr(gan, "train_step", poisoned(where, at_step=3))
  workdir = str(tmp_path / "run")
  with pytest.raises(GanjaxError, match=f"at step 3 {named} became NaN or infinite; the run"
                     " stopped .* the last good checkpoint, step 2"):
    train.train_and_evaluate(config(), workdir)
  # Steps 3 and 4 went bad: no metrics, grid or checkpoint of them.
  assert steps_logged(workdir) == [2]
  assert os.listdir(os.path.join(workdir, "samples")) == ["step_2.png"]
  assert os.listdir(os.path.join(workdir, "checkpoints")) == ["2"]
  _, state, step = train.load_run(workdir)
  assert step == 2 and all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


def test_rollback_goes_back_once_with_lower_learning_rates(monkeypatch, tmp_path, capsys):
  # NaN at step 3 while g_lr is the default 2e-4; after the rollback (0.5x) it is 1e-4.
  monkeypatch.setattr(gan, "train_step", poisoned("generator", at_step=3, above_lr=1.5e-4))
  workdir = str(tmp_path / "run")
  state = train.train_and_evaluate(config(on_nonfinite="rollback"), workdir)
  assert int(jax.device_get(state.step)) == 6
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(jax.device_get(state.params)))
  assert "rolled back to the checkpoint at step 2" in capsys.readouterr().out
  record = json.load(open(os.path.join(workdir, train.ROLLBACK_FILE), encoding="utf-8"))
  assert record["restored_step"] == 2 and record["lr_factor"] == 0.5
  assert steps_logged(workdir) == [2, 4, 6]
  # Resuming keeps the lowered rates, and a second NaN stops the run.
  monkeypatch.setattr(gan, "train_step", poisoned("generator", at_step=7))
  with pytest.raises(GanjaxError, match="at step 7 .* it already rolled back once"):
    train.train_and_evaluate(config(on_nonfinite="rollback", num_train_steps=8), workdir)
  assert "learning rates times 0.5" in capsys.readouterr().out


def test_a_nan_in_one_seed_names_the_replica(monkeypatch, tmp_path):
  original = gan.train_step

  def step(config, state, batch, **options):  # replica 1 (seed 1) only: its key differs from replica 0's
    new_state, metrics = original(config, state, batch, **options)
    bad = (state.step + 1 == 2) & (state.rng[1] == 1)
    return new_state, {**metrics, "g_loss": metrics["g_loss"] + jnp.where(bad, jnp.nan, 0.0)}
  monkeypatch.setattr(gan, "train_step", step)
  with pytest.raises(GanjaxError, match=r"at step 2 g_loss of replica \[1\] \(num_seeds\)"):
    train.train_and_evaluate(config(num_seeds=2, num_train_steps=2), str(tmp_path / "run"))


def test_bad_nonfinite_options():
  with pytest.raises(GanjaxError, match="on_nonfinite='retry' is unknown"):
    gan.validate(config(on_nonfinite="retry"))
  with pytest.raises(GanjaxError, match="rollback_lr_factor=1.5 must be between 0 and 1"):
    gan.validate(config(rollback_lr_factor=1.5))
