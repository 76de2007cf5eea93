"""python -m ganjax <command>: one layout, one flag style, one name per concept, --help with
examples, one-line errors, and the experiments listing."""

import argparse
import os
import re
import subprocess
import sys
import tomllib

import pytest

from ganjax import __main__ as dispatcher
from ganjax import cli, data
from ganjax.cli import experiments_cmd, shared, train_cmd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ARGPARSE_COMMANDS = [name for name in cli.COMMANDS if name != "train"]
# pytorch-fid's spellings, which the fid command takes beside its own.
PYTORCH_FID_FLAGS = {"--batch-size", "--save-stats", "--num-workers", "--dims", "--device"}
# Examples for the families of presets (a name with <...>) that a test builds.
FAMILY_EXAMPLES = {"<pair>": "cycle_gan/monet2photo", "<path>": "/data/my_pair"}


def parsers() -> dict[str, shared.Parser]:
  return {name: getattr(__import__(cli.COMMANDS[name].entry.partition(":")[0],
                                   fromlist=["make_parser"]), "make_parser")()
          for name in ARGPARSE_COMMANDS}


def ganjax(*args, cwd=ROOT):
  return subprocess.run([sys.executable, "-m", "ganjax", *args], cwd=cwd, capture_output=True,
                        text=True, timeout=600, env={**os.environ, "PYTHONPATH": ROOT})


# --- layout -----------------------------------------------------------------------------


def test_the_commands_share_no_module_name():
  """No command module has the name of another module or package of ganjax."""
  others = []
  for folder, _, files in os.walk(os.path.join(ROOT, "ganjax")):
    if os.path.basename(folder) in ("cli", "__pycache__"):
      continue
    others += [f[:-3] for f in files if f.endswith(".py") and not f.startswith("__")]
    if folder != os.path.join(ROOT, "ganjax") and os.path.isfile(
        os.path.join(folder, "__init__.py")):
      others.append(os.path.basename(folder))
  commands = [f[:-3] for f in os.listdir(os.path.join(ROOT, "ganjax", "cli"))
              if f.endswith(".py") and not f.startswith("__")]
  assert "train" in others and "fid" in others  # the names the suffix keeps apart
  assert set(commands) & set(others) == set()
  assert sorted(c.entry.partition(":")[0] for c in cli.COMMANDS.values()) == sorted(
      f"ganjax.cli.{name}_cmd" for name in cli.COMMANDS)


def test_console_scripts_are_the_commands():
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    scripts = tomllib.load(f)["project"]["scripts"]
  assert scripts == {f"ganjax-{name}": c.entry for name, c in cli.COMMANDS.items()}
  for name in cli.COMMANDS:
    assert callable(cli.entry(name))
  assert cli.entry("train") is train_cmd.run
  from ganjax import main  # pylint: disable=import-outside-toplevel
  assert main.run is train_cmd.run  # python -m ganjax.main is the train command


def test_python_m_ganjax_lists_the_commands(capsys):
  with pytest.raises(SystemExit) as e:
    dispatcher.main(["--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  for name, command in cli.COMMANDS.items():
    assert re.search(rf"^  {name} +{re.escape(command.summary)}$", out, re.M), name
  with pytest.raises(SystemExit) as e:
    dispatcher.main(["trian", "--config", "experiments/gan.py"])
  assert e.value.code.startswith("ganjax: error: 'trian' is not a command; did you mean"
                                 " 'train'?")


# --- one style, one name per concept ----------------------------------------------------


def test_flags_are_snake_case_with_pytorch_fid_spellings_beside_the_fid_flags():
  for name, parser in parsers().items():
    for action in parser._actions:  # pylint: disable=protected-access
      flags = [s for s in action.option_strings if s.startswith("--")]
      snake = [s for s in flags if re.fullmatch(r"--[a-z][a-z0-9_]*", s)]
      assert flags[:1] == snake[:1], (name, flags)  # the first spelling is snake_case
      for other in flags[1:]:
        assert name == "fid" and other in PYTORCH_FID_FLAGS, (name, flags)
        assert "--" + other[2:].replace("-", "_") == flags[0], (name, flags)
  fid_flags = set(parsers()["fid"].long_flags())
  assert PYTORCH_FID_FLAGS <= fid_flags


def test_one_name_per_concept():
  by_command = {name: set(p.long_flags()) for name, p in parsers().items()}
  everywhere = set().union(*by_command.values())
  assert not everywhere & {"--out", "--weights", "--step", "--ckpt", "--output_dir"}
  for name in ("evaluate", "sample", "translate"):
    action = next(a for a in parsers()[name]._actions if "--checkpoint" in a.option_strings)
    assert action.type is shared.checkpoint_arg and action.default is None, name
  assert "--output" in by_command["sample"] and "--output" in by_command["translate"]
  assert "--inception_weights" in by_command["evaluate"] & by_command["fid"]
  assert "--replica" in by_command["sample"] & by_command["translate"]


@pytest.mark.parametrize("text,want", [("2000", 2000), ("0", 0), ("best", "best"),
                                       ("BEST", "best"), ("newest", None)])
def test_checkpoint_arg(text, want):
  assert shared.checkpoint_arg(text) == want


@pytest.mark.parametrize("text", ["bset", "-1", "1e3", "latest", "", "2.5"])
def test_a_bad_checkpoint_names_the_value_and_what_to_give(text):
  with pytest.raises(argparse.ArgumentTypeError) as e:
    shared.checkpoint_arg(text)
  assert repr(text) in str(e.value) and "a saved step (e.g. 2000), 'best' or 'newest'" in str(
      e.value)


# --- --help -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ARGPARSE_COMMANDS)
def test_every_help_ends_with_example_commands(name, capsys):
  with pytest.raises(SystemExit) as e:
    cli.entry(name)(["--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  examples = out.split("\nexamples:\n")[1].splitlines()
  assert 2 <= len(examples) <= 3
  assert all(line.startswith(f"  python -m ganjax {name}") for line in examples[:2]), examples


def test_train_help_is_short_and_helpfull_is_complete():
  short = train_cmd.short_help()
  for flag in ("--config FILE[:PRESET]", "--workdir DIR", "--config.KEY=VALUE",
               "--[no]distributed", "--coordinator_address", "--num_processes", "--process_id",
               "--helpfull", "python -m ganjax experiments"):
    assert flag in short, flag
  for other in ("--flagfile", "--verbosity", "orbax", "--config.g_lr", "--config.seed"):
    assert other not in short, other  # other modules' flags and the config keys
  assert len(short.splitlines()) < 45
  examples = short.split("\nexamples:\n")[1].splitlines()
  assert len(examples) == 3 and all(e.startswith("  python -m ganjax train") for e in examples)

  full = train_cmd.full_help(["--config", "experiments/cgan.py"])
  config = train_cmd.load_experiment("experiments/cgan.py")
  for key, value in config.items():
    shown = repr(value) if value == "" else value
    assert f"\n  --config.{key}={shown}\n" in full, key
  assert "--config.num_classes=10\n" in full  # the experiment's own value
  for flag in ("--flagfile", "--verbosity", "--workdir", "--distributed"):
    assert flag in full, flag
  assert "cannot load --config experiments/nope.py" in train_cmd.full_help(
      ["--config=experiments/nope.py"])


def test_train_help_through_every_entry():
  """python -m ganjax train --help and python -m ganjax.main --help print the short help."""
  for command in (["-m", "ganjax", "train", "--help"], ["-m", "ganjax.main", "--help"]):
    result = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == train_cmd.short_help(), command


# --- mistakes: one line naming the value and the fix ------------------------------------


@pytest.mark.parametrize("name,argv,expected", [
    ("sample", ["--workdir", "w", "--num", "2", "--out", "x.npz"],
     "python -m ganjax sample has no flag --out; did you mean --output?"),
    ("evaluate", ["--workdir", "w", "--weights", "w.pth"],
     "python -m ganjax evaluate has no flag --weights; did you mean --inception_weights?"),
    ("evaluate", ["--workdir", "w", "--batch-size", "8"],
     "python -m ganjax evaluate has no flag --batch-size; did you mean --batch_size?"),
    ("evaluate", ["--workdir", "w", "--num", "8"],  # no abbreviations
     "python -m ganjax evaluate has no flag --num; did you mean --num_samples?"),
    ("fid", ["a", "b", "--inception-score"],
     "python -m ganjax fid has no flag --inception-score; did you mean --inception_score?"),
    ("fid", ["a", "b", "--dims", "768"], "--dims 768: this command computes FID from the"
                                         " 2048-d pool features only"),
    ("fid", ["a", "b", "--device", "quantum"], "--device quantum: give cpu, cuda, gpu or tpu"),
    ("fid", ["a", "b", "--device", "cpu:99"], "--device cpu:99: there are"),
    ("fid", ["a", "b", "--batch-size", "0"], "argument --batch_size/--batch-size: 0 is below 1;"
                                             " give at least 1"),
    ("translate", ["--workdir", "w", "--input", "i", "--output", "o", "--checkpoint", "bset"],
     "argument --checkpoint: 'bset' is not a checkpoint; give a saved step (e.g. 2000), 'best'"
     " or 'newest'"),
    ("evaluate", ["--workdir", "w", "--metrics", "some"],
     "argument --metrics: invalid choice: 'some' (choose from"),
    ("sample", ["--workdir", "w"], "the following arguments are required: --num, --output"
                                   " (python -m ganjax sample --help shows them)"),
    ("experiments", ["nope"], "has no experiment 'nope'; the experiments are cgan, cyclegan,"),
])
def test_a_mistake_is_one_line(name, argv, expected):
  with pytest.raises(SystemExit) as e:
    cli.entry(name)(argv)
  message = e.value.code
  assert isinstance(message, str) and "\n" not in message, message
  assert message.startswith("ganjax: error: ") and expected in message, message


def test_fid_device_picks_jax_devices():
  import jax  # pylint: disable=import-outside-toplevel
  from ganjax.cli import fid_cmd  # pylint: disable=import-outside-toplevel
  assert fid_cmd.devices_of(None) is None  # every device of the default platform
  assert fid_cmd.devices_of("cpu") == jax.devices("cpu")
  assert fid_cmd.devices_of("CPU:3") == [jax.devices("cpu")[3]]
  with pytest.raises(fid_cmd.GanjaxError, match=r"--device cuda:0: JAX finds no gpu here \(its"
                                                r" devices: cpu\)"):
    fid_cmd.devices_of("cuda:0")


# --- experiments -------------------------------------------------------------------------


def _documented_presets(doc: str) -> list[str] | None:
  """The presets of an experiment docstring's "Presets" section (None without one)."""
  lines = doc.splitlines()
  start = next((i for i, l in enumerate(lines) if l.startswith("Presets")), None)
  if start is None:
    return None
  names = []
  for line in lines[start + 1:]:
    if not line.strip():
      break
    if re.match(r"^  \S", line):
      names.append(line.split()[0])
  return [n for n in names if n != "(none)"]


def test_every_listed_preset_builds():
  folder = os.path.join(ROOT, "experiments")
  experiments = experiments_cmd.load_all(folder)
  assert sorted(e.name + ".py" for e in experiments) == sorted(
      f for f in os.listdir(folder) if f.endswith(".py"))
  for experiment in experiments:
    assert experiment.doc, experiment.name
    for preset in experiment.presets:
      name = preset.name
      if "<" in name:  # a family: build it with an example of each <...>
        for placeholder, example in FAMILY_EXAMPLES.items():
          name = name.replace(placeholder, example)
        assert "<" not in name, f"{experiment.name}:{preset.name} needs an example here"
        preset.config = experiment_config(experiment.path, name)
      assert preset.error == "" and preset.config is not None, (experiment.name, preset)
      assert preset.name == "" or preset.description, (experiment.name, preset.name)
      data.parse_spec(preset.config.dataset)  # a dataset spec ganjax reads
      assert preset.config.num_train_steps > 0
    documented = _documented_presets(experiment.doc)
    if documented is not None:  # the docstring and PRESETS name the same presets
      assert documented == [p.name for p in experiment.presets[1:]], experiment.name


def experiment_config(path, preset):
  return train_cmd.load_experiment(f"{path}:{preset}")


def test_experiments_command_lists_every_preset(capsys, monkeypatch):
  monkeypatch.chdir(ROOT)
  cli.entry("experiments")([])
  out = capsys.readouterr().out
  for experiment in experiments_cmd.load_all(os.path.join(ROOT, "experiments")):
    for preset in experiment.presets:
      spec = os.path.join("experiments", experiment.name + ".py") + (
          f":{preset.name}" if preset.name else "")
      assert re.search(rf"^  {re.escape(spec)}  ", out, re.M), spec
  assert "experiments/gan.py:cifar10" in out and "gan on tfds:cifar10, 50,000 steps" in out
  cli.entry("experiments")(["cgan"])
  one = capsys.readouterr().out
  assert one.startswith("cgan: Conditional GAN") and "Presets (combine them" in one


# --- a run through python -m ganjax -----------------------------------------------------


def test_python_m_ganjax_train_takes_config_overrides(tmp_path):
  """The dispatcher hands the flags after the command to absl and ml_collections."""
  workdir = tmp_path / "run"
  result = ganjax("train", "--config", "experiments/gan.py", "--workdir", str(workdir),
                  "--config.num_train_steps=1", "--config.g_width=8", "--config.d_width=8",
                  "--config.latent_dim=16", "--config.batch_size=16",
                  "--config.checkpoint_every=1", "--config.sample_every=1",
                  "--config.num_samples=4", "--config.log_every=1")
  assert result.returncode == 0, result.stderr[-3000:]
  assert (workdir / "checkpoints" / "1").is_dir()
  bad = ganjax("train", "--config", "experiments/gan.py", "--config.batch_sise=8")
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == (
      "ganjax: error: unknown config key 'batch_sise'; did you mean 'batch_size'? (the config"
      " is locked: only its own keys can be set)")
