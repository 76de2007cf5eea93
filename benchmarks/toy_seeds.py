"""Mode coverage of a 2D-mixture experiment over several seeds, as VEEGAN and PacGAN report it.

  python benchmarks/toy_seeds.py experiments/toy_ring.py[:wgan_gp] --seeds 10 \
      [--workdir-root runs/toy_seeds] [--steps N] [--set lr_decay_start=0.5 ...]

Trains seeds 0..seeds-1 one after another with ganjax.train.train_and_evaluate,
each in its own workdir, <workdir-root>/<experiment>[-<preset>]/seed<i>; a
workdir that has already reached its last step is only scored, and an
unfinished one resumes. Each seed's newest checkpoint then draws 2,500 points
(toy.EVAL_SAMPLES, from fixed noise) that ganjax.evaluation.toy.mode_metrics
scores: modes captured, the fraction of high-quality samples and the reverse
KL of the mode histogram. Prints a table per seed with the wall time of its
training (0 when it was already trained) and the mean +- std and minimum over
seeds, and writes it all to <workdir-root>/<experiment>[-<preset>]/summary.json.

A workdir is reused by its step count alone: after changing the config, use a
fresh --workdir-root, or a longer run would resume from a shorter one's end.

--steps overrides num_train_steps (and with it the length of an lr_decay_start
schedule); --set key=value overrides any other config key (a Python literal).
Compiled steps are cached in <workdir-root>/jax_cache, so that only the first
seed compiles them.
"""

import argparse
import ast
import importlib.util
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ganjax import algorithms, data, train  # noqa: E402
from ganjax.checkpoint import Checkpoints  # noqa: E402
from ganjax.evaluation import toy  # noqa: E402


def load_config(spec: str):
  """experiments/x.py[:preset] -> (config, run name x[-preset])."""
  path, _, preset = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  name = os.path.splitext(os.path.basename(path))[0]
  return module.get_config(preset or None), f"{name}-{preset}" if preset else name


def override(config, items: list[str]) -> None:
  for item in items:
    key, _, value = item.partition("=")
    if key not in config:
      sys.exit(f"toy_seeds: unknown config key {key!r} in --set {item}")
    config[key] = type(config[key])(ast.literal_eval(value))


def finished_step(workdir: str) -> int:
  """The step of the newest checkpoint in `workdir`, 0 if none."""
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return 0
  checkpoints = Checkpoints(os.path.join(workdir, "checkpoints"))
  try:
    return checkpoints.latest_step() or 0
  finally:
    checkpoints.close()


def score(workdir: str) -> dict:
  """mode_metrics of 2,500 points from the newest checkpoint of `workdir`."""
  config, state, step = train.load_run(workdir)
  algorithm = algorithms.get(config.algorithm)
  z = algorithm.latent(config, jax.random.PRNGKey(0), toy.EVAL_SAMPLES)
  points = np.asarray(jax.device_get(jax.jit(
      lambda s, z: algorithm.sample(config, s, z))(state, z)))
  return {"step": step, **toy.mode_metrics(points, data.parse_spec(config.dataset).name)}


def mean_std_min(values) -> dict:
  values = np.asarray(values, np.float64)
  return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min())}


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("experiment", help="experiments/toy_<mixture>.py[:preset]")
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--workdir-root", default="runs/toy_seeds")
  parser.add_argument("--steps", type=int, default=None, help="override num_train_steps")
  parser.add_argument("--set", action="append", default=[], help="key=python_literal")
  args = parser.parse_args()

  base, name = load_config(args.experiment)
  override(base, args.set)
  if args.steps:
    base.num_train_steps = args.steps
  if data.parse_spec(base.dataset).kind != "toy":
    sys.exit(f"toy_seeds: {args.experiment} trains on {base.dataset}, not a 2D mixture")
  root = os.path.join(args.workdir_root, name)
  # The seeds share their compiled steps through JAX's persistent cache: only
  # the first seed pays for the compilation.
  jax.config.update("jax_compilation_cache_dir", os.path.join(args.workdir_root, "jax_cache"))
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)

  rows = []
  for seed in range(args.seeds):
    config = base.copy_and_resolve_references()
    config.seed = seed
    workdir = os.path.join(root, f"seed{seed}")
    t0 = time.perf_counter()
    if finished_step(workdir) < config.num_train_steps:
      train.train_and_evaluate(config, workdir)
    seconds = time.perf_counter() - t0
    row = {"seed": seed, "train_seconds": round(seconds, 1), **score(workdir)}
    rows.append(row)
    print(f"seed {seed}: {row['modes_captured']}/{row['num_modes']} modes, high quality"
          f" {row['high_quality_fraction']:.3f}, reverse KL {row['reverse_kl']:.3f},"
          f" step {row['step']}, {seconds:.0f}s", flush=True)

  summary = {
      "experiment": args.experiment,
      "overrides": args.set + ([f"num_train_steps={args.steps}"] if args.steps else []),
      "num_train_steps": base.num_train_steps,
      "eval_samples": toy.EVAL_SAMPLES,
      "seeds": rows,
      "modes_captured": mean_std_min([r["modes_captured"] for r in rows]),
      "high_quality_fraction": mean_std_min([r["high_quality_fraction"] for r in rows]),
      "reverse_kl": mean_std_min([r["reverse_kl"] for r in rows]),
      "train_seconds": mean_std_min([r["train_seconds"] for r in rows]),
  }
  print(f"\n{args.experiment}, {base.num_train_steps} steps, {toy.EVAL_SAMPLES} samples per seed")
  print(f"{'seed':>4}  {'modes':>5}  {'high quality':>12}  {'reverse KL':>10}  {'train s':>7}")
  for r in rows:
    print(f"{r['seed']:>4}  {r['modes_captured']:>5}  {r['high_quality_fraction']:>12.3f}"
          f"  {r['reverse_kl']:>10.3f}  {r['train_seconds']:>7.0f}")
  for key, fmt in (("modes_captured", ".2f"), ("high_quality_fraction", ".3f"),
                   ("reverse_kl", ".3f"), ("train_seconds", ".0f")):
    s = summary[key]
    print(f"{key}: {s['mean']:{fmt}} +- {s['std']:{fmt}} (min {s['min']:{fmt}})")
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, "summary.json")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=2)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
