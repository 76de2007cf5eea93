"""User mistakes through the command line: one line, exit status 1, and no checkpoint touched.

Most cases run main's own entry (flag parsing, then main.main) in this process,
which saves starting JAX for each; a few run `python -m ganjax.main` for real.
Every case either names a workdir that already holds a trained run, whose files
must come out byte for byte the same, or a new workdir that must not be created.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
from absl import flags
from PIL import Image

from ganjax import cli, data
from ganjax.cli import train_cmd as main
from tests.helpers import experiment_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAN = os.path.join(ROOT, "experiments", "gan.py")
TINY = {"g_width": 8, "d_width": 8, "latent_dim": 16, "batch_size": 16, "log_every": 1,
        "sample_every": 2, "checkpoint_every": 2, "num_samples": 4, "num_train_steps": 2}
TINY_CYCLEGAN = {"g_width": 4, "d_width": 4, "num_blocks": 1, "batch_size": 8,
                 "num_samples": 2, "num_train_steps": 2}


def overrides(values: dict) -> list[str]:
  return [f"--config.{k}={v}" for k, v in values.items()]


def run_main(*args) -> tuple[int, str]:
  """main as `python -m ganjax.main *args` runs it, in this process: (exit status, message)."""
  for name in [n for n in flags.FLAGS if n.startswith("config.")]:
    delattr(flags.FLAGS, name)  # the --config.<key> flags of the previous experiment
  flags.FLAGS.unparse_flags()
  argv = ["ganjax.main", *args]
  saved_argv, sys.argv = sys.argv, argv  # config_flags reads its overrides from sys.argv
  try:
    main.main(main.parse_flags(argv))
  except SystemExit as e:
    return (1, e.code) if isinstance(e.code, str) else (e.code, "")
  finally:
    sys.argv = saved_argv
  return 0, ""


def run_command(name, *args) -> tuple[int, str]:
  """`python -m ganjax <name> *args` in this process: (exit status, message)."""
  try:
    cli.entry(name)(list(args))
  except SystemExit as e:
    return (1, e.code) if isinstance(e.code, str) else (e.code, "")
  return 0, ""


def run_subprocess(*args, devices: int = 8) -> tuple[int, str]:
  env = {**os.environ, "PYTHONPATH": ROOT,
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  result = subprocess.run([sys.executable, "-m", "ganjax.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
  assert "Traceback" not in result.stderr, result.stderr
  lines = result.stderr.strip().splitlines()
  return result.returncode, lines[-1] if lines else ""


def fingerprint(path) -> dict[str, str]:
  """{relative path: sha256} of every file under `path`."""
  out = {}
  for root, _, names in os.walk(path):
    for name in names:
      full = os.path.join(root, name)
      with open(full, "rb") as f:
        out[os.path.relpath(full, path)] = hashlib.sha256(f.read()).hexdigest()
  return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
  """A workdir holding a finished 2-step DCGAN run (checkpoint at step 2)."""
  workdir = str(tmp_path_factory.mktemp("bad_input") / "gan")
  assert run_main("--config", GAN, "--workdir", workdir, *overrides(TINY)) == (0, "")
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "2"))
  return workdir


@pytest.fixture
def existing(trained, tmp_path):
  """A copy of the trained workdir, and a check that it comes out untouched."""
  workdir = str(tmp_path / "gan")
  shutil.copytree(trained, workdir)
  before = fingerprint(workdir)
  yield workdir
  assert fingerprint(workdir) == before


def assert_one_line(status, message, expected):
  assert status == 1, message
  assert message.startswith("ganjax: error: ") and "\n" not in message, message
  assert expected in message, message


@pytest.mark.parametrize("args,expected", [
    (["--config.n_critc=3"], "unknown config key 'n_critc'; did you mean 'n_critic'?"),
    (["--config.g_lr=fast"], "--config.g_lr=fast: g_lr takes a number, e.g. --config.g_lr=0.0002"),
    (["--config.num_train_steps=1e4"], "num_train_steps takes an integer"),
    (["--config.algorithm=vae"], "algorithm='vae' is unknown; use one of gan, wgan"),
    (["--config.dataset=imagenet"], "dataset='imagenet' is not a dataset spec; use bundled:mnist"),
    (["--config.image_size=48"], "image_size=48 cannot be built by DCGAN"),
    (["--config.n_critic=0"], "n_critic=0 must be at least 1"),
    (["--workdr=x"], "python -m ganjax train has no flag --workdr; did you mean --workdir?"),
    (["extra"], "unexpected arguments extra; the train command takes flags only"),
    (["--config.d_norm=batch", "--config.algorithm=wgan_gp", "--config.loss=wasserstein",
      "--config.gp_weight=10"], "d_norm='batch' with gp_weight=10.0: the gradient penalty"),
    # The same experiment and workdir, but a wider network: the checkpoint would not fit.
    (["--config.g_width=16"], "holds checkpoints of a run with another config: g_width 8 (saved)"
                              " vs 16 (now); resume it with the saved values (--config.g_width=8)"),
])
def test_config_mistakes_leave_the_trained_workdir_untouched(existing, args, expected):
  status, message = run_main("--config", GAN, "--workdir", existing,
                             *overrides({**TINY, "num_train_steps": 4}), *args)
  assert_one_line(status, message, expected)


def test_a_checkpoint_of_another_algorithm_is_refused(existing):
  status, message = run_main("--config", os.path.join(ROOT, "experiments", "wgan.py"),
                             "--workdir", existing, *overrides(TINY))
  assert_one_line(status, message, "holds checkpoints of a run with another config: algorithm"
                                   " 'gan' (saved) vs 'wgan' (now)")
  assert "rerun the experiment that started it, or start a fresh --workdir" in message
  # Without config.json (checkpoints copied on their own) the restore itself refuses.
  os.rename(os.path.join(existing, "config.json"), os.path.join(existing, "saved.json"))
  try:
    status, message = run_main("--config", os.path.join(ROOT, "experiments", "wgan.py"),
                               "--workdir", existing, *overrides(TINY))
    assert_one_line(status, message, "the checkpoint at step 2")
    assert "does not fit this run's state" in message and "fresh --workdir" in message
  finally:
    os.rename(os.path.join(existing, "saved.json"), os.path.join(existing, "config.json"))


def test_a_tfds_dataset_not_available_offline(trained, tmp_path, monkeypatch):
  monkeypatch.setattr(data, "_network_reachable", lambda timeout=3.0: False)
  # A run resumed as it was started, whose data has gone: nothing in the workdir changes.
  nothing = str(tmp_path / "no_tfds_data")
  os.makedirs(nothing)
  workdir = str(tmp_path / "gan")
  shutil.copytree(trained, workdir)
  path = os.path.join(workdir, "config.json")
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  saved.update(dataset="tfds:mnist", tfds_data_dir=nothing)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(saved, f)
  before = fingerprint(workdir)
  status, message = run_main("--config", GAN, "--workdir", workdir, *overrides(TINY),
                             "--config.dataset=tfds:mnist", f"--config.tfds_data_dir={nothing}")
  assert_one_line(status, message, f"dataset tfds:mnist is not prepared in {nothing} and there"
                                   " is no network to download it")
  assert "--config.dataset=bundled:mnist" in message
  assert fingerprint(workdir) == before


def test_an_unknown_tfds_dataset_writes_nothing(tmp_path):
  workdir = tmp_path / "new"
  status, message = run_main("--config", GAN, "--workdir", str(workdir), *overrides(TINY),
                             "--config.dataset=tfds:not_a_dataset_xyz")
  assert_one_line(status, message, "tensorflow-datasets has no dataset 'not_a_dataset_xyz'")
  assert not workdir.exists()


@pytest.mark.parametrize("command,args,expected", [
    ("evaluate", ["--checkpoint", "7"], "no checkpoint at step 7 in "),
    ("sample", ["--num", "2", "--output", "OUT/x.npz", "--checkpoint", "best"],
     "--checkpoint best: "),
    ("sample", ["--num", "2", "--output", "OUT/x.npz", "--checkpoint", "bset"],
     "argument --checkpoint: 'bset' is not a checkpoint; give a saved step (e.g. 2000), 'best'"
     " or 'newest'"),
    ("translate", ["--input", "OUT/in.png", "--output", "OUT/out", "--checkpoint", "best"],
     "--checkpoint best: "),
    ("sample", ["--num", "2", "--out", "OUT/x.npz"], "has no flag --out; did you mean --output?"),
])
def test_other_commands_name_a_bad_checkpoint_or_flag(existing, tmp_path, command, args,
                                                     expected):
  Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
  args = [a.replace("OUT", str(tmp_path)) for a in args]
  status, message = run_command(command, "--workdir", existing, *args)
  assert_one_line(status, message, expected)
  if "step 7" in expected:
    assert message.endswith("saved steps: [2]"), message  # the steps to choose from
  if expected == "--checkpoint best: ":  # the run evaluates every 1,000 steps, has trained 2
    assert message.endswith("has kept no best checkpoint yet (one is kept at each evaluation,"
                            " every eval_every steps); give a step or 'newest'"), message
  assert sorted(os.listdir(tmp_path)) == ["gan", "in.png"]  # nothing written


def image_folder(root, images=3):
  for domain in ("trainA", "trainB"):
    os.makedirs(root / domain)
    for i in range(images):
      Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(root / domain / f"{i}.png")
  return root


def missing(root):
  return root, f"{root} does not exist"


def empty(root):
  image_folder(root)
  for name in os.listdir(root / "trainB"):
    os.remove(root / "trainB" / name)
  return root, f"{root / 'trainB'} holds no image files"


def not_a_folder(root):
  root.parent.mkdir(parents=True, exist_ok=True)
  root.write_text("not a folder")
  return root, f"{root} is not a directory"


@pytest.mark.parametrize("make", [missing, empty, not_a_folder])
def test_bad_image_folders_write_nothing(tmp_path, make):
  root, expected = make(tmp_path / "pair")
  workdir = tmp_path / "new"
  status, message = run_main("--config", os.path.join(ROOT, "experiments", "cyclegan.py"),
                             "--workdir", str(workdir), *overrides(TINY_CYCLEGAN),
                             f"--config.dataset=folder:{root}")
  assert_one_line(status, message, expected)
  assert not workdir.exists()


def test_an_unreadable_image_folder(tmp_path, monkeypatch):
  root = image_folder(tmp_path / "pair")
  listdir = os.listdir

  def refuse(path="."):  # what a folder without read permission does (root ignores chmod)
    if os.path.abspath(path) == str(root / "trainA"):
      raise PermissionError(13, "Permission denied", path)
    return listdir(path)

  monkeypatch.setattr(os, "listdir", refuse)
  workdir = tmp_path / "new"
  status, message = run_main("--config", os.path.join(ROOT, "experiments", "cyclegan.py"),
                             "--workdir", str(workdir), *overrides(TINY_CYCLEGAN),
                             f"--config.dataset=folder:{root}")
  assert_one_line(status, message, f"cannot list {root / 'trainA'} (Permission denied)")
  assert not workdir.exists()


def cyclegan_workdir(trained, workdir, dataset):
  """A workdir with checkpoints whose config.json is the CycleGAN command's own config."""
  shutil.copytree(trained, workdir)
  config = experiment_config("cyclegan")
  config.update({**TINY_CYCLEGAN, "dataset": dataset})
  with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
    f.write(config.to_json_best_effort())
  return fingerprint(workdir)


# Through the real command line ------------------------------------------------------


def test_cli_a_corrupt_image_is_named_and_the_workdir_untouched(trained, tmp_path):
  root = image_folder(tmp_path / "pair")
  bad = root / "trainB" / "1.png"
  bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # a PNG cut short
  workdir = str(tmp_path / "cyclegan")
  before = cyclegan_workdir(trained, workdir, f"folder:{root}")
  status, message = run_subprocess("--config", "experiments/cyclegan.py", "--workdir", workdir,
                                   *overrides(TINY_CYCLEGAN), f"--config.dataset=folder:{root}")
  assert_one_line(status, message, f"cannot read the image {bad}")
  assert "replace or remove that file" in message
  assert fingerprint(workdir) == before


def test_cli_batch_size_must_divide_by_the_devices(existing):
  status, message = run_subprocess("--config", "experiments/gan.py", "--workdir", existing,
                                   *overrides({**TINY, "batch_size": 12}), devices=8)
  assert_one_line(status, message, "batch_size=12 does not divide by the 8 devices; set"
                                   " --config.batch_size to a multiple of 8")


def test_cli_a_workdir_on_a_read_only_path(trained, tmp_path):
  if os.geteuid() == 0:  # permissions do not stop root: /sys refuses new directories
    workdir, keep = "/sys/ganjax-read-only-test/run", None
  else:
    keep = tmp_path / "ro"
    shutil.copytree(trained, keep / "gan")
    workdir = str(keep / "gan")
    for path, _, _ in os.walk(keep):
      os.chmod(path, 0o555)
  before = fingerprint(keep) if keep else None
  try:
    status, message = run_subprocess("--config", "experiments/gan.py", "--workdir", workdir,
                                     *overrides({**TINY, "num_train_steps": 4}))
  finally:
    if keep:
      for path, _, _ in os.walk(keep):
        os.chmod(path, 0o755)
  assert_one_line(status, message, f"workdir {workdir} is not writable")
  assert "choose another with --workdir" in message
  if keep:
    assert fingerprint(keep) == before
