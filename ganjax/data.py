"""Datasets -> iterators of host-local numpy batches.

A dataset is named by an explicit spec string:

  bundled:mnist       MNIST digits shipped with ganjax, offline: 4,500 to train on
                      (450 per class); 500 more held out (bundled_mnist)
  tfds:<name>         a tensorflow-datasets dataset, e.g. tfds:cifar10, tfds:celeb_a
  toy:ring            8 Gaussians on the unit circle, std 0.01 (evaluation/toy.py)
  toy:grid            25 Gaussians on {-4, -2, 0, 2, 4}^2, std 0.05

Unpaired two-domain data, for CycleGAN (see "Unpaired two-domain data" below):

  bundled:digit_pair  two domains made from the bundled digits, offline (digit_pair)
  folder:<path>       your images in <path>/trainA/ and <path>/trainB/ (and testA/, testB/)
  tfds:cycle_gan/<pair>  tensorflow-datasets' cycle_gan pairs, e.g. horse2zebra

Toy batches hold 2D points, `image` float32 [B, 2], with the mixture
component as `label`; fresh samples every step.

Every batch is a dict of numpy arrays, `image` float32 [B, H, W, C] in [-1, 1]
and `label` int32 [B], where B is this host's share of the global batch (the
global batch divided by the number of processes). For in-memory sources batch
t is a pure function of (seed, t), the same whatever the number of hosts, so a
resumed run sees exactly the batches it would have seen. tfds: sources are a
pure function of (seed, t) for a given number of hosts (each host reads its own
slice of the split); a resumed run skips to batch t too. Unpaired batches are
{"image_a", "image_b"} instead, float32 [B, H, W, C] in [-1, 1], without labels.

TensorFlow and tensorflow-datasets are imported only for `tfds:` specs.
"""

import dataclasses
import functools
import importlib.resources
import os
import socket
from collections.abc import Callable, Iterator

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
  """All 5,000 bundled digits, uint8 [5000, 28, 28], and their int32 labels, by class."""
  with importlib.resources.files("ganjax.assets").joinpath("mnist_5k.npz").open("rb") as f:
    data = np.load(f)
    return data["images"], data["labels"].astype(np.int32)


def held_out(labels: np.ndarray) -> np.ndarray:
  """Which examples are held out for testing: bool [N].

  The last 10% (rounded down) of each class, counting the examples of that
  class in the order they come. The bundled digits and both halves of the
  digit pair are split by this one rule.
  """
  rank = np.empty(len(labels), np.int64)  # each example's rank within its class
  for c in np.unique(labels):
    rank[labels == c] = np.arange(np.sum(labels == c))
  count = np.bincount(labels)[labels]
  return rank >= count - count // 10


@functools.cache
def bundled_mnist(split: str = "train", image_size: int = 32, channels: int = 1):
  """One split of the bundled MNIST digits: (uint8 images [N, S, S, C], int32 labels [N]).

  `train` holds 4,500 digits (450 per class), what bundled:mnist trains on;
  `test` the other 500 (the last 50 of each class), held out for evaluation.
  The test split is exactly the union of the digit pair's two test splits.
  Images are padded 28 -> 32 (fit_mnist), resized for other sizes and repeated
  to 3 channels where asked. The arrays are cached and read-only.
  """
  if split not in ("train", "test"):
    raise ValueError(f"split={split!r}: use 'train' or 'test'")
  digits, labels = _load_bundled_mnist()
  part = held_out(labels) == (split == "test")
  images = match_channels(fit_mnist(digits[part], image_size)[..., None], channels,
                          "bundled:mnist")
  labels = labels[part].copy()
  for array in (images, labels):
    array.setflags(write=False)
  return images, labels


def load_bundled(name: str, image_size: int, channels: int, split: str = "train"):
  """(uint8 images [N, S, S, C], int32 labels [N]) of a bundled dataset's split.

  bundled:mnist trains on its train split only (see bundled_mnist).
  """
  assert name == "mnist", name
  return bundled_mnist(split, image_size, channels)


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


def _not_available(spec: str, data_dir: str, why: str,
                   offline: str = "bundled:mnist") -> GanjaxError:
  return GanjaxError(
      f"dataset {spec} is not prepared in {data_dir} and {why}; prepare it where"
      f" there is a network (`tfds build {spec[5:]}`) and point TFDS_DATA_DIR (or"
      f" --config.tfds_data_dir) at it, or train offline with"
      f" --config.dataset={offline}")


def _tfds_builder(name: str, data_dir: str | None):
  """The tfds builder of `name` ("cifar10", "cycle_gan/horse2zebra"); a GanjaxError if unknown."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  spec = f"tfds:{name}"
  try:
    return tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError as e:
    raise GanjaxError(f"dataset={spec!r}: tensorflow-datasets has no dataset {name!r};"
                      " see `tfds.list_builders()`") from e
  except ValueError as e:
    if "BuilderConfig" not in str(e) or "/" not in name:
      raise
    base, _, config_name = name.partition("/")
    try:
      known = ", ".join(tfds.builder_cls(base).builder_configs)
    except Exception:  # pylint: disable=broad-except
      known = f"see tfds.builder({base!r}).builder_configs"
    raise GanjaxError(f"dataset={spec!r}: tensorflow-datasets' {base} has no config"
                      f" {config_name!r}; use one of: {known}") from e


def _tfds_split(builder, spec: str, split: str, *, process_index: int = 0,
                process_count: int = 1, offline: str = "bundled:mnist", decoders=None):
  """This host's slice of `split`, in file order, downloading the dataset when it is not prepared.

  Offline, a dataset that is not prepared is one GanjaxError naming the fix
  (`offline` is the offline dataset it suggests instead).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  host_split = tfds.split_for_jax_process(split, process_index=process_index,
                                          process_count=process_count)

  def as_dataset():
    return builder.as_dataset(split=host_split, shuffle_files=False, decoders=decoders)

  try:
    return as_dataset()
  except (AssertionError, FileNotFoundError) as e:  # raised when not prepared
    if builder.is_prepared():
      raise
    where = builder.data_dir_root
    if not _network_reachable():
      raise _not_available(spec, where, "there is no network to download it", offline) from e
    try:
      builder.download_and_prepare()
    except Exception as download_error:  # any failure of the download is the user's to fix
      raise _not_available(spec, where, f"downloading it failed ({download_error})",
                           offline) from e
    return as_dataset()


def _count(ds) -> int:
  """The number of examples of a finite tf.data.Dataset (read through if tf does not know it)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  n = int(ds.cardinality())
  if n < 0:  # unknown: count the (undecoded) records
    n = int(ds.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
  return n


def shuffled_epochs(ds, *, seed: int, shuffle_buffer: int, start: int, what: str):
  """Examples `start`, `start + 1`, ... of an endless sequence of epochs of the finite `ds`.

  Epoch e is `ds` shuffled through a buffer of `shuffle_buffer` examples with
  a seed drawn from (seed, e), so the sequence is a pure function of the
  seed: a resumed run reads on from example `start` where an uninterrupted one
  would be, skipping whole epochs without reading them. `ds` should hold
  undecoded examples, which makes the buffer small and the skip cheap.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  n = _count(ds)
  if n == 0:
    raise GanjaxError(f"{what} has no examples for this host; use a split with examples")
  first_epoch, skip = divmod(int(start), n)
  base = int(np.random.default_rng([seed, 0x5EED]).integers(2**31))

  def epoch(e):
    # A distinct shuffle seed per epoch (tf only needs it to be an int64 tensor).
    return ds.shuffle(min(shuffle_buffer, n), seed=(base + e * 1_000_003) % (2**31 - 1),
                      reshuffle_each_iteration=False)

  return tf.data.Dataset.range(first_epoch, 2**62).flat_map(epoch).skip(skip)


def tfds_dataset(name: str, *, split: str, image_size: int, channels: int,
                 local_batch_size: int, seed: int, data_dir: str | None = None,
                 shuffle_buffer: int = 10_000, process_index: int = 0,
                 process_count: int = 1, start_batch: int = 0):
  """A repeated, shuffled, batched and prefetched tf.data.Dataset for this host.

  Each host reads its own slice of the split (`tfds.split_for_jax_process`)
  as endless epochs, each in its own order drawn from `seed`
  (`shuffled_epochs`); the dataset starts at this host's batch `start_batch`
  of that sequence, so a resumed run sees what an uninterrupted one would have.
  Images are decoded after shuffling, centre-cropped to a square, resized to
  `image_size` (area averaging when shrinking, as for CelebA 178x218 -> 64x64),
  scaled to [-1, 1]. A dataset that is not prepared is downloaded when the
  network allows; offline it is one GanjaxError naming the fix.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")  # keep TensorFlow off the accelerators

  spec = f"tfds:{name}"
  builder = _tfds_builder(name, data_dir)
  if "image" not in builder.info.features:
    raise GanjaxError(f"dataset={spec!r} has no 'image' feature; ganjax trains on images")
  image_feature = builder.info.features["image"]
  ds = _tfds_split(builder, spec, split, process_index=process_index,
                   process_count=process_count,
                   decoders={"image": tfds.decode.SkipDecoding()})
  has_label = "label" in builder.info.features

  def preprocess(example):
    image = image_feature.decode_example(example["image"])
    h, w = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(h, w)
    image = tf.image.crop_to_bounding_box(image, (h - side) // 2, (w - side) // 2, side, side)
    image = tf.image.resize(image, (image_size, image_size), method="area", antialias=True)
    if channels == 3:
      image = tf.image.grayscale_to_rgb(image) if image.shape[-1] == 1 else image
    image = tf.cast(image, tf.float32) * (2.0 / 255.0) - 1.0
    label = tf.cast(example["label"], tf.int32) if has_label else tf.constant(0, tf.int32)
    return {"image": image, "label": label}

  image_channels = image_feature.shape[-1]
  if image_channels not in (channels, None) and not (image_channels == 1 and channels == 3):
    raise GanjaxError(f"{spec} has {image_channels} channels but channels={channels};"
                      f" set --config.channels={image_channels}")
  options = tf.data.Options()
  options.deterministic = True
  examples = shuffled_epochs(ds.with_options(options), seed=seed, shuffle_buffer=shuffle_buffer,
                             start=start_batch * local_batch_size, what=f"{spec} ({split})")
  return (examples
          .map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
          .batch(local_batch_size, drop_remainder=True)
          .prefetch(tf.data.AUTOTUNE))


# ----------------------------------------------------------------------------
# Unpaired two-domain data (CycleGAN).
#
# A batch holds examples of domain A and of domain B, in independent orders:
# {"image_a": float32 [B, H, W, C], "image_b": float32 [B, H, W, C]} in [-1, 1].
# Preprocessing is the reference code's "resize_and_crop" (Zhu et al.): every
# image is resized to load_size x load_size (bicubic), then each example of a
# batch is a random image_size x image_size crop, mirrored left-right with
# probability 1/2 when config.flip. Evaluation, translation and sample grids
# take the centre crop, unmirrored (`unpaired_images`, `preview_examples`).
#
# Config keys read: dataset, image_size, channels, batch_size, seed,
# load_size (default image_size), flip (default False), and for tfds:
# tfds_data_dir, shuffle_buffer.

DOMAINS = ("a", "b")
SPLITS = ("train", "test")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DIGIT_PAIR_STROKE = (255, 176, 0)    # amber
DIGIT_PAIR_BACKGROUND = (16, 32, 96)  # dark blue


def is_unpaired(spec: str | Spec) -> bool:
  """Whether a dataset spec names unpaired two-domain data (batches image_a, image_b).

  True for bundled:digit_pair, folder:<path> and tfds:cycle_gan[/<pair>]; a
  malformed spec is parse_spec's GanjaxError.
  """
  spec = spec if isinstance(spec, Spec) else parse_spec(spec)
  return (spec.kind == "folder"
          or (spec.kind == "bundled" and spec.name == "digit_pair")
          or (spec.kind == "tfds" and (spec.name == "cycle_gan"
                                       or spec.name.startswith("cycle_gan/"))))


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


# bundled:digit_pair ---------------------------------------------------------


def thicken(digits: np.ndarray) -> np.ndarray:
  """A 3x3 grey dilation of uint8 images [N, H, W]: the max over the 9 one-pixel shifts."""
  h, w = digits.shape[1:]
  padded = np.pad(digits, ((0, 0), (1, 1), (1, 1)))
  return functools.reduce(np.maximum, [padded[:, i:i + h, j:j + w]
                                       for i in range(3) for j in range(3)])


def colourise(grey: np.ndarray) -> np.ndarray:
  """uint8 [N, H, W] intensities -> uint8 RGB [N, H, W, 3]: 0 dark blue, 255 amber."""
  background = np.array(DIGIT_PAIR_BACKGROUND, np.float32)
  stroke = np.array(DIGIT_PAIR_STROKE, np.float32)
  t = grey[..., None].astype(np.float32) / 255.0
  return np.round(background + t * (stroke - background)).astype(np.uint8)


@functools.cache
def digit_pair(image_size: int = 32, split: str = "train"):
  """The two domains of bundled:digit_pair: (a_images, a_labels, b_images, b_labels).

  Made from all 5,000 bundled MNIST digits: domain A is the examples
  of even index, plain white digits on black; domain B is the examples of odd
  index, drawn differently: strokes thickened by a 3x3 grey dilation and
  coloured amber (255, 176, 0) on a dark blue (16, 32, 96) background. Images
  are uint8 RGB [N, image_size, image_size, 3], padded 28 -> 32 like
  fit_mnist (and resized from 32 for other sizes); labels are the digit classes,
  int32 [N], so a translation can be checked to keep the class. In each half
  the last 10% of each class (25 digits, 250 in all) is the `test` split, the
  rest (2,250) `train` (`held_out`), so the two domains together hold the
  digits of the same split of bundled_mnist. The arrays are cached and read-only.
  """
  _check_split_and_domain(split, "a")
  digits, labels = _load_bundled_mnist()
  out = []
  for half in (0, 1):
    d, l = digits[half::2], labels[half::2]
    part = held_out(l) == (split == "test")
    d, l = d[part], l[part].copy()
    if half == 0:
      images = np.repeat(fit_mnist(d, image_size)[..., None], 3, axis=-1)
    else:
      images = colourise(fit_mnist(thicken(d), image_size))
    for array in (images, l):
      array.setflags(write=False)
    out += [images, l]
  return tuple(out)


# folder:<path> --------------------------------------------------------------


def _domain_dir(spec: Spec, split: str, domain: str) -> str:
  """<path>/<split><A|B>, or a GanjaxError naming what is missing."""
  where = f"dataset='folder:{spec.name}'"
  root = os.path.abspath(os.path.expanduser(spec.name))
  if not os.path.isdir(root):
    what = "is not a directory" if os.path.exists(root) else "does not exist"
    raise GanjaxError(f"{where}: {root} {what}; point folder:<path> at a directory"
                      " holding trainA/ and trainB/ (optionally testA/, testB/) of images")
  name = f"{split}{domain.upper()}"
  path = os.path.join(root, name)
  if not os.path.isdir(path):
    hint = ("unpaired data needs trainA/ and trainB/" if split == "train"
            else "or evaluate on the train split")
    raise GanjaxError(f"{where}: {root} has no {name}/ folder; put domain {domain.upper()}'s"
                      f" {split} images in {path} ({hint})")
  return path


def _image_files(spec: Spec, directory: str, domain: str) -> list[str]:
  """The image files of a domain folder, sorted by name (hidden files skipped)."""
  try:
    listed = os.listdir(directory)
  except OSError as e:
    raise GanjaxError(f"dataset='folder:{spec.name}': cannot list {directory}"
                      f" ({e.strerror}); make it readable (chmod a+rx) or copy the images"
                      " somewhere readable") from e
  names = sorted(n for n in listed
                 if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
                 and os.path.isfile(os.path.join(directory, n)))
  if not names:
    raise GanjaxError(f"dataset='folder:{spec.name}': {directory} holds no image files"
                      f" ({', '.join(IMAGE_EXTENSIONS)}); put domain {domain.upper()}'s"
                      " images there")
  return [os.path.join(directory, n) for n in names]


def decode_image(where: str, path: str, channels: int) -> np.ndarray:
  """One image file -> uint8 [H, W, channels] at its own size (reads, never writes).

  `where` starts each error message (the dataset or flag that named the file).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      im.load()
      mode = im.mode
      if mode in ("I", "F") or mode.startswith("I;"):
        raise GanjaxError(f"{where}: {path} has 16-bit or float pixels (mode {mode}), which"
                          " ganjax does not rescale; save it as an 8-bit image")
      rgb = np.asarray(im.convert("RGB"))
  except GanjaxError:
    raise
  except Exception as e:  # any failure to decode is a bad file of the user's
    why = " ".join(str(e).split()) or type(e).__name__
    raise GanjaxError(f"{where}: cannot read the image {path} ({why}); replace or remove"
                      " that file") from e
  if channels == 1:
    if not (np.array_equal(rgb[..., 0], rgb[..., 1])
            and np.array_equal(rgb[..., 0], rgb[..., 2])):
      raise GanjaxError(f"{where}: {path} is a colour image but channels=1; set"
                        " --config.channels=3 (or make every image greyscale)")
    return rgb[..., :1]
  return rgb


def _read_image(where: str, path: str, size: int, channels: int) -> np.ndarray:
  """One image file -> uint8 [size, size, channels], resized bicubically (reads, never writes)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  pixels = decode_image(where, path, channels)
  image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
  resized = np.asarray(image.resize((size, size), Image.BICUBIC))
  return resized.reshape(size, size, channels)


@functools.lru_cache(maxsize=4)
def _read_images(where: str, files: tuple, size: int, channels: int) -> np.ndarray:
  # `files` holds (path, size, mtime) so that a changed file is read again.
  from concurrent import futures  # pylint: disable=g-import-not-at-top
  with futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
    images = np.stack(list(pool.map(lambda f: _read_image(where, f[0], size, channels), files)))
  images.setflags(write=False)
  return images


def folder_images(spec: Spec, split: str, domain: str, load_size: int,
                  channels: int) -> np.ndarray:
  """All images of <path>/<split><A|B>, uint8 [N, load_size, load_size, channels].

  Files ending in .png, .jpg, .jpeg, .bmp or .webp (any case), sorted by name,
  are decoded with PIL, converted to RGB (channels=3: grey images repeated,
  alpha dropped) or kept grey (channels=1, where a colour image is an error),
  and resized to load_size x load_size, bicubic. The user's files are only read.
  """
  domain = _check_split_and_domain(split, domain)
  where = f"dataset='folder:{spec.name}'"
  if channels not in (1, 3):
    raise GanjaxError(f"channels={channels}: {where} loads images as RGB (channels=3) or"
                      " greyscale (channels=1); set --config.channels=3")
  files = _image_files(spec, _domain_dir(spec, split, domain), domain)
  stamped = tuple((f, os.stat(f).st_size, os.stat(f).st_mtime_ns) for f in files)
  return _read_images(where, stamped, load_size, channels)


# In-memory sources: bundled:digit_pair and folder:<path> -------------------------


def _loaded_images(config, spec: Spec, split: str, domain: str) -> np.ndarray:
  """The uint8 images of an in-memory domain at load_size, before any cropping."""
  load_size, _ = _sizes(config)
  if spec.kind == "folder":
    return folder_images(spec, split, domain, load_size, config.channels)
  a_images, _, b_images, _ = digit_pair(load_size, split)
  images = a_images if domain == "a" else b_images
  return match_channels(images, config.channels, f"dataset={config.dataset!r}")


class UnpairedArraySource:
  """Unpaired batches of two in-memory domains, a pure function of (seed, step).

  Each domain runs through its own endless sequence of epochs, each visiting
  all of the domain's examples in an order drawn from (seed, 1, domain, epoch),
  so A and B are paired independently of each other; global batch t takes
  examples t*B .. t*B + B - 1 of each sequence. Each example is cropped to
  crop_size at an offset, and (when `flip`) mirrored with probability 1/2,
  drawn for the whole global batch from (seed, 2, domain, t). Host p of P
  returns rows [p*B/P, (p+1)*B/P) of the global batch.
  """

  def __init__(self, images_a: np.ndarray, images_b: np.ndarray, global_batch_size: int,
               seed: int, crop_size: int, flip: bool, process_index: int = 0,
               process_count: int = 1):
    assert global_batch_size % process_count == 0, (global_batch_size, process_count)
    self.images = {"a": images_a, "b": images_b}
    for images in self.images.values():
      assert images.shape[1] >= crop_size and images.shape[2] >= crop_size, images.shape
    self.global_batch_size = global_batch_size
    local = global_batch_size // process_count
    self.local = slice(process_index * local, (process_index + 1) * local)
    self.seed, self.crop_size, self.flip = seed, crop_size, flip

  @functools.lru_cache(maxsize=8)
  def _order(self, domain: str, epoch: int) -> np.ndarray:
    rng = np.random.default_rng([self.seed, 1, DOMAINS.index(domain), epoch])
    return rng.permutation(len(self.images[domain]))

  def indices(self, domain: str, step: int) -> np.ndarray:
    """The example indices of domain `domain` in global batch `step`, int [global batch]."""
    n = len(self.images[domain])
    epoch, within = np.divmod(step * self.global_batch_size + np.arange(self.global_batch_size), n)
    out = np.empty(self.global_batch_size, np.int64)
    for e in np.unique(epoch):
      out[epoch == e] = self._order(domain, int(e))[within[epoch == e]]
    return out

  def augmentation(self, domain: str, step: int):
    """(tops, lefts, flips) of the crops of global batch `step`, each [global batch]."""
    rng = np.random.default_rng([self.seed, 2, DOMAINS.index(domain), step])
    _, h, w, _ = self.images[domain].shape
    g = self.global_batch_size
    tops = rng.integers(0, h - self.crop_size + 1, g)
    lefts = rng.integers(0, w - self.crop_size + 1, g)
    flips = (rng.random(g) < 0.5) & self.flip
    return tops, lefts, flips

  def domain_batch(self, domain: str, step: int) -> np.ndarray:
    images, c = self.images[domain], self.crop_size
    rows = zip(self.indices(domain, step)[self.local],
               *(x[self.local] for x in self.augmentation(domain, step)))
    out = np.stack([images[i, t:t + c, l:l + c, :][:, ::-1 if f else 1]
                    for i, t, l, f in rows])
    return to_unit_range(out)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    return {"image_a": self.domain_batch("a", step), "image_b": self.domain_batch("b", step)}

  iterate = ArraySource.iterate


# tfds:cycle_gan/<pair> ------------------------------------------------------


def tf_resize_and_crop(image, *, load_size: int, image_size: int, channels: int,
                       seed=None, flip: bool = False):
  """The reference preprocessing of one uint8 image [h, w, c] -> uint8 [S, S, channels].

  Resizes to load_size x load_size (bicubic, antialiased, rounded back to
  uint8 as PIL does), then crops image_size x image_size: a random window drawn
  from the stateless `seed` (int [2]), mirrored left-right with probability
  1/2 when `flip`; with seed None the centre window, unmirrored.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if channels == 3 and image.shape[-1] == 1:
    image = tf.image.grayscale_to_rgb(image)
  image = tf.image.resize(image, (load_size, load_size), method="bicubic", antialias=True)
  image = tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)
  if seed is None:
    offset = (load_size - image_size) // 2
    return image[offset:offset + image_size, offset:offset + image_size]
  crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
  image = tf.image.stateless_random_crop(image, (image_size, image_size, channels), crop_seed)
  if flip:
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)
  return image


def _tfds_unpaired_builder(name: str, channels: int, data_dir: str | None):
  builder = _tfds_builder(name, data_dir)
  spec = f"tfds:{name}"
  features = builder.info.features
  if "image" not in features:
    raise GanjaxError(f"dataset={spec!r} has no 'image' feature; ganjax trains on images")
  have = features["image"].shape[-1]
  if have not in (channels, None) and not (have == 1 and channels == 3):
    raise GanjaxError(f"{spec} has {have} channels but channels={channels};"
                      f" set --config.channels={have}")
  return builder


def tfds_unpaired_dataset(name: str, *, split: str = "train", image_size: int,
                          load_size: int, flip: bool, channels: int, local_batch_size: int,
                          seed: int, data_dir: str | None = None, shuffle_buffer: int = 1_000,
                          process_index: int = 0, process_count: int = 1,
                          start_batch: int = 0):
  """Unpaired batches of a tfds cycle_gan pair: a tf.data.Dataset of this host's
  {"image_a", "image_b"} float32 [B, S, S, C] in [-1, 1].

  Splits <split>A and <split>B, each read per host (`tfds.split_for_jax_process`)
  as its own endless sequence of shuffled epochs (`shuffled_epochs`, seeds
  drawn from `seed`), the k-th example of a domain preprocessed by
  `tf_resize_and_crop` with the stateless seed (crop seed, k), then zipped,
  batched and prefetched. The dataset starts at this host's batch
  `start_batch`, as an uninterrupted run would be there. Not prepared and
  offline: one GanjaxError naming the fix.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")  # keep TensorFlow off the accelerators
  builder = _tfds_unpaired_builder(name, channels, data_dir)
  image_feature = builder.info.features["image"]
  spec = f"tfds:{name}"
  seeds = np.random.default_rng(seed).integers(2**31, size=(2, 2))
  options = tf.data.Options()
  options.deterministic = True
  start = start_batch * local_batch_size
  domains = []
  for letter, (shuffle_seed, crop_seed) in zip("AB", seeds.tolist()):
    ds = _tfds_split(builder, spec, f"{split}{letter}", process_index=process_index,
                     process_count=process_count, offline="bundled:digit_pair",
                     decoders={"image": tfds.decode.SkipDecoding()})
    ds = shuffled_epochs(ds.with_options(options).map(lambda example: example["image"]),
                         seed=shuffle_seed, shuffle_buffer=shuffle_buffer, start=start,
                         what=f"{spec} ({split}{letter})")
    ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start)))

    def preprocess(encoded, k, crop_seed=crop_seed):
      return tf_resize_and_crop(image_feature.decode_example(encoded), load_size=load_size,
                                image_size=image_size, channels=channels, flip=flip,
                                seed=tf.stack([tf.constant(crop_seed, tf.int64), k]))

    domains.append(ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE))

  def to_float(a, b):
    scale = lambda x: tf.cast(x, tf.float32) * (2.0 / 255.0) - 1.0  # noqa: E731
    return {"image_a": scale(a), "image_b": scale(b)}

  return (tf.data.Dataset.zip(tuple(domains))
          .batch(local_batch_size, drop_remainder=True)
          .map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
          .prefetch(tf.data.AUTOTUNE))


def _tfds_unpaired_images(config, spec: Spec, split: str, domain: str,
                          limit: int | None = None) -> np.ndarray:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.config.set_visible_devices([], "GPU")
  load_size, image_size = _sizes(config)
  builder = _tfds_unpaired_builder(spec.name, config.channels,
                                   config.get("tfds_data_dir") or None)
  ds = _tfds_split(builder, f"tfds:{spec.name}", f"{split}{domain.upper()}",
                   offline="bundled:digit_pair")
  if limit is not None:
    ds = ds.take(limit)
  ds = ds.map(lambda example: tf_resize_and_crop(
      example["image"], load_size=load_size, image_size=image_size, channels=config.channels))
  return np.stack(list(ds.as_numpy_iterator()))


# Entry points ---------------------------------------------------------------


def unpaired_images(config, split: str, domain: str) -> np.ndarray:
  """All images of one domain ("a" or "b") of a split ("train" or "test"), uint8 [N, S, S, C].

  Preprocessed as for training (resized to load_size) but centre-cropped to
  image_size and never mirrored: the inputs of evaluation and translation.
  For bundled:digit_pair they are in the order of `digit_pair(load_size,
  split)`'s labels. tfds: specs read the whole split into memory.
  """
  domain = _check_split_and_domain(split, domain)
  spec = parse_spec(config.dataset)
  if not is_unpaired(spec):
    raise GanjaxError(f"dataset={config.dataset!r} is not unpaired two-domain data; use"
                      " bundled:digit_pair, folder:<path> or tfds:cycle_gan/<pair>")
  if spec.kind == "tfds":
    return _tfds_unpaired_images(config, spec, split, domain)
  return centre_crop(_loaded_images(config, spec, split, domain), config.image_size)


def preview_examples(config, n: int) -> dict[str, np.ndarray]:
  """Fixed real images for sample grids: {"a": ..., "b": ...}, float32 [<= n, S, S, C] in [-1, 1].

  n centre-cropped test images of each domain, evenly spaced through the split
  (the bundled digit pair is ordered by class: this shows every digit); the
  train images where a folder: dataset has no test folder. tfds pairs give
  their first n test images.
  """
  spec = parse_spec(config.dataset)
  out = {}
  for domain in DOMAINS:
    split = "test"
    if spec.kind == "folder":
      test_dir = os.path.join(os.path.expanduser(spec.name), "test" + domain.upper())
      split = "test" if os.path.isdir(test_dir) else "train"
    if spec.kind == "tfds":
      images = _tfds_unpaired_images(config, spec, split, domain, limit=n)
    else:
      images = unpaired_images(config, split, domain)
      images = images[np.linspace(0, len(images) - 1, min(n, len(images))).astype(int)]
    out[domain] = to_unit_range(images)
  return out


def _unpaired_batches(config, spec: Spec, *, start_step: int, process_index: int,
                      process_count: int, per_step) -> Iterator[dict[str, np.ndarray]]:
  load_size, image_size = _sizes(config)
  flip = bool(config.get("flip", False))
  first = sum(per_step(t) for t in range(start_step))
  if spec.kind == "tfds":
    ds = tfds_unpaired_dataset(spec.name, split="train", image_size=image_size,
                               load_size=load_size, flip=flip, channels=config.channels,
                               local_batch_size=config.batch_size // process_count,
                               seed=config.seed, data_dir=config.get("tfds_data_dir") or None,
                               shuffle_buffer=config.get("shuffle_buffer", 1_000),
                               process_index=process_index, process_count=process_count,
                               start_batch=first)
    return _group(ds.as_numpy_iterator(), start_step, per_step)
  source = UnpairedArraySource(_loaded_images(config, spec, "train", "a"),
                               _loaded_images(config, spec, "train", "b"),
                               config.batch_size, config.seed, image_size, flip,
                               process_index, process_count)
  return _group(source.iterate(first), start_step, per_step)


# ----------------------------------------------------------------------------
# The entry point used by the training loop.


def make_batches(config, *, start_step: int = 0, process_index: int = 0,
                 process_count: int = 1,
                 per_step: Callable[[int], int] = lambda step: 1
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Host-local training batches for steps `start_step`, `start_step + 1`, ...

  The batch of step t stacks `per_step(t)` consecutive batches on a leading
  axis (the critic updates of one generator iteration):
  image [per_step(t), B, H, W, C], label [per_step(t), B]; for unpaired data
  (`is_unpaired`) image_a and image_b [per_step(t), B, H, W, C], no labels.
  """
  spec = parse_spec(config.dataset)
  if config.batch_size % process_count:
    raise GanjaxError(f"batch_size={config.batch_size} does not divide by the"
                      f" {process_count} processes; use a multiple of {process_count}")
  check_labels(config, spec)
  if is_unpaired(spec):
    return _unpaired_batches(config, spec, start_step=start_step, process_index=process_index,
                             process_count=process_count, per_step=per_step)
  first = sum(per_step(t) for t in range(start_step))  # batches before step start_step
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
    return _group(source.iterate(first), start_step, per_step)
  ds = tfds_dataset(spec.name, split="train", image_size=config.image_size,
                    channels=config.channels,
                    local_batch_size=config.batch_size // process_count, seed=config.seed,
                    data_dir=config.tfds_data_dir or None,
                    shuffle_buffer=config.shuffle_buffer,
                    process_index=process_index, process_count=process_count,
                    start_batch=first)
  return _group(ds.as_numpy_iterator(), start_step, per_step)


def check_source(config) -> None:
  """Raises the GanjaxError that reading `config.dataset` would, before training starts.

  Writes nothing. The spec, the labels a conditional model needs, the kind of
  data the algorithm trains on (unpaired domains for CycleGAN, single images
  otherwise), then the data itself: every image of a folder: dataset is read
  (and kept for make_batches), a tfds: dataset must exist and be prepared or
  downloadable (a download happens here), with the right channels.
  """
  spec = parse_spec(config.dataset)
  unpaired = is_unpaired(spec)
  if config.get("algorithm") == "cyclegan" and not unpaired:
    raise GanjaxError(f"dataset={config.dataset!r} is one set of images, but CycleGAN trains"
                      " on two unpaired domains; use bundled:digit_pair, folder:<path> (with"
                      " trainA/ and trainB/) or tfds:cycle_gan/<pair>")
  if config.get("algorithm", "cyclegan") != "cyclegan" and unpaired:
    raise GanjaxError(f"dataset={config.dataset!r} is unpaired two-domain data, for"
                      f" algorithm='cyclegan'; algorithm={config.algorithm!r} trains on one set"
                      " of images: use bundled:mnist, tfds:<name> or a toy: mixture")
  check_labels(config, spec)
  if spec.kind == "toy":
    if config.channels != 2:
      raise GanjaxError(f"dataset={config.dataset!r} has 2D points but channels="
                        f"{config.channels}; set --config.channels=2")
  elif unpaired and spec.kind != "tfds":
    for domain in DOMAINS:
      _loaded_images(config, spec, "train", domain)
  elif spec.kind == "bundled":
    load_bundled(spec.name, config.image_size, config.channels)
  elif spec.kind == "tfds":
    data_dir = config.get("tfds_data_dir") or None
    if unpaired:
      builder = _tfds_unpaired_builder(spec.name, config.channels, data_dir)
      splits, offline = ("trainA", "trainB"), "bundled:digit_pair"
    else:
      builder = _tfds_builder(spec.name, data_dir)
      features = builder.info.features
      if "image" not in features:
        raise GanjaxError(f"dataset={config.dataset!r} has no 'image' feature; ganjax trains"
                          " on images")
      have = features["image"].shape[-1]
      if have not in (config.channels, None) and not (have == 1 and config.channels == 3):
        raise GanjaxError(f"{config.dataset} has {have} channels but channels="
                          f"{config.channels}; set --config.channels={have}")
      splits, offline = ("train",), "bundled:mnist"
    for split in splits:
      _tfds_split(builder, config.dataset, split, offline=offline)


def num_classes(spec: Spec, data_dir: str | None = None) -> int | None:
  """The number of classes of a dataset's labels, or None if it has none."""
  if spec.kind == "bundled":
    return 10  # bundled:digit_pair keeps the digits' classes too (see digit_pair)
  if spec.kind == "folder":
    return None
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
  if is_unpaired(spec):
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r} is"
                      " unpaired two-domain data, whose batches carry no labels; set"
                      " --config.num_classes=0")
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
