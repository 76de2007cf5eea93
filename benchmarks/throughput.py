"""Images per second of ganjax's train steps, side by side with PyTorch, in one process.

  python benchmarks/throughput.py [--cases dcgan32,cgan,wgan_gp,cyclegan128,dcgan_paper]
      [--torch eager,compile | none] [--dtype float32|bfloat16] [--small]
      [--steps K] [--reps R]
      [--stock-layers] [--xla-default] [--critic-loop] [--heap-off] [--plain-flax]
      [--custom-convs] [--loop [--loop-steps N]] [--json OUT]

For each case, ganjax's jitted data-parallel step runs as ganjax/train.py builds
it: the backend resolved for the case's algorithm over all local devices
(`backend.resolve(jax.local_devices(), config.algorithm)`, ganjax/backend.py:
the convolution layers, the unrolling of critic updates and the compiler
options) is handed to `train_step` and its compiler options to
`parallel.data_parallel`. On the CPU the script first applies
`backend.tune_host()`, as the command-line entry points do
(GANJAX_HOST_TUNING=0 leaves glibc's and JAX's defaults, GANJAX_CPU_FORMS=0
gives the stock backend). The step runs on in-memory random batches in
[-1, 1] shaped as data.make_batches gives them ([n_critic, B, H, W, C]). It is
compiled ahead of time once (the "compile" column: lowering, compilation and
the first step), and then timed in R repetitions of K steps, ending each with
block_until_ready; the figure is the median repetition. The PyTorch reference
of the same networks, losses, optimizers and batch (benchmarks/torch_reference.py,
eager and torch.compile) is timed in the same repetitions, in rotating order,
so load from other processes falls on all of them alike. Parameter counts of
the two are checked to be equal first.

The output starts with the CPU's model and ISA extensions
(`backend.cpu_info()`), its core count (os.cpu_count() and the cores this
process may run on), the JAX, jaxlib, Flax and PyTorch versions and the
resolved backend (`Backend.describe()`); the JSON records the same. It ends
with a summary table: per case ganjax's images per second, PyTorch eager's,
their ratio, and each variant's speed as a ratio to ganjax's.

Images per second = batch * steps / seconds, where a step is one generator
iteration: for WGAN-GP (5 critic updates per generator update) that counts
the generator's images only (the critic sees 5x as many real images); for
CycleGAN an "image" is one pair (one image of each domain), so batch 1 is one
image of A and one of B per step.

Memory: XLA's own estimate for the compiled step (temporaries + arguments +
outputs, minus what donation aliases), the process's peak host RSS so far
(resource.getrusage; it covers everything this process ran before, PyTorch
included), and on a GPU the device's peak_bytes_in_use (JAX, cumulative) and
torch.cuda.max_memory_allocated (per case).

Cases (the experiment each one mirrors; `case@B` sets the global batch to B):
  dcgan32      experiments/gan.py: MNIST 32x32x1, width 32, batch 64
  dcgan_paper  experiments/gan.py:cifar10: the DCGAN paper's network on CIFAR-like
               32x32x3 images, width 64, batch 128
  dcgan64      experiments/gan.py:celeba64: 64x64x3, width 64, batch 128
  wgan_gp      experiments/wgan_gp.py: 32x32x1, width 32, LayerNorm critic, batch 64
  wgan_gp64    the same at 64x64x3, width 64, batch 64
  cgan         experiments/cgan.py: 32x32x1, 10 classes, width 32, batch 64
  cyclegan128  experiments/cyclegan.py:horse2zebra at 128x128 with 6 blocks, batch 1
  cyclegan256  experiments/cyclegan.py:horse2zebra: 256x256, 9 blocks, batch 1

The default cases are dcgan32, cgan, wgan_gp, cyclegan128 and dcgan_paper. The
64x64 and 256x256 cases are sized for accelerators (benchmarks/gpu_check.sh
runs them); on a 2-core CPU they take minutes per repetition.

Variants: other ganjax steps, each timed in the same interleaved repetitions
as ganjax's own, so that the effect of one platform choice is measured side
by side. A variant whose backend equals the case's (--xla-default for
CycleGAN, which has no options; --stock-layers on a GPU) is skipped with a note.

  --stock-layers  (alias --native-convs) the backend with flax.linen's Conv and
                  ConvTranspose in place of ganjax/cpu_layers.py's forms: the
                  effect of those forms.
  --xla-default   the backend without its compiler options (XLA's defaults):
                  the effect of those options.
  --critic-loop   unrolled_d_updates=0: a step's n_critic > 1 critic
                  updates as a `lax.scan` (of the backend's loop layers) instead
                  of unrolled; cases with n_critic > 1 only. The effect of
                  unrolling.
  --heap-off      the same compiled step, run with glibc's defaults for large
                  blocks (`backend.keep_in_heap(False)`): every step maps its
                  temporaries anew and faults each page in. After each of its
                  repetitions the heap settings go back and one untimed step
                  grows the heap again, so that the other runners do not pay
                  for the switch. Only on the CPU with the host tuning applied.
  --plain-flax    `Backend(platform=...)`: stock layers, XLA's defaults and the
                  critic updates in a loop, what a plain Flax implementation
                  of the same step gets.
  --custom-convs  `Layers(*cpu_layers.layers(Rules(forced="native")))` in place
                  of the backend's layers (and loop layers): transposed
                  convolutions by phases (a one-pixel input's as a matrix
                  product), strided convolutions' input gradients by phases,
                  every convolution otherwise native. On a
                  GPU, whose backend has the stock layers, this compares the
                  stock transposed convolution with the phase form on that
                  device.

Every runner's minor page faults per step are reported (resource.getrusage;
the whole process's, which other threads add to).

--dtype bfloat16 sets config.dtype (bfloat16 compute, float32 parameters and
optimizer states) and runs PyTorch under autocast to bfloat16 with float32
parameters. On a CPU without bfloat16 matrix units both are slower than in
float32: the flag is for GPUs and TPUs, and measures the CPU honestly.

--small shrinks every network (widths 4, CycleGAN 1 block), the batches (16;
CycleGAN at most 2) and the repetitions, to test this script on a CPU.

--loop also times ganjax.train.train_and_evaluate on bundled MNIST with
experiments/gan.py (its log, sample and checkpoint cadences, eval_every=0) for
--loop-steps steps against as many bare steps of the same jitted step function
on in-memory batches: the loop's time from the end of its first (compiling)
step to its return, against the bare steps' time for the same number of
steps. Target: within 10%.
"""

import argparse
import dataclasses
import datetime
import functools
import importlib.util
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ganjax import algorithms, backend as backends, cpu_layers, parallel, train  # noqa: E402
from ganjax.models import STOCK, Layers  # noqa: E402

CASES = {
    # name: (experiment file, preset, overrides)
    "dcgan32": ("gan.py", None, {}),
    "dcgan_paper": ("gan.py", "cifar10", {}),
    "dcgan64": ("gan.py", "celeba64", {}),
    "wgan_gp": ("wgan_gp.py", None, {}),
    "wgan_gp64": ("wgan_gp.py", None, {"image_size": 64, "channels": 3, "g_width": 64,
                                       "d_width": 64}),
    "cgan": ("cgan.py", None, {}),
    "cyclegan128": ("cyclegan.py", "horse2zebra", {"image_size": 128, "load_size": 143,
                                                   "num_blocks": 6}),
    "cyclegan256": ("cyclegan.py", "horse2zebra", {}),
}
SMALL = {"g_width": 4, "d_width": 4, "num_blocks": 1}
DEFAULT_CASES = "dcgan32,cgan,wgan_gp,cyclegan128,dcgan_paper"
VARIANTS = {  # other ganjax steps timed alongside: key -> (flag, what it is)
    "ganjax_stock_layers": ("--stock-layers", "stock Flax layers"),
    "ganjax_xla_default": ("--xla-default", "XLA's default options"),
    "ganjax_critic_loop": ("--critic-loop", "the critic updates as a loop"),
    "ganjax_heap_off": ("--heap-off", "temporaries mapped anew each step"),
    "ganjax_plain_flax": ("--plain-flax", "stock layers, XLA defaults, critic loop"),
    "ganjax_custom_convs": ("--custom-convs", "cpu_layers forced native"),
}


def variant_backend(key: str, backend: backends.Backend) -> backends.Backend:
  """The backend of variant `key` of a case whose own backend is `backend`."""
  if key == "ganjax_stock_layers":
    return dataclasses.replace(backend, layers=STOCK, loop_layers=STOCK)
  if key == "ganjax_xla_default":
    return dataclasses.replace(backend, compiler_options=())
  if key == "ganjax_critic_loop":
    return dataclasses.replace(backend, unrolled_d_updates=0)
  if key == "ganjax_plain_flax":
    return backends.Backend(platform=backend.platform, cpu=backend.cpu)
  if key == "ganjax_custom_convs":
    custom = Layers(*cpu_layers.layers(cpu_layers.Rules(forced="native")))
    return dataclasses.replace(backend, layers=custom, loop_layers=custom)
  raise KeyError(key)


def same_step(a: backends.Backend, b: backends.Backend) -> bool:
  """Whether two backends build the same step (the CPU description aside)."""
  return dataclasses.replace(a, cpu=None) == dataclasses.replace(b, cpu=None)


def load_config(name: str, small: bool, batch: int | None):
  filename, preset, overrides = CASES[name]
  path = os.path.join(ROOT, "experiments", filename)
  spec = importlib.util.spec_from_file_location("experiment", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(preset)
  config.update(overrides)
  if small:
    config.update({k: v for k, v in SMALL.items() if k in config})
    if config.algorithm != "cyclegan":
      config.batch_size = 16
  if batch:  # --small caps it: the GPU sizes would take minutes on a CPU
    config.batch_size = min(batch, 2 if config.algorithm == "cyclegan" else 16) if small else batch
  return config


def cores() -> int:
  """The cores this process may run on (its affinity mask), else os.cpu_count()."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:
    return os.cpu_count() or 1


def rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------
# ganjax


def random_batch(config, n_critic: int, rng: np.random.Generator):
  shape = (n_critic, config.batch_size, config.image_size, config.image_size, config.channels)
  image = lambda: rng.uniform(-1, 1, shape).astype(np.float32)  # noqa: E731
  if config.algorithm == "cyclegan":
    return {"image_a": image(), "image_b": image()}
  batch = {"image": image()}
  if config.get("num_classes", 0):
    batch["label"] = rng.integers(0, config.num_classes, shape[:2]).astype(np.int32)
  else:
    batch["label"] = np.zeros(shape[:2], np.int32)
  return batch


def initial_state(config):
  """The host copy of a fresh state of `config` (stock layers: every backend's layers
  have the same parameters), as train.py initialises it."""
  algorithm = algorithms.get(config.algorithm)
  algorithm.validate(config)
  state = jax.jit(functools.partial(algorithm.init, config))(
      jax.random.PRNGKey(0), train.example_batch(config))
  return jax.device_get(state)


class GanjaxRunner:
  """The jitted data-parallel train step of `config` under `backend`, on in-memory
  batches, over all local devices: what train.py compiles."""

  def __init__(self, config, host_state, host_batches, backend: backends.Backend):
    self.config = config
    self.backend = backend
    algorithm = algorithms.get(config.algorithm)
    mesh = parallel.make_mesh(jax.local_devices())
    parallel.per_device_batch_size(config.batch_size, mesh)
    self.params = {k: train.count_params(v) for k, v in host_state.params.items()}
    self.state = parallel.replicate(host_state, mesh)  # a copy of its own: the step donates it
    self.batches = [parallel.shard_batch(b, mesh, batch_axis=1) for b in host_batches]
    step = parallel.data_parallel(
        functools.partial(algorithm.train_step, config, backend=backend), mesh,
        batch_axis=1, compiler_options=backend.jit_options())
    t0 = time.perf_counter()
    compiled = step.lower(self.state, self.batches[0]).compile()
    self.memory = xla_memory_mib(compiled)
    self.step = compiled
    self.state, metrics = self.step(self.state, self.batches[0])
    jax.block_until_ready(metrics)
    self.compile_s = time.perf_counter() - t0
    self.i = 0

  def run(self, k: int) -> float:
    t0 = time.perf_counter()
    metrics = None
    for _ in range(k):
      self.state, metrics = self.step(self.state, self.batches[self.i % len(self.batches)])
      self.i += 1
    jax.block_until_ready((self.state, metrics))
    return time.perf_counter() - t0


class HeapOffRunner:
  """A GanjaxRunner's step, run with glibc's defaults for large blocks
  (`backend.keep_in_heap(False)`); the host tuning's settings go back afterwards."""

  def __init__(self, runner):
    self.runner = runner
    self.compile_s = 0.0

  def run(self, k: int) -> float:
    backends.keep_in_heap(False)
    try:
      return self.runner.run(k)
    finally:
      backends.keep_in_heap(True)
      self.runner.run(1)  # untimed: the heap grows back before the other runners' steps


def xla_memory_mib(compiled):
  try:
    m = compiled.memory_analysis()
    total = (m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
             - m.alias_size_in_bytes)
    return total / 2**20
  except Exception:  # pylint: disable=broad-except
    return float("nan")


def device_peak_mib():
  stats = jax.local_devices()[0].memory_stats() or {}
  return stats["peak_bytes_in_use"] / 2**20 if "peak_bytes_in_use" in stats else None


# ---------------------------------------------------------------------------
# PyTorch


class TorchRunner:
  """A benchmarks/torch_reference.py step on in-memory batches (NCHW)."""

  def __init__(self, config, host_batches, mode: str, dtype: str, params_expected):
    import torch  # pylint: disable=g-import-not-at-top
    import torch_reference as ref  # pylint: disable=g-import-not-at-top
    self.torch = torch
    self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tdtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[dtype]
    compile_ = mode == "compile"
    c = config
    if compile_ and c.get("gp_weight", 0) > 0:
      # Measured with torch 2.13: the first step fails after minutes of compiling.
      raise RuntimeError("torch.compile with aot_autograd does not support the double"
                         " backward of the gradient penalty")
    if c.algorithm == "cyclegan":
      self.step = ref.make_cyclegan_step(
          channels=c.channels, g_width=c.g_width, d_width=c.d_width, num_blocks=c.num_blocks,
          d_layers=c.d_layers, cycle_weight=c.cycle_weight, identity_weight=c.identity_weight,
          pool_size=c.pool_size, lr=c.lr, betas=(c.beta1, c.beta2), device=self.device,
          dtype=tdtype, compile_=compile_)
    else:
      if c.optimizer != "adam" or c.minibatch_stddev or c.feature_matching or c.ema_decay:
        raise ValueError("the PyTorch reference covers Adam without minibatch stddev,"
                         " feature matching or EMA")
      self.step = ref.make_gan_step(
          image_size=c.image_size, channels=c.channels, g_width=c.g_width, d_width=c.d_width,
          latent_dim=c.latent_dim, batch_size=c.batch_size, n_critic=c.n_critic, loss=c.loss,
          d_norm=c.d_norm, gp_weight=c.gp_weight, num_classes=c.num_classes,
          label_dim=c.label_dim, g_lr=c.g_lr, d_lr=c.d_lr, betas=(c.beta1, c.beta2),
          device=self.device, dtype=tdtype, compile_=compile_)
    if params_expected is not None and self.step.params != params_expected:
      raise AssertionError(f"parameter counts differ: PyTorch {self.step.params},"
                           f" ganjax {params_expected}")

    def convert(x):
      t = torch.from_numpy(np.ascontiguousarray(x))
      if not t.is_floating_point():
        t = t.long()  # PyTorch indexes with int64
      if t.ndim == 5:  # [n, B, H, W, C] -> [n, B, C, H, W]
        t = t.permute(0, 1, 4, 2, 3).contiguous()
      return t.to(self.device)
    self.batches = [{k: convert(v) for k, v in b.items()} for b in host_batches]
    self.i = 0
    if self.device.type == "cuda":
      torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    self.run(1)
    self.compile_s = time.perf_counter() - t0

  def sync(self):
    if self.device.type == "cuda":
      self.torch.cuda.synchronize()

  def run(self, k: int) -> float:
    self.sync()
    t0 = time.perf_counter()
    for _ in range(k):
      self.step.run(self.batches[self.i % len(self.batches)])
      self.i += 1
    self.sync()
    return time.perf_counter() - t0

  def peak_mib(self):
    if self.device.type == "cuda":
      return self.torch.cuda.max_memory_allocated() / 2**20
    return None


# ---------------------------------------------------------------------------


def first_line(e: Exception) -> str:
  text = f"{type(e).__name__}: {e}".strip().splitlines()
  return text[0][:160] if text else type(e).__name__


def bench_case(name: str, args, tuned: dict) -> dict:
  case, _, batch = name.partition("@")
  config = load_config(case, args.small, int(batch) if batch else None)
  config.dtype = args.dtype
  n_critic = config.get("n_critic", 1)
  rng = np.random.default_rng(0)
  host_batches = [random_batch(config, n_critic, rng) for _ in range(2)]
  backend = backends.resolve(jax.local_devices(), config.algorithm)
  row = {"case": name, "algorithm": config.algorithm, "batch": config.batch_size,
         "image_size": config.image_size, "channels": config.channels,
         "n_critic": n_critic, "dtype": args.dtype, "backend": backend.describe(),
         "unrolled": backend.unroll_d_updates(n_critic), "notes": []}
  print(f"[{name}] {config.algorithm} {config.image_size}x{config.image_size}x"
        f"{config.channels}, batch {config.batch_size}, n_critic {n_critic}", flush=True)
  critic = ("one critic update" if n_critic == 1 else
            f"critic updates {'unrolled' if row['unrolled'] else 'in a loop'}")
  print(f"  backend: {backend.describe()}; {critic}", flush=True)

  runners = {}
  host_state = initial_state(config)
  ganjax_runner = GanjaxRunner(config, host_state, host_batches, backend)
  runners["ganjax"] = ganjax_runner
  params = ganjax_runner.params
  row.update(params=params, ganjax_compile_s=ganjax_runner.compile_s,
             ganjax_xla_memory_mib=ganjax_runner.memory)
  print(f"  ganjax: compiled and ran the first step in {ganjax_runner.compile_s:.1f}s",
        flush=True)

  def skip(key, why):
    row["notes"].append(f"{key}: not timed ({why})")
    print(f"  ganjax, {VARIANTS[key][1]}: not timed ({why})", flush=True)

  for key in args.variants:
    if key == "ganjax_heap_off":
      if backend.platform != "cpu" or not tuned.get("mallopt"):
        skip(key, "the host tuning is not applied" if backend.platform == "cpu"
             else "the heap settings concern the CPU only")
      else:
        runners[key] = HeapOffRunner(ganjax_runner)
      continue
    if key == "ganjax_critic_loop" and n_critic <= 1:
      skip(key, "one critic update per step")
      continue
    variant = variant_backend(key, backend)
    if same_step(variant, backend):
      skip(key, "the same step as ganjax's on this platform")
      continue
    runners[key] = GanjaxRunner(config, host_state, host_batches, variant)
    row[f"{key}_backend"] = variant.describe()
    row[f"{key}_compile_s"] = runners[key].compile_s
    print(f"  ganjax, {VARIANTS[key][1]}: compiled and ran the first step in"
          f" {runners[key].compile_s:.1f}s", flush=True)
  for mode in args.torch:
    try:
      runner = TorchRunner(config, host_batches, mode, args.dtype, params)
    except AssertionError:  # the networks differ: the comparison would mean nothing
      raise
    except Exception as e:  # pylint: disable=broad-except
      row[f"torch_{mode}"] = None
      row["notes"].append(f"torch {mode}: n/a ({first_line(e)})")
      print(f"  torch {mode}: n/a ({first_line(e)})", flush=True)
      continue
    runners[f"torch_{mode}"] = runner
    row[f"torch_{mode}_first_step_s"] = runner.compile_s
    print(f"  torch {mode}: first step {runner.compile_s:.1f}s", flush=True)

  # Warm up once more, then alternate repetitions in rotating order.
  for r in runners.values():
    r.run(1)
  times = {k: [] for k in runners}
  faults = {k: [] for k in runners}
  order = list(runners)
  for rep in range(args.reps):
    for k in order[rep % len(order):] + order[:rep % len(order)]:
      try:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        times[k].append(runners[k].run(args.steps))
        faults[k].append((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
                         / args.steps)
      except Exception as e:  # pylint: disable=broad-except
        if k == "ganjax":
          raise
        row["notes"].append(f"{k}: failed while timed ({first_line(e)})")
        order.remove(k)
        times.pop(k)
        break
  for k, ts in times.items():
    if ts:
      med = statistics.median(ts)
      row[k] = config.batch_size * args.steps / med
      row[f"{k}_s_per_step"] = med / args.steps
      row[f"{k}_rep_s"] = ts
      row[f"{k}_faults_per_step"] = statistics.median(faults[k])
  for mode in args.torch:
    if row.get("ganjax") and row.get(f"torch_{mode}"):
      row[f"ratio_{mode}"] = row["ganjax"] / row[f"torch_{mode}"]
    for k in VARIANTS:
      if row.get(k) and row.get(f"torch_{mode}"):
        row[f"{k}_ratio_{mode}"] = row[k] / row[f"torch_{mode}"]
  for k in VARIANTS:
    if row.get(k) and row.get("ganjax"):
      row[f"{k}_over_ganjax"] = row[k] / row["ganjax"]
  row["host_peak_rss_mib"] = rss_mib()
  if jax.default_backend() != "cpu":
    row["ganjax_device_peak_mib"] = device_peak_mib()
  if "torch_eager" in runners:
    row["torch_peak_mib"] = runners["torch_eager"].peak_mib()
  line = ", ".join(f"{k} {row[k]:.1f} img/s" for k in times if row.get(k))
  print(f"  {line}" + "".join(f", ganjax/{m} {row[f'ratio_{m}']:.2f}x"
                              for m in args.torch if row.get(f"ratio_{m}"))
        + "".join(f", {k}/ganjax {row[f'{k}_over_ganjax']:.2f}x"
                  for k in VARIANTS if row.get(f"{k}_over_ganjax")),
        flush=True)
  print("  minor page faults per step: " + ", ".join(
      f"{k} {row[f'{k}_faults_per_step']:.0f}" for k in times if f"{k}_faults_per_step" in row),
        flush=True)
  del runners
  return row


def bench_loop(args) -> dict:
  """train_and_evaluate for N steps against N bare steps of the same step function."""
  config = load_config("dcgan32", args.small, None)
  config.dataset = "bundled:mnist"
  config.eval_every = 0
  n = args.loop_steps
  config.num_train_steps = n
  marks = {}
  original = parallel.data_parallel

  def instrumented(step, mesh, batch_axis=0, donate=True, **options):
    jitted = original(step, mesh, batch_axis=batch_axis, donate=donate, **options)
    calls = [0]

    def call(state, batch):
      out = jitted(state, batch)
      calls[0] += 1
      if calls[0] == 1:
        jax.block_until_ready(out)
        marks["first_step_done"] = time.perf_counter()
      return out
    return call

  workdir = tempfile.mkdtemp(prefix="ganjax_loop_")
  parallel.data_parallel = instrumented
  try:
    t0 = time.perf_counter()
    train.train_and_evaluate(config, workdir)
    end = time.perf_counter()
  finally:
    parallel.data_parallel = original
    shutil.rmtree(workdir, ignore_errors=True)
  loop_s = end - marks["first_step_done"]

  rng = np.random.default_rng(1)
  runner = GanjaxRunner(config, initial_state(config),
                        [random_batch(config, 1, rng) for _ in range(2)],
                        backends.resolve(jax.local_devices(), config.algorithm))
  bare_s = runner.run(n - 1)
  row = {"case": "loop", "experiment": "experiments/gan.py", "steps": n,
         "log_every": config.log_every, "sample_every": config.sample_every,
         "checkpoint_every": config.checkpoint_every, "batch": config.batch_size,
         "loop_total_s": end - t0, "loop_after_first_step_s": loop_s,
         "bare_s": bare_s, "loop_over_bare": loop_s / bare_s}
  print(f"[loop] experiments/gan.py, {n} steps: the loop took {loop_s:.1f}s after its first"
        f" step, {n - 1} bare steps {bare_s:.1f}s: loop/bare {loop_s / bare_s:.3f}"
        f" (whole run with start-up and compilation {end - t0:.1f}s)", flush=True)
  return row


def fmt(x, spec=".4g"):
  return "n/a" if x is None else format(x, spec)


def ratio(x) -> str:
  return fmt(x, ".2f") + ("x" if x else "")


def print_table(rows, modes):
  """Every figure of every case."""
  head = ["case", "batch", "ganjax img/s"] + [f"torch {m}" for m in modes]
  head += [f"ganjax/{m}" for m in modes] + ["ganjax compile s", "XLA MiB", "RSS MiB"]
  variants = [k for k in VARIANTS if any(r.get(k) for r in rows)]
  for k in variants:
    head += [f"{k} img/s"] + [f"{k}/{m}" for m in modes]
  print("\n| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for r in rows:
    if r["case"] == "loop":
      continue
    cells = [r["case"], str(r["batch"]), fmt(r.get("ganjax"))]
    cells += [fmt(r.get(f"torch_{m}")) for m in modes]
    cells += [ratio(r.get(f"ratio_{m}")) for m in modes]
    cells += [fmt(r.get("ganjax_compile_s"), ".1f"), fmt(r.get("ganjax_xla_memory_mib"), ".0f"),
              fmt(r.get("host_peak_rss_mib"), ".0f")]
    for k in variants:
      cells += [fmt(r.get(k))] + [ratio(r.get(f"{k}_ratio_{m}")) for m in modes]
    print("| " + " | ".join(cells) + " |")
  for r in rows:
    for note in r.get("notes", []):
      print(f"  note ({r['case']}): {note}")


def print_summary(rows, modes):
  """Per case: ganjax, PyTorch (eager first), their ratios, and each variant / ganjax."""
  modes = sorted(modes, key=lambda m: m != "eager")
  variants = [k for k in VARIANTS if any(r.get(k) for r in rows)]
  head = ["case", "ganjax img/s"]
  for m in modes:
    head += [f"torch {m} img/s", f"ganjax/{m}"]
  head += [f"{k.removeprefix('ganjax_')}/ganjax" for k in variants]
  print("\nSummary (medians; a variant's ratio below 1 means it is slower than ganjax's step):")
  print("| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  for r in rows:
    if r["case"] == "loop":
      continue
    cells = [r["case"], fmt(r.get("ganjax"))]
    for m in modes:
      cells += [fmt(r.get(f"torch_{m}")), ratio(r.get(f"ratio_{m}"))]
    cells += [ratio(r.get(f"{k}_over_ganjax")) for k in variants]
    print("| " + " | ".join(cells) + " |")
  for k in variants:
    print(f"  {k.removeprefix('ganjax_')}: {VARIANTS[k][1]} ({VARIANTS[k][0]})")


def versions() -> dict:
  import flax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  found = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
           "python": platform.python_version()}
  try:
    import torch  # pylint: disable=g-import-not-at-top
    found["torch"] = torch.__version__
  except ImportError:
    found["torch"] = None
  return found


def environment(tuned: dict) -> dict:
  info = backends.cpu_info()
  env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "cpu": info.describe(), "cpu_model": info.model, "cpu_machine": info.machine,
         "cpu_isa": sorted(info.features & set(backends.ISA_SHOWN)),
         "cpu_count": os.cpu_count(), "cores": cores(), **versions(),
         "platform": jax.default_backend(), "device": jax.local_devices()[0].device_kind,
         "devices": jax.local_device_count(),
         "backend": backends.resolve(jax.local_devices(), "gan").describe(),
         "backend_cyclegan": backends.resolve(jax.local_devices(), "cyclegan").describe(),
         "host_tuning": tuned, "xla_flags": os.environ.get("XLA_FLAGS", ""),
         "loadavg_start": os.getloadavg()}
  if env["torch"]:
    import torch  # pylint: disable=g-import-not-at-top
    env["torch_threads"] = torch.get_num_threads()
  return env


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=DEFAULT_CASES)
  parser.add_argument("--torch", default="eager,compile",
                      help="comma-separated: eager, compile; or none")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--steps", type=int, default=None, help="steps per repetition")
  parser.add_argument("--reps", type=int, default=None, help="timed repetitions")
  parser.add_argument("--stock-layers", "--native-convs", dest="stock_layers",
                      action="store_true", help="also time ganjax with the stock Flax layers")
  parser.add_argument("--xla-default", action="store_true",
                      help="also time ganjax without the backend's compiler options")
  parser.add_argument("--critic-loop", action="store_true",
                      help="also time the critic updates as a loop (n_critic > 1)")
  parser.add_argument("--heap-off", action="store_true",
                      help="also time the step with its temporaries mapped anew each step")
  parser.add_argument("--plain-flax", action="store_true",
                      help="also time the step as plain Flax gets it: stock layers, XLA's"
                           " defaults, the critic updates in a loop")
  parser.add_argument("--custom-convs", action="store_true",
                      help="also time ganjax with cpu_layers' forms forced native (on a GPU:"
                           " the phase form of the transposed convolution against the stock one)")
  parser.add_argument("--loop", action="store_true")
  parser.add_argument("--loop-steps", type=int, default=None)
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  args.torch = [] if args.torch == "none" else [m for m in args.torch.split(",") if m]
  for m in args.torch:
    if m not in ("eager", "compile"):
      parser.error(f"--torch {m}: use eager, compile or none")
  args.variants = [k for k, (flag, _) in VARIANTS.items()
                   if getattr(args, flag[2:].replace("-", "_"))]
  args.steps = args.steps or (2 if args.small else 5)
  args.reps = args.reps or (2 if args.small else 5)
  args.loop_steps = args.loop_steps or (30 if args.small else 500)
  cases = [c for c in args.cases.split(",") if c]
  for c in cases:
    if c.partition("@")[0] not in CASES:
      parser.error(f"unknown case {c!r}; cases: {', '.join(CASES)} (case@batch sets the batch)")

  # What the entry points do before their first computation on the CPU.
  tuned = backends.tune_host_if_cpu(jax.local_devices())
  if args.torch:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(cores())
  env = environment(tuned)
  print(f"{env['date']}: {env['devices']} x {env['device']} ({env['platform']}),"
        f" load average {env['loadavg_start']}", flush=True)
  print(f"CPU: {env['cpu']}; os.cpu_count() {env['cpu_count']}, {env['cores']} usable by this"
        f" process", flush=True)
  print(f"JAX {env['jax']}, jaxlib {env['jaxlib']}, Flax {env['flax']}, PyTorch {env['torch']},"
        f" Python {env['python']}; XLA_FLAGS={env['xla_flags']!r}", flush=True)
  print(f"backend (GAN family): {env['backend']}", flush=True)
  if env["backend_cyclegan"] != env["backend"]:
    print(f"backend (CycleGAN): {env['backend_cyclegan']}", flush=True)
  print(f"host tuning: {tuned or 'none'}", flush=True)
  rows = [bench_case(c, args, tuned) for c in cases]
  if args.loop:
    rows.append(bench_loop(args))
  env["loadavg_end"] = os.getloadavg()
  print_table(rows, args.torch)
  print_summary(rows, args.torch)
  print(f"load average at the end: {env['loadavg_end']}; steps per repetition {args.steps},"
        f" repetitions {args.reps} (median)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"environment": env, "args": vars(args), "rows": rows}, f, indent=2)
      f.write("\n")


if __name__ == "__main__":
  main()
