"""What every data source shares: dataset specs, uint8 -> [-1, 1], step-indexed array batches.

The sources import from here; `ganjax.data` re-exports the public names.
"""

import dataclasses
import functools
from collections.abc import Iterator

import numpy as np

from ganjax.errors import GanjaxError

BUNDLED = ("mnist", "digit_pair")
TOY = ("ring", "grid")


@dataclasses.dataclass(frozen=True)
class Spec:
  kind: str  # "bundled", "tfds", "toy" or "folder"
  name: str


def parse_spec(spec: str) -> Spec:
  kind, sep, name = spec.partition(":")
  if not sep or not name or kind not in ("bundled", "tfds", "toy", "folder"):
    raise GanjaxError(
        f"dataset={spec!r} is not a dataset spec; use bundled:mnist, bundled:digit_pair,"
        " tfds:<name> (e.g. tfds:cifar10), folder:<path>, toy:ring or toy:grid")
  if kind == "bundled" and name not in BUNDLED:
    raise GanjaxError(f"dataset={spec!r}: no bundled dataset {name!r}; bundled:"
                      f" {', '.join(BUNDLED)}")
  if kind == "toy" and name not in TOY:
    raise GanjaxError(f"dataset={spec!r}: no toy mixture {name!r}; use"
                      f" {' or '.join('toy:' + t for t in TOY)}")
  return Spec(kind, name)


def example_shape(config) -> tuple[int, ...]:
  """The shape of one training example: (size, size, channels), or (2,) for toy points."""
  if parse_spec(config.dataset).kind == "toy":
    return (2,)
  return (config.image_size, config.image_size, config.channels)


def to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images_uint8.astype(np.float32) * (2.0 / 255.0) - 1.0



def match_channels(images: np.ndarray, channels: int, what: str) -> np.ndarray:
  """Repeats grey images to 3 channels where asked; refuses other mismatches."""
  have = images.shape[-1]
  if have == channels:
    return images
  if have == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  raise GanjaxError(f"{what} has {have} channels but channels={channels};"
                    f" set --config.channels={have}")



class ArraySource:
  """Batches of an in-memory array dataset, a pure function of (seed, step).

  Each epoch visits every example once in an order drawn from (seed, epoch);
  global batch t holds examples t*B .. t*B + B - 1 of that endless sequence.
  Host p of P returns rows [p*B/P, (p+1)*B/P) of the global batch.
  """

  def __init__(self, images, labels, global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    assert global_batch_size % process_count == 0, (global_batch_size, process_count)
    self.images, self.labels = images, labels
    self.global_batch_size = global_batch_size
    self.local_batch_size = global_batch_size // process_count
    self.seed = seed
    self.offset = process_index * self.local_batch_size

  @functools.lru_cache(maxsize=4)
  def _order(self, epoch: int) -> np.ndarray:
    return np.random.default_rng([self.seed, epoch]).permutation(len(self.images))

  def indices(self, step: int) -> np.ndarray:
    n = len(self.images)
    position = step * self.global_batch_size + self.offset + np.arange(self.local_batch_size)
    epoch, within = np.divmod(position, n)
    return np.array([self._order(int(e))[i] for e, i in zip(epoch, within)])

  def batch(self, step: int) -> dict[str, np.ndarray]:
    idx = self.indices(step)
    return {"image": to_unit_range(self.images[idx]), "label": self.labels[idx]}

  def iterate(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


# Unpaired two-domain data (CycleGAN): its domains, splits and sizes.

DOMAINS = ("a", "b")
SPLITS = ("train", "test")


def _check_split_and_domain(split: str, domain: str) -> str:
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: use 'train' or 'test'")
  if domain.lower() not in DOMAINS:
    raise ValueError(f"domain={domain!r}: use 'a' or 'b'")
  return domain.lower()


def _sizes(config) -> tuple[int, int]:
  """(load_size, image_size): images are resized to load_size, then cropped to image_size."""
  load_size, image_size = config.get("load_size", config.image_size), config.image_size
  if load_size < image_size:
    raise GanjaxError(f"load_size={load_size} is smaller than image_size={image_size};"
                      f" images are resized to load_size, then cropped: set"
                      f" --config.load_size={image_size} or more")
  return load_size, image_size


def centre_crop(images: np.ndarray, size: int) -> np.ndarray:
  """The central size x size window of images [N, H, W, C]."""
  top, left = (images.shape[1] - size) // 2, (images.shape[2] - size) // 2
  return images[:, top:top + size, left:left + size]


def group(batches: Iterator[dict], start_step: int, per_step) -> Iterator[dict]:
  """Stacks `per_step(t)` consecutive batches of `batches` for each step t from `start_step`."""
  step = start_step
  while True:
    parts = [next(batches) for _ in range(per_step(step))]
    yield {k: np.stack([p[k] for p in parts]) for k in parts[0]}
    step += 1
