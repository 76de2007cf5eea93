"""Keep XLA:CPU's per-step working memory in the heap, so no step page-faults it in anew.

`import ganjax` calls `apply()`. It turns off only when GANJAX_HOST_HEAP=0 or
GANJAX_XLA_DEFAULTS=0 is set.

What was slow: every execution of a compiled program on the CPU allocates
one buffer for all of its temporaries, and frees it at the end: about 950 MiB
for CycleGAN-128's train step, its saved activations and im2col patches.

glibc's malloc serves a block that large with a fresh mmap and returns it with
munmap. So every step touched all of that memory as new pages: 243,000 minor
page faults per CycleGAN-128 step, each a trap into the kernel and a zeroed
4 KiB page. PyTorch does not pay this, because its tensors are separate
allocations below glibc's mmap threshold, which the heap reuses.

Two settings keep the buffer in the heap:

  1. JAX's jax_cpu_enable_async_dispatch = False. The CPU client then runs a
     single-device program on the calling thread, whose allocations come
     from glibc's main heap. With asynchronous dispatch it ran on a pool
     thread, and glibc serves a pool thread's blocks above 64 MiB with mmap
     whatever the settings below. Programs over several devices run on the
     pool either way (JAX's flag concerns single-device programs only).
     Dispatching inline means Python waits for each step instead of queuing
     the next. The train loop waits at log time anyway, and its input
     pipeline prefetches in threads of its own.
  2. mallopt(M_MMAP_MAX, 0): large blocks come from the heap too. And
     mallopt(M_TRIM_THRESHOLD, -1): freed memory stays in the process for
     the next step instead of going back to the kernel.

The cost is that the process keeps its high-water mark of heap memory until
it exits. A train process does the same work every step, so that memory is
what the next step needs anyway.

Measured on the 2-core development machine, in one process, with glibc's
defaults switched back on between repetitions (`python
benchmarks/throughput.py --heap-off`; benchmarks/RESULTS.md):
- CycleGAN-128's step (temporaries over 64 MiB, which asynchronous dispatch
  also mapped anew every step) ran 1.2x as fast, with about 100 page faults
  per step left.
- DCGAN-32's temporaries are smaller than 64 MiB. With asynchronous
  dispatch a pool thread's arena kept them, and it had no faults to lose.
  Inline, it needs the mallopt settings not to fault them in every step.
The settings only help where the CPU runs the programs. Elsewhere they
affect only the host's own allocations, which they keep for reuse.

Only glibc (Linux) has mallopt. Elsewhere `apply()` changes nothing, dispatch
included: inline dispatch alone made DCGAN-32 fault its temporaries in every step.
"""

import ctypes
import ctypes.util
import functools
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_MAX = -4
GLIBC_DEFAULTS = {M_MMAP_MAX: 65536, M_TRIM_THRESHOLD: 128 * 1024}
ASYNC_DISPATCH = "jax_cpu_enable_async_dispatch"


def enabled(environ=os.environ) -> bool:
  return (environ.get("GANJAX_HOST_HEAP", "1") != "0"
          and environ.get("GANJAX_XLA_DEFAULTS", "1") != "0")


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


def apply(environ=os.environ) -> dict:
  """Applies the settings above, unless turned off or without glibc; returns what it set
  ({"mallopt": True, ASYNC_DISPATCH: False}, or {})."""
  if not enabled(environ) or not keep_in_heap(True):
    return {}
  done = {"mallopt": True}
  import jax  # pylint: disable=import-outside-toplevel
  # JAX reads this flag when it creates the CPU client (at the first computation); later it
  # changes nothing. GANJAX_HOST_HEAP=0 keeps JAX's asynchronous dispatch.
  if ASYNC_DISPATCH in jax.config.values:
    jax.config.update(ASYNC_DISPATCH, False)
    done[ASYNC_DISPATCH] = False
  return done


def keep_in_heap(keep: bool) -> bool:
  """Large blocks from the heap, which keeps freed memory (True, what `apply` sets), or
  glibc's defaults: mmap above its threshold, and freed memory trimmed and given back
  (False; benchmarks/throughput.py --heap-off). Returns whether glibc took the settings
  (False without glibc)."""
  libc = _glibc()
  if libc is None:
    return False
  if keep:
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, -1))
  ok = all(libc.mallopt(param, value) for param, value in GLIBC_DEFAULTS.items())
  libc.malloc_trim(0)  # what the heap kept goes back, as it would have by default
  return bool(ok)
