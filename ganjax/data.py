"""Datasets -> iterators of host-local numpy batches.

A dataset is named by an explicit spec string:

  bundled:mnist   5,000 MNIST digits (500 per class) shipped with ganjax, offline
  tfds:<name>     a tensorflow-datasets dataset, e.g. tfds:cifar10, tfds:celeb_a
  toy:ring        8 Gaussians on the unit circle, std 0.01 (evaluation/toy.py)
  toy:grid        25 Gaussians on {-4, -2, 0, 2, 4}^2, std 0.05

Toy batches hold 2D points, `image` float32 [B, 2], with the mixture
component as `label`; fresh samples every step.

Every batch is a dict of numpy arrays, `image` float32 [B, H, W, C] in [-1, 1]
and `label` int32 [B], where B is this host's share of the global batch (the
global batch divided by the number of processes). For in-memory sources batch
t is a pure function of (seed, t), the same whatever the number of hosts, so a
resumed run sees exactly the batches it would have seen.

TensorFlow and tensorflow-datasets are imported only for `tfds:` specs.
"""

import dataclasses
import functools
import importlib.resources
import socket
from collections.abc import Callable, Iterator

import numpy as np

from ganjax.errors import GanjaxError

BUNDLED = ("mnist",)
TOY = ("ring", "grid")


@dataclasses.dataclass(frozen=True)
class Spec:
  kind: str  # "bundled", "tfds" or "toy"
  name: str


def parse_spec(spec: str) -> Spec:
  kind, sep, name = spec.partition(":")
  if not sep or not name or kind not in ("bundled", "tfds", "toy"):
    raise GanjaxError(
        f"dataset={spec!r} is not a dataset spec; use bundled:mnist,"
        " tfds:<name> (e.g. tfds:cifar10), toy:ring or toy:grid")
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


# ----------------------------------------------------------------------------
# Image preprocessing shared by all sources.


def to_unit_range(images_uint8: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images_uint8.astype(np.float32) * (2.0 / 255.0) - 1.0


def fit_mnist(images: np.ndarray, image_size: int) -> np.ndarray:
  """28x28 digits -> image_size, by padding with background to 32x32 first.

  At image_size 32 (the default) the digits are padded by 2 pixels on each
  side, unscaled; other sizes resize the padded 32x32 image bilinearly.
  """
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))
  if image_size == 32:
    return padded
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.stack([
      np.asarray(Image.fromarray(im).resize((image_size, image_size), Image.BILINEAR))
      for im in padded])


def match_channels(images: np.ndarray, channels: int, what: str) -> np.ndarray:
  """Repeats grey images to 3 channels where asked; refuses other mismatches."""
  have = images.shape[-1]
  if have == channels:
    return images
  if have == 1 and channels == 3:
    return np.repeat(images, 3, axis=-1)
  raise GanjaxError(f"{what} has {have} channels but channels={channels};"
                    f" set --config.channels={have}")


# ----------------------------------------------------------------------------
# In-memory sources.


@functools.cache
def _load_bundled_mnist():
  with importlib.resources.files("ganjax.assets").joinpath("mnist_5k.npz").open("rb") as f:
    data = np.load(f)
    return data["images"], data["labels"].astype(np.int32)


def load_bundled(name: str, image_size: int, channels: int):
  """(uint8 images [N, S, S, C], int32 labels [N]) of a bundled dataset."""
  assert name == "mnist", name
  images, labels = _load_bundled_mnist()
  images = fit_mnist(images, image_size)[..., None]
  return match_channels(images, channels, "bundled:mnist"), labels


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


class ToySource:
  """Fresh samples of a 2D mixture; global batch t is drawn from the generator (seed, t)."""

  def __init__(self, name: str, global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.name, self.seed = name, seed
    self.global_batch_size = global_batch_size
    self.local = slice(process_index * global_batch_size // process_count,
                       (process_index + 1) * global_batch_size // process_count)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    points, labels = toy.sample(self.name, np.random.default_rng([self.seed, step]),
                                self.global_batch_size)
    return {"image": points[self.local], "label": labels[self.local]}

  iterate = ArraySource.iterate


# ----------------------------------------------------------------------------
# tensorflow-datasets.


def _network_reachable(timeout: float = 3.0) -> bool:
  try:
    socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _not_available(spec: str, data_dir: str, why: str) -> GanjaxError:
  return GanjaxError(
      f"dataset {spec} is not prepared in {data_dir} and {why}; prepare it where"
      f" there is a network (`tfds build {spec[5:]}`) and point TFDS_DATA_DIR (or"
      " --config.tfds_data_dir) at it, or train offline with"
      " --config.dataset=bundled:mnist")


def tfds_dataset(name: str, *, split: str, image_size: int, channels: int,
                 local_batch_size: int, seed: int, data_dir: str | None = None,
                 shuffle_buffer: int = 10_000, process_index: int = 0,
                 process_count: int = 1):
  """A repeated, shuffled, batched and prefetched tf.data.Dataset for this host.

  Each host reads its own slice of the split (`tfds.split_for_jax_process`).
  Images are centre-cropped to a square, resized to `image_size` (area
  averaging when shrinking, as for CelebA 178x218 -> 64x64), scaled to [-1, 1].
  A dataset that is not prepared is downloaded when the network allows;
  offline it is one GanjaxError naming the fix.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")  # keep TensorFlow off the accelerators

  spec = f"tfds:{name}"
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise GanjaxError(f"dataset={spec!r}: tensorflow-datasets has no dataset {name!r};"
                      " see `tfds.list_builders()`") from e
  host_split = tfds.split_for_jax_process(split, process_index=process_index,
                                          process_count=process_count)
  read_config = tfds.ReadConfig(shuffle_seed=seed)

  def as_dataset():
    return builder.as_dataset(split=host_split, shuffle_files=True, read_config=read_config)

  try:
    ds = as_dataset()
  except (AssertionError, FileNotFoundError) as e:  # raised when not prepared
    if builder.is_prepared():
      raise
    where = builder.data_dir_root
    if not _network_reachable():
      raise _not_available(spec, where, "there is no network to download it") from e
    try:
      builder.download_and_prepare()
    except Exception as download_error:  # any failure of the download is the user's to fix
      raise _not_available(spec, where, f"downloading it failed ({download_error})") from e
    ds = as_dataset()

  if "image" not in builder.info.features:
    raise GanjaxError(f"dataset={spec!r} has no 'image' feature; ganjax trains on images")
  has_label = "label" in builder.info.features

  def preprocess(example):
    image = example["image"]
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(h, w)
    image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    image = tf.image.resize(image, (image_size, image_size), method="area", antialias=True)
    if channels == 3:
      image = tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image
    image = tf.cast(image, tf.float32) * (2.0 / 255.0) - 1.0
    label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {"image": image, "label": label}

  image_channels = builder.info.features["image"].shape[-1]
  if image_channels not in (channels, None) and not (image_channels == 1 and channels == 3):
    raise GanjaxError(f"{spec} has {image_channels} channels but channels={channels};"
                      f" set --config.channels={image_channels}")
  options = tf.data.Options()
  options.deterministic = True
  return (ds.with_options(options)
          .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
          .shuffle(shuffle_buffer, seed=seed)
          .repeat()
          .batch(local_batch_size, drop_remainder=True)
          .prefetch(tf.data.AUTOTUNE))


# ----------------------------------------------------------------------------
# The entry point used by the training loop.


def make_batches(config, *, start_step: int = 0, process_index: int = 0,
                 process_count: int = 1,
                 per_step: Callable[[int], int] = lambda step: 1
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Host-local training batches for steps `start_step`, `start_step + 1`, ...

  The batch of step t stacks `per_step(t)` consecutive batches on a leading
  axis (the critic updates of one generator iteration):
  image [per_step(t), B, H, W, C], label [per_step(t), B].
  """
  spec = parse_spec(config.dataset)
  if config.batch_size % process_count:
    raise GanjaxError(f"batch_size={config.batch_size} does not divide by the"
                      f" {process_count} processes; use a multiple of {process_count}")
  check_labels(config, spec)
  if spec.kind in ("bundled", "toy"):
    if spec.kind == "toy":
      if config.channels != 2:
        raise GanjaxError(f"dataset={config.dataset!r} has 2D points but channels="
                          f"{config.channels}; set --config.channels=2")
      source = ToySource(spec.name, config.batch_size, config.seed, process_index,
                         process_count)
    else:
      images, labels = load_bundled(spec.name, config.image_size, config.channels)
      source = ArraySource(images, labels, config.batch_size, config.seed,
                           process_index, process_count)
    first = sum(per_step(t) for t in range(start_step))
    return _group(source.iterate(first), start_step, per_step)
  # tf.data pipelines are not indexable by step: a resumed run reshuffles with
  # a seed drawn from (seed, start_step) rather than replaying the first batches.
  seed = int(np.random.default_rng([config.seed, start_step]).integers(2**31))
  ds = tfds_dataset(spec.name, split="train", image_size=config.image_size,
                    channels=config.channels,
                    local_batch_size=config.batch_size // process_count, seed=seed,
                    data_dir=config.tfds_data_dir or None,
                    shuffle_buffer=config.shuffle_buffer,
                    process_index=process_index, process_count=process_count)
  return _group(ds.as_numpy_iterator(), start_step, per_step)


def num_classes(spec: Spec, data_dir: str | None = None) -> int | None:
  """The number of classes of a dataset's labels, or None if it has none."""
  if spec.kind == "bundled":
    return 10
  if spec.kind == "toy":
    return 8 if spec.name == "ring" else 25
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    features = tfds.builder(spec.name, data_dir=data_dir).info.features
  except Exception:  # an unknown or unreadable dataset is reported by tfds_dataset
    return None
  return features["label"].num_classes if "label" in features else None


def check_labels(config, spec: Spec) -> None:
  """A conditional model needs labels with exactly config.num_classes classes."""
  if not config.get("num_classes"):
    return
  have = num_classes(spec, config.tfds_data_dir or None)
  if have is None:
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r}"
                      " has no class labels; set --config.num_classes=0")
  if have != config.num_classes:
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r} has"
                      f" {have} classes; set --config.num_classes={have}")


def _group(batches: Iterator[dict], start_step: int, per_step) -> Iterator[dict]:
  step = start_step
  while True:
    parts = [next(batches) for _ in range(per_step(step))]
    yield {k: np.stack([p[k] for p in parts]) for k in parts[0]}
    step += 1
