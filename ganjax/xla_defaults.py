"""XLA flags that ganjax turns on before JAX starts, unless the user has set them.

`import ganjax` calls `apply()`. XLA reads the XLA_FLAGS environment variable
once, when JAX creates its first backend, so the flags take effect in every
process that imports ganjax before it runs JAX code: `python -m ganjax.main`
and the other entry points, the tests, the benchmarks, and scripts that import
ganjax first. In a process whose JAX has already started they change nothing
there, only the environment that its subprocesses inherit.

The flags:

  --xla_cpu_use_xnnpack=true   XLA:CPU runs matrix products (and with them
      ganjax's matrix-product convolutions, models/layers.py) with XNNPACK.
      Measured on the 2-core development machine: CycleGAN-128's ResNet
      generator, forward pass 1.5x and gradient 1.4x faster, and the whole
      CycleGAN-128 step from 0.75x to 1.08x of PyTorch eager's images/s
      (benchmarks/RESULTS.md). It only concerns the CPU backend.

Options of one program (jax.jit's compiler_options), chosen per algorithm by
its `compiler_options(config)` and passed to the train step's jit by
parallel.data_parallel; `program_options` keeps those that apply:

  CONVOLUTIONS_BY_XLA: xla_cpu_experimental_ynn_fusion_type = individual dots
      and reductions, i.e. XLA:CPU's default list (individual dots,
      individual convolutions, reductions) less the convolutions, which then
      run on XLA's own convolution kernels instead of YNNPACK's. The GAN
      family's DCGAN-32, cGAN and WGAN-GP steps (4x4 stride-2 convolutions
      at batch 64 on 4x4 to 32x32 maps) ran 1.5x to 1.7x faster so on the
      2-core development machine, where the YNNPACK kernels spent most of the
      step in the critic's weight gradients; CycleGAN's step ran 0.8x as
      fast, so its program keeps the default (benchmarks/RESULTS.md).

A flag or option is used only when the installed jaxlib knows it (its name,
and for options their values, are in the library): XLA aborts the process on
an unknown flag and refuses to compile with an unknown option, and both come
and go between releases. Any mention of a flag in XLA_FLAGS (say
--xla_cpu_use_xnnpack=false) leaves it, and the program option of the same
name, to the user, and GANJAX_XLA_DEFAULTS=0 turns all of them off.
"""

import functools
import importlib.util
import mmap
import os

FLAGS = {"xla_cpu_use_xnnpack": "true"}
CONVOLUTIONS_BY_XLA = {
    "xla_cpu_experimental_ynn_fusion_type":
        "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE",
}


def enabled(environ=os.environ) -> bool:
  return environ.get("GANJAX_XLA_DEFAULTS", "1") != "0"


@functools.lru_cache(maxsize=None)
def _jaxlib_knows(name: str) -> bool:
  """Whether the installed jaxlib's XLA defines the flag (its name is in the library)."""
  spec = importlib.util.find_spec("jaxlib")
  if spec is None or not spec.submodule_search_locations:
    return False
  for directory in spec.submodule_search_locations:
    for library in ("libjax_common.so", "xla_extension.so"):
      path = os.path.join(directory, library)
      try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
          if m.find(name.encode()) >= 0:
            return True
      except (OSError, ValueError):
        continue
  return False


def apply(environ=os.environ) -> list[str]:
  """Adds the FLAGS that the user has not set and jaxlib knows to XLA_FLAGS; returns them."""
  if not enabled(environ):
    return []
  current = environ.get("XLA_FLAGS", "")
  added = [f"--{name}={value}" for name, value in FLAGS.items()
           if name not in current and _jaxlib_knows(name)]
  if added:
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added


def program_options(options: dict, platform: str | None = None, environ=os.environ) -> dict:
  """The `options` (jax.jit compiler_options, all XLA:CPU ones) that apply here: {} unless
  `platform` (default: JAX's default backend) is the CPU; without those the user set in
  XLA_FLAGS or that the installed jaxlib does not know; {} with GANJAX_XLA_DEFAULTS=0."""
  if not enabled(environ):
    return {}
  if platform is None:
    import jax  # pylint: disable=import-outside-toplevel
    platform = jax.default_backend()
  if platform != "cpu":
    return {}
  current = environ.get("XLA_FLAGS", "")
  return {name: value for name, value in options.items()
          if name not in current and _jaxlib_knows(name)
          and all(_jaxlib_knows(v) for v in str(value).split(","))}
