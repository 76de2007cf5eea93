"""Many seeds in one program (`config.num_seeds`).

With num_seeds = N > 1 the state has a leading axis of N independent
replicas. Replica i is the run of seed `config.seed + i`: its own
initialisation, its own noise (every key derives from the replica's state.rng)
and its own data order (its batches come from a source seeded with seed + i).
The per-device train step is `jax.vmap`ped over that axis inside the
data-parallel map, so N GANs train in one XLA program and replica i follows
the same computation as a one-seed run with seed + i.

Layout with N seeds: state leaves [N, ...]; batches [N, n_critic, B, ...]
(the global batch axis is 2, sharded over devices); metrics [N].
"""

import numpy as np
import jax

from ganjax.errors import GanjaxError


def count(config) -> int:
  """config.num_seeds, checked (old configs without the key: 1)."""
  n = config.get("num_seeds", 1)
  if not isinstance(n, int) or isinstance(n, bool) or n < 1:
    raise GanjaxError(f"num_seeds={n!r} must be a whole number of at least 1"
                      " (1 = an ordinary run)")
  return n


def replica_config(config, i: int):
  """The config of replica i alone: seed + i, one seed."""
  c = config.copy_and_resolve_references()
  with c.unlocked():
    c.seed = config.seed + i
    c.num_seeds = 1
  return c


def replica_seeds(config) -> list[int]:
  return [config.seed + i for i in range(count(config))]


def keys(config):
  """The initial key of every replica, stacked: PRNGKey(seed + i)."""
  return np.stack([np.asarray(jax.random.PRNGKey(s)) for s in replica_seeds(config)])


def init(algorithm, config, example_batch):
  """The initial state: one replica, or N stacked on a leading axis (jitted)."""
  init_one = lambda rng: algorithm.init(config, rng, example_batch)  # noqa: E731
  if count(config) == 1:
    return jax.jit(init_one)(jax.random.PRNGKey(config.seed))
  return jax.jit(jax.vmap(init_one))(keys(config))


def replica(state, i: int):
  """Replica i of a stacked state."""
  return jax.tree.map(lambda x: x[i], state)


def over_seeds(fn, config, in_axes=0):
  """fn, vmapped over the seed axis when the run has several seeds."""
  return fn if count(config) == 1 else jax.vmap(fn, in_axes=in_axes)


def stack_batches(iterators):
  """Zips per-replica batch iterators into batches with a leading seed axis."""
  for parts in zip(*iterators):
    yield jax.tree.map(lambda *xs: np.stack(xs), *parts)


def summarize(values: dict, n: int) -> dict[str, float]:
  """Per-seed metric arrays [N] -> name (mean over seeds), name/std, name/seed_<i>.

  A one-seed run keeps its plain names and values.
  """
  if n == 1:
    return {k: float(np.mean(v)) for k, v in values.items()}
  out = {}
  for name, v in values.items():
    v = np.asarray(v, np.float64).reshape(n)
    out[name] = float(np.mean(v))
    out[f"{name}/std"] = float(np.std(v))
    out.update({f"{name}/seed_{i}": float(x) for i, x in enumerate(v)})
  return out


def tile(figures: list[np.ndarray], border: int = 6) -> np.ndarray:
  """Per-seed uint8 figures [H, W, C] side by side in a near-square grid, seed order
  row by row, separated by a white border."""
  n = len(figures)
  if n == 1:
    return figures[0]
  h, w, c = figures[0].shape
  columns = int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / columns))
  out = np.full((rows * (h + border) - border, columns * (w + border) - border, c), 255,
                np.uint8)
  for i, fig in enumerate(figures):
    r, col = divmod(i, columns)
    out[r * (h + border):r * (h + border) + h, col * (w + border):col * (w + border) + w] = fig
  return out


def aggregate(results: list[dict]) -> dict:
  """Per-seed evaluation results -> one result: each number's mean over seeds, with
  <name>_std and <name>_per_seed; lists of numbers (a label histogram) averaged element
  by element; other values from the first seed."""
  if len(results) == 1:
    return results[0]
  out = {}
  for key, first in results[0].items():
    values = [r.get(key) for r in results]
    if all(isinstance(v, list) and len(v) == len(first) and all(
        isinstance(x, (int, float)) and not isinstance(x, bool) for x in v) for v in values):
      out[key] = [float(x) for x in np.mean(np.asarray(values, np.float64), axis=0)]
    elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
      arr = np.asarray(values, np.float64)
      finite = arr[np.isfinite(arr)]
      out[key] = float(np.mean(finite)) if finite.size else float("nan")
      out[f"{key}_std"] = float(np.std(finite)) if finite.size else float("nan")
      out[f"{key}_per_seed"] = [float(v) for v in values]
    else:
      out[key] = first
  return out


def select(config, state, index: int):
  """(config, state) of replica `index` of a run, for the tools that use one model
  (sample, translate); a one-seed run has replica 0 only."""
  n = count(config)
  if not 0 <= index < n:
    raise GanjaxError(f"--replica {index} is not a replica of this run: it trained"
                      f" {n} seed{'s' if n > 1 else ''}; use 0 to {n - 1}")
  if n == 1:
    return config, state
  return replica_config(config, index), replica(state, index)
