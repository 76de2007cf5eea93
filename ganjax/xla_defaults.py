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

A flag is added only when the installed jaxlib knows it: XLA aborts the process
on an unknown flag, and flags come and go between releases. Any mention of a
flag in XLA_FLAGS (say --xla_cpu_use_xnnpack=false) leaves it to the user, and
GANJAX_XLA_DEFAULTS=0 turns all of them off.
"""

import importlib.util
import mmap
import os

FLAGS = {"xla_cpu_use_xnnpack": "true"}


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
  if environ.get("GANJAX_XLA_DEFAULTS", "1") == "0":
    return []
  current = environ.get("XLA_FLAGS", "")
  added = [f"--{name}={value}" for name, value in FLAGS.items()
           if name not in current and _jaxlib_knows(name)]
  if added:
    environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
  return added
