"""The train command (python -m ganjax.main, the same as python -m ganjax train): a short run
as a user types it, and config mistakes as one line."""

import json
import os
import re
import signal
import subprocess
import sys

import pytest

from ganjax.cli import train_cmd as main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--config.g_width=8", "--config.d_width=8", "--config.latent_dim=16",
        "--config.batch_size=16", "--config.log_every=1", "--config.sample_every=2",
        "--config.checkpoint_every=2", "--config.num_samples=4"]


def ganjax_main(*args, cwd=ROOT):
  return subprocess.run([sys.executable, "-m", "ganjax.main", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": ROOT})


def test_default_workdir_names_experiment_and_preset():
  assert main.default_workdir("experiments/gan.py") == os.path.join("runs", "gan")
  assert main.default_workdir("experiments/gan.py:cifar10") == os.path.join("runs", "gan-cifar10")
  # Presets that are dataset specs become one directory name.
  assert main.default_workdir("experiments/cyclegan.py:folder:/data/my pair") == os.path.join(
      "runs", "cyclegan-folder-data-my-pair")
  assert main.default_workdir("experiments/cgan.py:cifar10,wgan_gp") == os.path.join(
      "runs", "cgan-cifar10,wgan_gp")


def test_command_line_run_then_resume(tmp_path):
  config = os.path.join(ROOT, "experiments", "gan.py")
  first = ganjax_main("--config", config, "--config.num_train_steps=2", *TINY, cwd=tmp_path)
  assert first.returncode == 0, first.stderr
  workdir = tmp_path / "runs" / "gan"  # the default workdir, relative to where it runs
  assert (workdir / "checkpoints" / "2").is_dir()
  assert json.loads((workdir / "config.json").read_text())["num_train_steps"] == 2
  second = ganjax_main("--config", config, "--config.num_train_steps=3", *TINY, cwd=tmp_path)
  assert second.returncode == 0, second.stderr
  assert "resuming from the checkpoint at step 2" in second.stdout
  steps = [json.loads(l)["step"] for l in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert steps == [1, 2, 3]


@pytest.mark.parametrize("args,message", [
    (["--config.batch_sise=8"], "unknown config key 'batch_sise'; did you mean 'batch_size'?"),
    (["--config.batch_size=abc"], "--config.batch_size=abc"),
    (["--config.batch_size=12"], "batch_size=12 does not divide by the 8 devices"),
    (["--config.dataset=imagenet"], "dataset='imagenet' is not a dataset spec"),
    (["--config.image_size=48"], "image_size=48 cannot be built by DCGAN"),
])
def test_config_mistakes_are_one_line_and_exit_1(tmp_path, args, message):
  result = ganjax_main("--config", "experiments/gan.py", "--workdir", str(tmp_path / "w"), *args)
  assert result.returncode == 1
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("ganjax: error: ") and message in lines[-1], result.stderr
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_unknown_preset_and_missing_file():
  result = ganjax_main("--config", "experiments/gan.py:mnist64")
  assert result.returncode == 1 and "no preset 'mnist64'" in result.stderr
  result = ganjax_main("--config", "experiments/nope.py")
  assert result.returncode == 1 and "cannot load --config experiments/nope.py" in result.stderr


def test_sigterm_saves_a_checkpoint_exits_0_and_the_same_command_resumes(tmp_path):
  workdir = tmp_path / "run"
  command = [sys.executable, "-m", "ganjax.main", "--config", "experiments/gan.py",
             "--workdir", str(workdir), *TINY, "--config.num_train_steps=100000",
             "--config.checkpoint_every=100000", "--config.sample_every=100000",
             "--config.log_every=100000"]
  proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env={**os.environ, "PYTHONPATH": ROOT})
  try:
    for line in proc.stdout:
      if "compiled and ran the first step" in line:
        break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == 0, err[-3000:]
  stopped = re.search(r"stopped by SIGTERM at step (\d+); checkpoint saved in (\S+); run the"
                      r" same command to resume", out)
  assert stopped, out + err[-2000:]
  step = int(stopped.group(1))
  assert stopped.group(2) == str(workdir / "checkpoints")
  assert sorted(os.listdir(workdir / "checkpoints")) == [str(step)]
  resumed = subprocess.run(command[:-4] + [f"--config.num_train_steps={step + 1}"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": ROOT})
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resuming from the checkpoint at step {step}" in resumed.stdout
  assert f"finished at step {step + 1}" in resumed.stdout
