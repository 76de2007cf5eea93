"""Data parallelism: one per-device program with explicit collectives.

A train step is written for one device, as in the pmap programming model: it
sees its slice of the batch, and averages gradients, metrics and BatchNorm
statistics over the mesh axis `AXIS` with `lax.pmean`. `data_parallel` maps it
over a 1-D `jax.sharding.Mesh` of all devices with `jax.shard_map`. The state
is replicated and the batch is sharded on its batch axis. The same code runs on
one CPU, eight GPUs or a multi-host TPU slice, where each host feeds its own
slice of the global batch.
"""

from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ganjax.errors import GanjaxError

AXIS = "data"


def make_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh named `AXIS` over `devices` (default: every device of every host)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (AXIS,))


def per_device_batch_size(global_batch_size: int, mesh: Mesh) -> int:
  n = mesh.size
  if global_batch_size < 1 or global_batch_size % n:
    raise GanjaxError(
        f"batch_size={global_batch_size} does not divide by the {n} devices;"
        f" set --config.batch_size to a multiple of {n}")
  return global_batch_size // n


def replicate(tree, mesh: Mesh):
  """Copies a host pytree (the same on every host) to every device of the mesh."""
  sharding = NamedSharding(mesh, P())

  def put(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

  return jax.tree.map(put, tree)


def shard_batch(local_batch, mesh: Mesh, batch_axis: int = 0):
  """Host-local numpy batch -> global arrays sharded over `AXIS` on `batch_axis`.

  Each host passes its own slice of the global batch; the global batch is the
  concatenation of the hosts' slices in process order.
  """
  spec = P(*([None] * batch_axis), AXIS)
  sharding = NamedSharding(mesh, spec)
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)


def data_parallel(step: Callable, mesh: Mesh, batch_axis: int = 0, donate: bool = True,
                  compiler_options: dict | None = None):
  """jit(shard_map(step)) for `step(state, batch) -> (state, metrics)`.

  `compiler_options`: XLA options of this program (the run's
  `backend.jit_options()`, ganjax/backend.py).

  `step` must return a state and metrics that are the same on every device
  (`lax.pmean` what differs). Replication is not checked by the tracer
  (check_vma=False): this is the pmap model, in which the gradient of each
  device's own loss is averaged explicitly, and averaging per-device
  gradients with `lax.pmean` gives the gradient of the global mean loss,
  BatchNorm statistics shared across devices included.
  """
  batch_spec = P(*([None] * batch_axis), AXIS)
  mapped = jax.shard_map(step, mesh=mesh, in_specs=(P(), batch_spec),
                         out_specs=(P(), P()), check_vma=False)
  return jax.jit(mapped, donate_argnums=(0,) if donate else (),
                 compiler_options=compiler_options or None)
