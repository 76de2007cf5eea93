"""Images per second of ganjax's train steps, side by side with PyTorch, in one process.

  python benchmarks/throughput.py [--cases dcgan32,dcgan64,wgan_gp,cgan,cyclegan128,cyclegan256]
      [--torch eager,compile | none] [--dtype float32|bfloat16] [--small]
      [--steps K] [--reps R] [--native-convs] [--xla-default] [--critic-loop] [--heap-off]
      [--loop [--loop-steps N]]
      [--json OUT]

For each case, ganjax's jitted data-parallel step (parallel.data_parallel over
all local devices, as train.py builds it) runs on in-memory random batches in
[-1, 1] shaped as data.make_batches gives them ([n_critic, B, H, W, C]). It is
compiled ahead of time once (the "compile" column: lowering, compilation and
the first step), and then timed in R repetitions of K steps, ending each with
block_until_ready; the figure is the median repetition. The PyTorch reference
of the same networks, losses, optimizers and batch (benchmarks/torch_reference.py,
eager and torch.compile) is timed in the same repetitions, in rotating order,
so load from other processes falls on all of them alike. Parameter counts of
the two are checked to be equal first.

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
  dcgan64      experiments/gan.py:celeba64: 64x64x3, width 64, batch 128
  wgan_gp      experiments/wgan_gp.py: 32x32x1, width 32, LayerNorm critic, batch 64
  wgan_gp64    the same at 64x64x3, width 64, batch 64
  cgan         experiments/cgan.py: 32x32x1, 10 classes, width 32, batch 64
  cyclegan128  experiments/cyclegan.py:horse2zebra at 128x128 with 6 blocks, batch 1
  cyclegan256  experiments/cyclegan.py:horse2zebra: 256x256, 9 blocks, batch 1

The default cases are the issue's list (every case above but wgan_gp64); on a
2-core CPU the 64x64 and 256x256 ones take minutes per repetition.

--dtype bfloat16 sets config.dtype (bfloat16 compute, float32 parameters and
optimizer states) and runs PyTorch under autocast to bfloat16 with float32
parameters. On a CPU without bfloat16 matrix units both are slower than in
float32: the flag is for GPUs and TPUs, and measures the CPU honestly.

--native-convs also times ganjax with every convolution native
(layers.conv_form("native"), as before the CPU's matrix-product forms), in the
same interleaved repetitions: the effect of those forms, side by side.

--xla-default also times ganjax's step compiled without its algorithm's XLA
options (`compiler_options(config)`, ganjax/xla_defaults.py), i.e. with XLA's
defaults, in the same interleaved repetitions: the effect of those options.

--critic-loop also times the step with its n_critic > 1 critic updates as a
loop (the `lax.scan` of `layers.loop_body()` convolutions that longer runs
get) instead of unrolled (gan.unroll_critic), in the same interleaved
repetitions: the effect of unrolling.

--heap-off also times the same compiled ganjax step with glibc's defaults for
large blocks restored while it runs (ganjax/host_heap.py), in the same
interleaved repetitions: then every step maps its temporaries anew and faults
each page in. After each of its repetitions one untimed step grows the heap
back, so that ganjax's own repetitions do not pay for the switch. Every
runner's minor page faults per step are reported (resource.getrusage; the
whole process's, which other threads add to).

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

from ganjax import algorithms, host_heap, parallel, train  # noqa: E402
from ganjax.algorithms import gan  # noqa: E402
from ganjax.models import layers  # noqa: E402

CASES = {
    # name: (experiment file, preset, overrides)
    "dcgan32": ("gan.py", None, {}),
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
VARIANTS = {  # other ganjax steps timed alongside (--native-convs, --xla-default, ...)
    "ganjax_native": "native convolutions",
    "ganjax_xla_default": "XLA's default options",
    "ganjax_critic_loop": "the critic updates as a loop",
    "ganjax_heap_off": "temporaries mapped anew each step",
}


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


class GanjaxRunner:
  """The jitted data-parallel train step of `config` on in-memory batches."""

  def __init__(self, config, host_batches, compiler_options=None):
    """`compiler_options` None: the algorithm's own (what train.py compiles)."""
    self.config = config
    algorithm = algorithms.get(config.algorithm)
    if compiler_options is None:
      compiler_options = algorithm.compiler_options(config)
    algorithm.validate(config)
    mesh = parallel.make_mesh(jax.local_devices())
    parallel.per_device_batch_size(config.batch_size, mesh)
    state = jax.jit(functools.partial(algorithm.init, config))(
        jax.random.PRNGKey(0), train.example_batch(config))
    self.params = {k: train.count_params(v) for k, v in state.params.items()}
    self.state = parallel.replicate(jax.device_get(state), mesh)
    self.batches = [parallel.shard_batch(b, mesh, batch_axis=1) for b in host_batches]
    step = parallel.data_parallel(functools.partial(algorithm.train_step, config), mesh,
                                  batch_axis=1, compiler_options=compiler_options)
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
  """A GanjaxRunner's step, run with glibc's defaults for large blocks (host_heap.py)."""

  def __init__(self, runner):
    self.runner = runner
    self.compile_s = 0.0

  def run(self, k: int) -> float:
    host_heap.keep_in_heap(False)
    try:
      return self.runner.run(k)
    finally:
      host_heap.keep_in_heap(host_heap.enabled())
      self.runner.run(1)  # untimed: the heap grows back before ganjax's own timed steps


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


def bench_case(name: str, args) -> dict:
  case, _, batch = name.partition("@")
  config = load_config(case, args.small, int(batch) if batch else None)
  n_critic = config.get("n_critic", 1)
  rng = np.random.default_rng(0)
  host_batches = [random_batch(config, n_critic, rng) for _ in range(2)]
  row = {"case": name, "algorithm": config.algorithm, "batch": config.batch_size,
         "image_size": config.image_size, "channels": config.channels,
         "n_critic": n_critic, "dtype": args.dtype, "notes": []}
  print(f"[{name}] {config.algorithm} {config.image_size}x{config.image_size}x"
        f"{config.channels}, batch {config.batch_size}, n_critic {n_critic}", flush=True)

  runners = {}
  config.dtype = args.dtype
  ganjax_runner = GanjaxRunner(config, host_batches)
  runners["ganjax"] = ganjax_runner
  params = ganjax_runner.params
  row.update(params=params, ganjax_compile_s=ganjax_runner.compile_s,
             ganjax_xla_memory_mib=ganjax_runner.memory)
  print(f"  ganjax: compiled and ran the first step in {ganjax_runner.compile_s:.1f}s",
        flush=True)
  if args.native_convs:
    with layers.conv_form("native"):  # compiled here, so the form sticks to this runner
      runners["ganjax_native"] = GanjaxRunner(config, host_batches)
  if args.xla_default:
    runners["ganjax_xla_default"] = GanjaxRunner(config, host_batches, compiler_options={})
  if args.critic_loop and n_critic > 1:
    unrolled = gan.UNROLLED_CRITIC_UPDATES
    gan.UNROLLED_CRITIC_UPDATES = 1  # read when the step is traced, in the constructor
    try:
      runners["ganjax_critic_loop"] = GanjaxRunner(config, host_batches)
    finally:
      gan.UNROLLED_CRITIC_UPDATES = unrolled
  if args.heap_off:
    runners["ganjax_heap_off"] = HeapOffRunner(ganjax_runner)
  for k in VARIANTS:
    if k in runners:
      print(f"  ganjax, {VARIANTS[k]}: compiled and ran the first step in"
            f" {runners[k].compile_s:.1f}s", flush=True)
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
  row["host_peak_rss_mib"] = rss_mib()
  if jax.default_backend() != "cpu":
    row["ganjax_device_peak_mib"] = device_peak_mib()
  if "torch_eager" in runners:
    row["torch_peak_mib"] = runners["torch_eager"].peak_mib()
  line = ", ".join(f"{k} {row[k]:.1f} img/s" for k in times if row.get(k))
  print(f"  {line}" + "".join(f", ganjax/{m} {row[f'ratio_{m}']:.2f}x"
                              for m in args.torch if row.get(f"ratio_{m}"))
        + "".join(f", {k}/{m} {row[f'{k}_ratio_{m}']:.2f}x"
                  for k in VARIANTS for m in args.torch if row.get(f"{k}_ratio_{m}")),
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
  runner = GanjaxRunner(config, [random_batch(config, 1, rng) for _ in range(2)])
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


def print_table(rows, modes):
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
    cells += [fmt(r.get(f"ratio_{m}"), ".2f") + ("x" if r.get(f"ratio_{m}") else "")
              for m in modes]
    cells += [fmt(r.get("ganjax_compile_s"), ".1f"), fmt(r.get("ganjax_xla_memory_mib"), ".0f"),
              fmt(r.get("host_peak_rss_mib"), ".0f")]
    for k in variants:
      cells += [fmt(r.get(k))]
      cells += [fmt(r.get(f"{k}_ratio_{m}"), ".2f") + ("x" if r.get(f"{k}_ratio_{m}") else "")
                for m in modes]
    print("| " + " | ".join(cells) + " |")
  for r in rows:
    for note in r.get("notes", []):
      print(f"  note ({r['case']}): {note}")


def environment() -> dict:
  env = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
         "jax": jax.__version__, "backend": jax.default_backend(),
         "device": jax.local_devices()[0].device_kind, "devices": jax.local_device_count(),
         "cores": cores(), "python": platform.python_version(),
         "loadavg_start": os.getloadavg()}
  try:
    import torch  # pylint: disable=g-import-not-at-top
    env["torch"] = torch.__version__
    env["torch_threads"] = torch.get_num_threads()
  except ImportError:
    env["torch"] = None
  return env


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default="dcgan32,dcgan64,wgan_gp,cgan,cyclegan128,cyclegan256")
  parser.add_argument("--torch", default="eager,compile",
                      help="comma-separated: eager, compile; or none")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--small", action="store_true")
  parser.add_argument("--steps", type=int, default=None, help="steps per repetition")
  parser.add_argument("--reps", type=int, default=None, help="timed repetitions")
  parser.add_argument("--native-convs", action="store_true",
                      help="also time ganjax with native convolutions only")
  parser.add_argument("--xla-default", action="store_true",
                      help="also time ganjax without its algorithm's XLA options")
  parser.add_argument("--critic-loop", action="store_true",
                      help="also time the critic updates as a loop (n_critic > 1)")
  parser.add_argument("--heap-off", action="store_true",
                      help="also time the step with its temporaries mapped anew each step")
  parser.add_argument("--loop", action="store_true")
  parser.add_argument("--loop-steps", type=int, default=None)
  parser.add_argument("--json", default=None)
  args = parser.parse_args()
  args.torch = [] if args.torch == "none" else [m for m in args.torch.split(",") if m]
  for m in args.torch:
    if m not in ("eager", "compile"):
      parser.error(f"--torch {m}: use eager, compile or none")
  args.steps = args.steps or (2 if args.small else 5)
  args.reps = args.reps or (2 if args.small else 5)
  args.loop_steps = args.loop_steps or (30 if args.small else 500)
  cases = [c for c in args.cases.split(",") if c]
  for c in cases:
    if c.partition("@")[0] not in CASES:
      parser.error(f"unknown case {c!r}; cases: {', '.join(CASES)} (case@batch sets the batch)")

  if args.torch:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(cores())
  env = environment()
  print(f"{env['date']}: JAX {env['jax']} on {env['devices']} {env['device']}"
        f" ({env['backend']}), PyTorch {env.get('torch')}, {env['cores']} cores,"
        f" load average {env['loadavg_start']}", flush=True)
  rows = [bench_case(c, args) for c in cases]
  if args.loop:
    rows.append(bench_loop(args))
  env["loadavg_end"] = os.getloadavg()
  print_table(rows, args.torch)
  print(f"load average at the end: {env['loadavg_end']}; steps per repetition {args.steps},"
        f" repetitions {args.reps} (median)")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"environment": env, "args": vars(args), "rows": rows}, f, indent=2)
      f.write("\n")


if __name__ == "__main__":
  main()
