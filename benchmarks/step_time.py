"""Seconds per train step of an experiment on bundled data, after compilation, on one device.

  python benchmarks/step_time.py experiments/gan.py experiments/wgan_gp.py \
      [--steps 5] [--set n_critic=3 --set batch_size=32]

Prints one line per experiment: compile time (first step) and the mean time of
the next --steps steps (each step is one generator iteration with its critic
updates; WGAN's 100-update warmup steps are skipped by starting at step 25).
The step is built as ganjax/train.py builds it: the backend resolved for the
experiment's algorithm on the device (ganjax/backend.py) gives its layers,
critic unrolling and compiler options; on the CPU the entry points' host
tuning (`backend.tune_host()`) is applied first.
"""

import argparse
import functools
import importlib.util
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402

from ganjax import algorithms, backend as backends, data, parallel, train  # noqa: E402


def load(path):
  spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("experiments", nargs="+")
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--set", action="append", default=[], help="key=python_literal")
  args = parser.parse_args()
  backends.tune_host_if_cpu(jax.devices()[:1])
  for path in args.experiments:
    config = load(path)
    for item in args.set:
      key, value = item.split("=", 1)
      config[key] = type(config[key])(eval(value))  # pylint: disable=eval-used
    algorithm = algorithms.get(config.algorithm)
    algorithm.validate(config)
    mesh = parallel.make_mesh(jax.devices()[:1])
    backend = backends.resolve(mesh.devices.flat, config.algorithm)
    start = 25 if config.get("critic_warmup") else 0
    per_step = functools.partial(algorithm.discriminator_updates, config)
    batches = data.make_batches(config, start_step=start, per_step=per_step)
    state = algorithm.init(config, jax.random.PRNGKey(0), train.example_batch(config))
    state = parallel.replicate(jax.device_get(state), mesh)
    step = parallel.data_parallel(
        functools.partial(algorithm.train_step, config, backend=backend), mesh, batch_axis=1,
        compiler_options=backend.jit_options())
    t0 = time.perf_counter()
    state, metrics = step(state, parallel.shard_batch(next(batches), mesh, batch_axis=1))
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    host = [parallel.shard_batch(next(batches), mesh, batch_axis=1) for _ in range(args.steps)]
    t0 = time.perf_counter()
    for batch in host:
      state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    per = (time.perf_counter() - t0) / args.steps
    print(f"{path}: {jax.devices()[0].device_kind}, batch {config.batch_size},"
          f" n_critic {config.get('n_critic', 1)}: first step {compile_s:.1f}s, then {per:.3f} s/step"
          f" ({config.batch_size / per:.0f} examples/s); backend {backend.describe()}")


if __name__ == "__main__":
  main()
