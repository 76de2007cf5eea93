"""N seeds in one vmapped program against the same N seeds one after the other.

  python benchmarks/seeds_vmap.py [--config experiments/toy_ring.py] [--seeds 8]
                                  [--steps 200] [--reps 3] [--dtype float32]

Both sides run the jitted data-parallel train step of ganjax.train (the step
that `config.num_seeds` builds, and the one-seed step), on batches from the
run's own data sources, prepared on the host before timing. The sequential
side runs seed s for `--steps` steps, then seed s+1, ...; the vmapped side
runs `--steps` steps of all seeds at once. Each side is compiled first (its
compile time is printed) and timed over `--reps` repetitions interleaved;
the median is reported. The ratio (sequential time / vmapped time) is the
speed-up of training N seeds together. Both steps are built as
ganjax/train.py builds them, with the backend resolved for the run's algorithm
on its devices (ganjax/backend.py: layers, critic unrolling, compiler
options); on the CPU the entry points' host tuning is applied first.
"""

import argparse
import functools
import importlib.util
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from ganjax import algorithms, backend as backends, data, parallel, seeds, train  # noqa: E402


def load_config(spec: str):
  path, _, preset = spec.partition(":")
  module_spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module.get_config(preset or None)


def batches(config, steps: int, algorithm):
  it = data.make_batches(config,
                         per_step=functools.partial(algorithm.discriminator_updates, config))
  return [next(it) for _ in range(steps)]


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="experiments/toy_ring.py")
  parser.add_argument("--seeds", type=int, default=8)
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--reps", type=int, default=3)
  parser.add_argument("--dtype", default=None, help="config.dtype (default: the experiment's)")
  args = parser.parse_args(argv)

  config = load_config(args.config)
  config.num_seeds = args.seeds
  if args.dtype:
    config.dtype = args.dtype
  algorithm = algorithms.get(config.algorithm)
  mesh = parallel.make_mesh()
  backends.tune_host_if_cpu(mesh.devices.flat)
  backend = backends.resolve(mesh.devices.flat, config.algorithm)
  example = train.example_batch(config)
  print(f"devices: {mesh.size} x {jax.devices()[0].device_kind}; jax {jax.__version__};"
        f" {args.config}, {args.seeds} seeds, {args.steps} steps, batch {config.batch_size};"
        f" backend {backend.describe()}")

  # Vmapped: one state with a leading seed axis, one step for all seeds.
  multi_step = parallel.data_parallel(
      jax.vmap(functools.partial(algorithm.train_step, config, backend=backend)), mesh,
      batch_axis=2, compiler_options=backend.jit_options())
  multi_batches = [parallel.shard_batch(b, mesh, 2) for b in seeds.stack_batches(
      [batches(seeds.replica_config(config, i), args.steps, algorithm)
       for i in range(args.seeds)])]
  # Sequential: each seed's own state and step.
  one = [seeds.replica_config(config, i) for i in range(args.seeds)]
  one_step = parallel.data_parallel(
      functools.partial(algorithm.train_step, one[0], backend=backend), mesh, batch_axis=1,
      compiler_options=backend.jit_options())
  one_batches = [[parallel.shard_batch(b, mesh, 1) for b in batches(c, args.steps, algorithm)]
                 for c in one]

  def fresh_multi():
    return parallel.replicate(jax.device_get(seeds.init(algorithm, config, example)), mesh)

  def fresh_one(c):
    return parallel.replicate(jax.device_get(seeds.init(algorithm, c, example)), mesh)

  def run_multi():
    state = fresh_multi()
    jax.block_until_ready(state)
    t = time.perf_counter()
    for b in multi_batches:
      state, metrics = multi_step(state, b)
    jax.block_until_ready((state, metrics))
    return time.perf_counter() - t

  def run_sequential():
    states = [fresh_one(c) for c in one]
    jax.block_until_ready(states)
    t = time.perf_counter()
    for state, seed_batches in zip(states, one_batches):
      for b in seed_batches:
        state, metrics = one_step(state, b)
    jax.block_until_ready((state, metrics))
    return time.perf_counter() - t

  for name, step, state, batch in (("vmapped", multi_step, fresh_multi(), multi_batches[0]),
                                   ("sequential", one_step, fresh_one(one[0]), one_batches[0][0])):
    t = time.perf_counter()
    jax.block_until_ready(step(state, batch))
    print(f"compile + first step, {name}: {time.perf_counter() - t:.1f} s")

  times = {"vmapped": [], "sequential": []}
  for _ in range(args.reps):
    times["vmapped"].append(run_multi())
    times["sequential"].append(run_sequential())
  vm, sq = statistics.median(times["vmapped"]), statistics.median(times["sequential"])
  seed_steps = args.seeds * args.steps
  print(f"vmapped:    {vm:.3f} s for {seed_steps} seed-steps ({seed_steps / vm:.0f} seed-steps/s)"
        f"  reps {', '.join(f'{x:.3f}' for x in times['vmapped'])}")
  print(f"sequential: {sq:.3f} s for {seed_steps} seed-steps ({seed_steps / sq:.0f} seed-steps/s)"
        f"  reps {', '.join(f'{x:.3f}' for x in times['sequential'])}")
  print(f"speed-up of {args.seeds} seeds vmapped over one after the other: {sq / vm:.2f}x")


if __name__ == "__main__":
  main()
