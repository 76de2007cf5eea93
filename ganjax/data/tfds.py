"""tfds:<name>: tensorflow-datasets datasets, and the tfds:cycle_gan/<pair> unpaired domains.

TensorFlow and tensorflow-datasets are imported only when a tfds: spec is used.
"""

import socket

import numpy as np

from ganjax.data.common import Spec, _sizes
from ganjax.errors import GanjaxError


TFDS_INSTALL = ("pip install 'ganjax[tfds]' (in a checkout: pip install -r"
                " requirements.txt)")


def _not_installed(error: ImportError) -> GanjaxError:
  return GanjaxError(f"tfds: datasets need TensorFlow and tensorflow-datasets, which cannot be"
                     f" imported here ({error}); install them with {TFDS_INSTALL}, or train"
                     " on bundled:mnist, bundled:digit_pair, folder:<path> or a toy: mixture")


def import_tf():
  """The tensorflow module; a GanjaxError naming the extra to install if missing."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _not_installed(e) from e
  return tf


def import_tfds():
  """The tensorflow_datasets module; a GanjaxError naming the extra to install if missing."""
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise _not_installed(e) from e
  return tfds


def _network_reachable(timeout: float = 3.0) -> bool:
  try:
    socket.create_connection(("storage.googleapis.com", 443), timeout=timeout).close()
    return True
  except OSError:
    return False


def _reachable() -> bool:
  # Asks the package's `_network_reachable`, so that replacing it there (as the
  # offline tests do) covers this module too.
  from ganjax import data  # pylint: disable=g-import-not-at-top
  return data._network_reachable()  # pylint: disable=protected-access


def _not_available(spec: str, data_dir: str, why: str,
                   offline: str = "bundled:mnist") -> GanjaxError:
  return GanjaxError(
      f"dataset {spec} is not prepared in {data_dir} and {why}; prepare it where"
      f" there is a network (`tfds build {spec[5:]}`) and point TFDS_DATA_DIR (or"
      f" --config.tfds_data_dir) at it, or train offline with"
      f" --config.dataset={offline}")


def _tfds_builder(name: str, data_dir: str | None):
  """The tfds builder of `name` ("cifar10", "cycle_gan/horse2zebra"); a GanjaxError if unknown."""
  tfds = import_tfds()
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
  tfds = import_tfds()
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
    if not _reachable():
      raise _not_available(spec, where, "there is no network to download it", offline) from e
    try:
      builder.download_and_prepare()
    except Exception as download_error:  # any failure of the download is the user's to fix
      raise _not_available(spec, where, f"downloading it failed ({download_error})",
                           offline) from e
    return as_dataset()


def _count(ds) -> int:
  """The number of examples of a finite tf.data.Dataset (read through if tf does not know it)."""
  tf = import_tf()
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
  tf = import_tf()
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
  tf = import_tf()
  tfds = import_tfds()
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


# tfds:cycle_gan/<pair> ------------------------------------------------------


def tf_resize_and_crop(image, *, load_size: int, image_size: int, channels: int,
                       seed=None, flip: bool = False):
  """The reference preprocessing of one uint8 image [h, w, c] -> uint8 [S, S, channels].

  Resizes to load_size x load_size (bicubic, antialiased, rounded back to
  uint8 as PIL does), then crops image_size x image_size: a random window drawn
  from the stateless `seed` (int [2]), mirrored left-right with probability
  1/2 when `flip`; with seed None the centre window, unmirrored.
  """
  tf = import_tf()
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
  tf = import_tf()
  tfds = import_tfds()
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


def tfds_unpaired_images(config, spec: Spec, split: str, domain: str,
                          limit: int | None = None) -> np.ndarray:
  tf = import_tf()
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


# What ganjax.data's check_source and num_classes ask of tfds: datasets ----------------


def check_tfds(config, spec: Spec, unpaired: bool) -> None:
  """Raises the GanjaxError that reading a tfds: dataset would: unknown, no images, wrong
  channels, or not prepared and not downloadable (a download happens here)."""
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


def tfds_num_classes(name: str, data_dir: str | None = None) -> int | None:
  """The number of classes of a tfds dataset's `label` feature, or None if it has none."""
  tfds = import_tfds()
  try:
    features = tfds.builder(name, data_dir=data_dir).info.features
  except Exception:  # an unknown or unreadable dataset is reported by tfds_dataset
    return None
  return features["label"].num_classes if "label" in features else None


def tfds_class_names(name: str, data_dir: str | None = None) -> list[str] | None:
  """The names of a tfds dataset's `label` classes, or None if it has no named labels."""
  tfds = import_tfds()
  try:
    features = tfds.builder(name, data_dir=data_dir).info.features
  except Exception:  # an unknown or unreadable dataset is reported by tfds_dataset
    return None
  names = list(getattr(features["label"], "names", None) or []) if "label" in features else []
  return names or None
