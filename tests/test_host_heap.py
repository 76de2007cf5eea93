"""ganjax/host_heap.py: a CPU program's temporaries come from the heap, with no page faults
after the first executions, unless it is switched off."""

import json
import os
import subprocess
import sys

import pytest

from ganjax import host_heap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One program with 256 MiB of temporaries (two [65536, 512] float32 matrix products that
# are both live), executed 8 times; prints its temporary bytes and each execution's faults.
PROBE = """
import json, resource
import ganjax, jax, jax.numpy as jnp
f = jax.jit(lambda x, a, b: jnp.sum((x @ a)[::-1] * (x @ b), axis=0))
x, w = jnp.ones((65536, 8)), jnp.ones((8, 512))
compiled = f.lower(x, w, w).compile()
faults = []
for _ in range(8):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  compiled(x, w, w).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"temp": compiled.memory_analysis().temp_size_in_bytes, "faults": faults}))
"""


def probe(**environ) -> tuple[int, list[int]]:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("GANJAX_", "XLA_FLAGS"))}
  env.update(environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
  report = json.loads(result.stdout.strip().splitlines()[-1])
  return report["temp"] // 4096, report["faults"]


@pytest.mark.skipif(host_heap._glibc() is None, reason="mallopt is glibc's")
def test_temporaries_are_not_faulted_in_at_every_execution():
  pages, faults = probe()
  assert pages >= 65536  # the probe is large enough to have been served by mmap
  steady = sorted(faults[3:])[len(faults[3:]) // 2]
  assert steady < 0.02 * pages, faults
  # Switched off, every execution maps its temporaries anew and faults each page in.
  pages, faults = probe(GANJAX_HOST_HEAP="0")
  assert min(faults[3:]) > 0.9 * pages, faults


def test_switched_off_by_environment():
  assert host_heap.apply({"GANJAX_HOST_HEAP": "0"}) == {}
  assert host_heap.apply({"GANJAX_XLA_DEFAULTS": "0"}) == {}


def test_import_ganjax_turns_off_asynchronous_dispatch_with_glibc():
  from jax._src import xla_bridge  # pylint: disable=import-outside-toplevel
  # conftest imports ganjax before any JAX computation.
  assert xla_bridge._CPU_ENABLE_ASYNC_DISPATCH.value is (host_heap._glibc() is None)
  if host_heap._glibc() is not None:
    assert host_heap.apply({}) == {"mallopt": True, host_heap.ASYNC_DISPATCH: False}
