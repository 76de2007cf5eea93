"""Feature extraction for the metrics: jitted, batched and sharded over all devices.

`extract(fn, images)` runs a feature network `fn` over a large image array in
fixed-size global batches: each batch is split over the devices of a 1-D mesh
(the same `'data'` mesh training uses), `fn` runs once per device on its
slice, and the features come back to the host as NumPy arrays. The last batch
is padded to the full size (so there is one compiled program) and the padding
is dropped from the result.

`fn(images) -> pytree of [b, ...] arrays` must treat examples independently
(inference mode: no batch statistics), so that sharding and padding do not
change any example's features.
"""

from collections.abc import Callable, Iterable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec as P

from ganjax import parallel


def to_model_range(images) -> jax.Array:
  """uint8 [0, 255] -> float32 [-1, 1]; float images are taken to be in [-1, 1] already."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) * (2.0 / 255.0) - 1.0
  return images.astype(jnp.float32)


class Extractor:
  """A jitted, sharded `fn` with a fixed global batch size, for many calls.

  With `params`, `fn(params, images)`: the params are replicated on the devices
  and passed to each call.

  The global batch is `batch_size` rounded up to a multiple of the device count.
  Arrays may be uint8 (sent to the devices as bytes, converted there) or float.
  """

  def __init__(self, fn: Callable, batch_size: int = 200, mesh=None, params=None):
    self.mesh = parallel.make_mesh() if mesh is None else mesh
    n = self.mesh.size
    self.batch_size = max(n, -(-batch_size // n) * n)
    self._sharding = NamedSharding(self.mesh, P(parallel.AXIS))
    if params is None:
      self._fn = jax.jit(lambda x: fn(to_model_range(x)), in_shardings=self._sharding,
                         out_shardings=self._sharding)
      return
    # Weights go in as an argument, copied to every device once: closed over, they
    # would be embedded in the program as constants, slow to compile when large.
    replicated = NamedSharding(self.mesh, P())
    params = parallel.replicate(jax.device_get(params), self.mesh)
    apply = jax.jit(lambda p, x: fn(p, to_model_range(x)),
                    in_shardings=(replicated, self._sharding), out_shardings=self._sharding)
    self._fn = lambda x: apply(params, x)

  def _run_batch(self, chunk: np.ndarray):
    count = len(chunk)
    if count < self.batch_size:  # pad with copies of the last example
      pad = np.repeat(chunk[-1:], self.batch_size - count, axis=0)
      chunk = np.concatenate([chunk, pad])
    # Every process holds the whole array; each device takes its slice of it.
    batch = jax.make_array_from_callback(chunk.shape, self._sharding, lambda i: chunk[i])
    out = self._fn(batch)
    if jax.process_count() > 1:
      out = multihost_utils.process_allgather(out, tiled=True)
    return jax.tree.map(lambda a: np.asarray(a)[:count], out)

  def __call__(self, images: np.ndarray | Iterable[np.ndarray]):
    """Features of `images` [N, H, W, C] (or of an iterable of such chunks), in order."""
    chunks = [images] if isinstance(images, np.ndarray) else images
    pieces = []
    for chunk in chunks:
      chunk = np.asarray(chunk)
      for start in range(0, len(chunk), self.batch_size):
        pieces.append(self._run_batch(chunk[start:start + self.batch_size]))
    if not pieces:
      raise ValueError("no images to extract features from")
    return jax.tree.map(lambda *parts: np.concatenate(parts), *pieces)


def extract(fn: Callable, images, batch_size: int = 200, mesh=None, params=None):
  """Features `fn(images)` (or `fn(params, images)`) of every image, in sharded batches."""
  return Extractor(fn, batch_size, mesh, params)(images)
