"""ganjax/backend.py: one backend per run, no process changes on import, host tuning that
works when asked for and only then."""

import json
import os
import subprocess
import sys
import types

import flax.linen as nn
import jax
import pytest

from ganjax import backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python(code: str, **environ) -> str:
  env = {k: v for k, v in os.environ.items() if not k.startswith(("GANJAX_", "XLA_FLAGS"))}
  env.update(environ, JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
  result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, check=True)
  return result.stdout.strip().splitlines()[-1]


IMPORT_PROBE = """
import json, os, jax
before = (dict(os.environ), jax.config.values["jax_cpu_enable_async_dispatch"])
import ganjax, ganjax.backend, ganjax.train, ganjax.main, ganjax.cli.evaluate_cmd, ganjax.cli.sample_cmd
after = (dict(os.environ), jax.config.values["jax_cpu_enable_async_dispatch"])
print(json.dumps({"same": before == after, "xla_flags": os.environ.get("XLA_FLAGS")}))
"""


def test_import_changes_nothing_in_the_process():
  report = json.loads(_python(IMPORT_PROBE))
  assert report == {"same": True, "xla_flags": None}


# One program with 256 MiB of temporaries (two [65536, 512] float32 matrix products that
# are both live), executed 8 times; prints its temporary bytes and each execution's faults.
HEAP_PROBE = """
import json, resource, sys
import jax, jax.numpy as jnp
from ganjax import backend
tuned = backend.tune_host_if_cpu() if sys.argv[1] == "tune" else {}
f = jax.jit(lambda x, a, b: jnp.sum((x @ a)[::-1] * (x @ b), axis=0))
x, w = jnp.ones((65536, 8)), jnp.ones((8, 512))
compiled = f.lower(x, w, w).compile()
faults = []
for _ in range(8):
  before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
  compiled(x, w, w).block_until_ready()
  faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"temp": compiled.memory_analysis().temp_size_in_bytes, "faults": faults,
                  "tuned": tuned}))
"""


def _heap_probe(mode: str, **environ):
  report = json.loads(_python(HEAP_PROBE.replace("sys.argv[1]", repr(mode)), **environ))
  return report["temp"] // 4096, report["faults"], report["tuned"]


@pytest.mark.skipif(backend._glibc() is None, reason="mallopt is glibc's")
def test_host_tuning_keeps_temporaries_in_the_heap():
  pages, faults, tuned = _heap_probe("tune")
  assert tuned == {"mallopt": True, backend.ASYNC_DISPATCH: False}
  assert pages >= 65536  # the probe is large enough to have been served by mmap
  steady = sorted(faults[3:])[len(faults[3:]) // 2]
  assert steady < 0.02 * pages, faults
  # Untuned (glibc's and JAX's defaults), every execution maps its temporaries anew.
  pages, faults, tuned = _heap_probe("none")
  assert tuned == {} and min(faults[3:]) > 0.9 * pages, faults
  # Asked for but switched off.
  _, faults, tuned = _heap_probe("tune", GANJAX_HOST_TUNING="0")
  assert tuned == {} and min(faults[3:]) > 0.9 * pages, faults


def test_host_tuning_is_for_cpu_runs_only():
  gpu = [types.SimpleNamespace(platform="gpu")]
  assert backend.tune_host_if_cpu(gpu) == {}
  assert backend.tune_host({"GANJAX_HOST_TUNING": "0"}) == {}


def test_accelerators_get_the_stock_layers():
  for platform in ("gpu", "tpu"):
    b = backend.resolve([types.SimpleNamespace(platform=platform)] * 2, "gan")
    assert b.platform == platform
    assert b.layers.conv is nn.Conv and b.layers.conv_transpose is nn.ConvTranspose
    assert b.loop_layers == b.layers and b.jit_options() is None
    assert not b.unroll_d_updates(5)


def test_a_run_has_one_platform():
  with pytest.raises(ValueError, match="one platform"):
    backend.resolve([types.SimpleNamespace(platform="cpu"),
                     types.SimpleNamespace(platform="gpu")])


def test_cpu_compiler_options_are_kept_only_when_jaxlib_compiles_with_them():
  known = tuple(backend.CONVOLUTIONS_BY_XLA.items())
  assert backend.supported_options((("xla_cpu_no_such_option_in_any_jaxlib", "1"),)) == ()
  name = known[0][0]
  assert backend.supported_options(((name, "NO_SUCH_FUSION_TYPE"),)) == ()
  cpu = jax.devices()[:1]
  if backend.supported_options(known) == known:  # this jaxlib has the option
    assert dict(backend.resolve(cpu, "gan", environ={}).compiler_options) == dict(known)
  assert backend.resolve(cpu, "cyclegan", environ={}).compiler_options == ()
  # The user's own XLA_FLAGS setting of the same name wins.
  users = {"XLA_FLAGS": f"--{name}=LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}
  assert backend.resolve(cpu, "gan", environ=users).compiler_options == ()


def test_cpu_info_names_the_processor():
  info = backend.cpu_info()
  assert info.model and info.machine
  text = info.describe()
  assert info.model in text and info.machine in text
