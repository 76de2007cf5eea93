"""The one place where ganjax depends on the platform it runs on.

A `Backend` is resolved once per run, from the devices of the run's mesh, and
passed down explicitly: train.py hands it to the algorithm's `init`,
`train_step` and `sample` (and `translate`), and to `parallel.data_parallel`
for the step's compiler options; evaluate, sample and translate resolve their
own. Models, layers and algorithms never ask JAX which platform they are on.

What it decides:

  layers         the convolution module factories the networks are built with
                 (`models.Layers`). GPU and TPU get the stock `flax.linen.Conv`
                 and `ConvTranspose`. The CPU gets ganjax/cpu_layers.py's forms,
                 which compute the same sums as matrix products where XLA:CPU's
                 convolution kernels are slow, with rules checked per CPU type.
  loop_layers    the factories for networks traced in the body of a loop (the
                 `lax.scan` of a long run of discriminator updates): on the CPU every
                 convolution there is a matrix product, because XLA:CPU runs
                 native convolutions inside a loop many times more slowly.
  unrolled_d_updates
                 the most discriminator updates per step that are unrolled into
                 straight-line code rather than run as a loop. On the CPU
                 unrolling a few (WGAN's 5) pays; GPU and TPU run the loop.
  compiler_options
                 XLA options of the train step's program (`jax.jit`'s
                 `compiler_options`), each kept only if this jaxlib compiles a
                 small program with it.
  host tuning    `tune_host()`: glibc settings that keep XLA:CPU's per-step
                 temporaries in the heap, and inline CPU dispatch, so that a step
                 does not page-fault its working memory in anew. The command-line
                 entry points apply it when the run's platform is the CPU; a
                 library user opts in by calling it. `import ganjax` changes
                 nothing in the process.

The compute dtype is not decided here: `config.dtype` is the user's choice,
the same on every platform, so that a config means the same computation
everywhere.

`GANJAX_CPU_FORMS=0` gives the CPU the stock layers and XLA's default
options (to compare, or to rule the forms out when debugging), and
`GANJAX_HOST_TUNING=0` keeps glibc's and JAX's defaults in the entry points.
benchmarks/throughput.py times the forms, the options and the host tuning
side by side with PyTorch, and prints the CPU's model and ISA extensions.
"""

import ctypes
import ctypes.util
import dataclasses
import functools
import os
import platform as _platform
import sys
from collections.abc import Sequence

from ganjax.models import STOCK, Layers

FORMS_ENV = "GANJAX_CPU_FORMS"
HOST_ENV = "GANJAX_HOST_TUNING"
UNROLLED_D_UPDATES = 10  # on the CPU, at most this many discriminator updates are unrolled

# jit compiler options per family of networks on the CPU. The GAN family's
# steps (DCGAN-style 4x4 stride-2 convolutions at batch 64 on 4x4 to 32x32 maps)
# run their convolutions on XLA's own kernels rather than YNNPACK's, which
# spent most of the step in the discriminator's weight gradients; CycleGAN's keep
# XLA's default (benchmarks/throughput.py --xla-default times both).
CONVOLUTIONS_BY_XLA = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}
CPU_OPTIONS = {"cyclegan": {}}  # by algorithm; every other algorithm: CONVOLUTIONS_BY_XLA


@dataclasses.dataclass(frozen=True)
class CpuInfo:
  """The host CPU: model name, architecture and the ISA extensions that matter here."""
  model: str
  machine: str
  features: frozenset

  def describe(self) -> str:
    shown = sorted(self.features & set(ISA_SHOWN)) or ["none of " + ", ".join(ISA_SHOWN)]
    return f"{self.model} ({self.machine}; {', '.join(shown)})"


ISA_SHOWN = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "asimd", "sve")


@functools.lru_cache(maxsize=None)
def cpu_info() -> CpuInfo:
  """The host CPU, from /proc/cpuinfo on Linux and sysctl on macOS (empty elsewhere)."""
  model, features = "", set()
  try:
    with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model") and not model:
          model = value.strip()
        elif key in ("flags", "Features"):
          features.update(value.split())
  except OSError:
    pass
  model = model or _platform.processor()
  if sys.platform == "darwin":
    import subprocess  # pylint: disable=import-outside-toplevel
    try:
      model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                             text=True, timeout=5).stdout.strip() or model
    except (OSError, subprocess.SubprocessError):
      pass
  return CpuInfo(model=model or "unknown CPU", machine=_platform.machine(),
                 features=frozenset(features))


@dataclasses.dataclass(frozen=True)
class Backend:
  """Everything platform-dependent about a run (see the module doc). Frozen and
  hashable: a jitted function closed over one compiles for that one."""
  platform: str = "any"
  layers: Layers = STOCK
  loop_layers: Layers = STOCK
  unrolled_d_updates: int = 0
  compiler_options: tuple = ()  # ((name, value), ...)
  cpu: CpuInfo | None = None

  def unroll_d_updates(self, n_critic: int) -> bool:
    """Whether a step's n_critic discriminator updates are unrolled rather than a loop."""
    return 1 < n_critic <= self.unrolled_d_updates

  def jit_options(self) -> dict | None:
    """The train step's `jax.jit(compiler_options=...)`."""
    return dict(self.compiler_options) or None

  def describe(self) -> str:
    what = self.platform
    if self.cpu is not None:
      what += f", {self.cpu.describe()}"
    if self.layers is not STOCK:
      what += ", CPU convolution forms"
    if self.compiler_options:
      what += ", options " + ", ".join(f"{k}={v}" for k, v in self.compiler_options)
    return what


STOCK_BACKEND = Backend()  # stock Flax layers, XLA's defaults, discriminator updates in a loop


def enabled(name: str, environ=os.environ) -> bool:
  return environ.get(name, "1") != "0"


def cpu_rules(info: CpuInfo):
  """The CPU forms' rules for this CPU type (cpu_layers.Rules; benchmarks/conv_forms.py)."""
  from ganjax import cpu_layers  # pylint: disable=import-outside-toplevel
  del info  # one set of rules: both CPU types measured (AVX2; AVX-512 with AMX) pick alike
  return cpu_layers.Rules()


def cpu_layers_for(rules) -> tuple[Layers, Layers]:
  """(layers, loop_layers) for the CPU forms under `rules`."""
  from ganjax import cpu_layers  # pylint: disable=import-outside-toplevel
  straight = Layers(*cpu_layers.layers(rules))
  loop = Layers(*cpu_layers.layers(dataclasses.replace(rules, in_loop=True)))
  return straight, loop


@functools.lru_cache(maxsize=None)
def supported_options(options: tuple) -> tuple:
  """The (name, value) options that this jaxlib compiles a small CPU program with; an
  option or value it does not know is dropped (XLA refuses to compile with one)."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  kept = []
  for name, value in options:
    try:
      jax.jit(lambda x: x @ x, compiler_options={name: value}).lower(
          jnp.ones((2, 2), jnp.float32)).compile()
    except Exception:  # pylint: disable=broad-except  # JaxRuntimeError: unknown option/value
      continue
    kept.append((name, value))
  return tuple(kept)


def resolve(devices: Sequence | None = None, algorithm: str = "gan",
            environ=os.environ) -> Backend:
  """The backend of a run of `algorithm` (config.algorithm) over `devices` (default: all
  of JAX's devices)."""
  if devices is None:
    import jax  # pylint: disable=import-outside-toplevel
    devices = jax.devices()
  platforms = {d.platform for d in devices}
  if len(platforms) != 1:
    raise ValueError(f"a run's devices must share one platform, got {sorted(platforms)}")
  (platform,) = platforms
  if platform != "cpu":
    return Backend(platform=platform)
  info = cpu_info()
  if not enabled(FORMS_ENV, environ):
    return Backend(platform="cpu", cpu=info)
  layers, loop_layers = cpu_layers_for(cpu_rules(info))
  options = CPU_OPTIONS.get(algorithm, CONVOLUTIONS_BY_XLA)
  current = environ.get("XLA_FLAGS", "")
  options = tuple(sorted((k, v) for k, v in options.items() if k not in current))
  return Backend(platform="cpu", layers=layers, loop_layers=loop_layers,
                 unrolled_d_updates=UNROLLED_D_UPDATES,
                 compiler_options=supported_options(options), cpu=info)


# --- host tuning ------------------------------------------------------------------------

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_MAX = -4
GLIBC_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}
ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"


@functools.lru_cache(maxsize=None)
def _glibc():
  """glibc's handle, or None on other C libraries (musl, macOS, Windows)."""
  if not sys.platform.startswith("linux"):
    return None
  try:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement  (glibc only)
    return libc if hasattr(libc, "mallopt") else None
  except (OSError, AttributeError):
    return None


def keep_in_heap(keep: bool) -> bool:
  """Large blocks from the heap, which keeps freed memory (True), or glibc's defaults:
  mmap above its threshold, freed memory trimmed and given back (False). Returns
  whether glibc took the settings (False without glibc)."""
  libc = _glibc()
  if libc is None:
    return False
  if keep:
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))
  ok = all(libc.mallopt(param, value) for param, value in GLIBC_DEFAULTS.items())
  libc.malloc_trim(0)  # what the heap kept goes back, as it would have by default
  return bool(ok)


def tune_host(environ=os.environ, inline_dispatch: bool = True) -> dict:
  """Keeps XLA:CPU's per-step temporaries in the heap; returns what it set, or {}.

  Every execution of a compiled CPU program allocates one buffer for all of its
  temporaries and frees it at the end (about 950 MiB for CycleGAN-128's step).
  glibc serves a block that large with a fresh mmap and returns it with munmap,
  so each step faults every page of it in anew. Two settings keep it:

    1. mallopt(M_MMAP_MAX, 0), large blocks from the heap, and
       mallopt(M_TRIM_THRESHOLD, -1), freed memory kept for the next step;
    2. jax_cpu_enable_async_dispatch = False: a single-device program then runs
       on the calling thread, whose blocks come from the main heap. A pool
       thread's arena serves blocks over 64 MiB with mmap whatever mallopt says.

  The process keeps its high-water mark of heap memory until it exits; a train
  process does the same work every step, so that memory is what the next step
  needs anyway. Only glibc has mallopt: elsewhere nothing is changed, dispatch
  included (inline dispatch alone made small steps fault their temporaries in
  every step). `GANJAX_HOST_TUNING=0` turns it off; `inline_dispatch=False` leaves the
  dispatch alone. Call it only for a run whose devices are the CPU: the settings do
  nothing for programs on an accelerator.
  """
  if not enabled(HOST_ENV, environ) or not keep_in_heap(True):
    return {}
  import jax  # pylint: disable=import-outside-toplevel
  done = {"mallopt": True}
  if inline_dispatch and jax.config.values.get(ASYNC_DISPATCH):
    jax.config.update(ASYNC_DISPATCH, False)
    done[ASYNC_DISPATCH] = False
  return done


def tune_host_if_cpu(devices: Sequence | None = None) -> dict:
  """What the command-line entry points call before their first computation: `tune_host()`
  when the run's devices (default: JAX's) are the CPU; returns what it set.

  JAX reads the dispatch setting when it creates its CPU client, which finding the
  devices has just done; with no array made yet, the clients are dropped so that the
  next computation creates them again with the setting. Calling it after arrays exist
  would invalidate them: a library user calls `tune_host()` before using JAX instead.
  A multi-process run keeps its clients and gets the heap settings alone.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.extend  # pylint: disable=import-outside-toplevel
  if devices is None:
    devices = jax.devices()
  if {d.platform for d in devices} != {"cpu"}:
    return {}
  # The clients of a multi-process run are bound to the distributed service and cannot be
  # created again; its programs span several devices and run on the pool anyway.
  done = tune_host(inline_dispatch=not jax.distributed.is_initialized())
  if ASYNC_DISPATCH in done:
    jax.extend.backend.clear_backends()
  return done
