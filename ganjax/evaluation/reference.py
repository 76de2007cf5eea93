"""Named reference sets: the real images metrics compare against, measured once and cached.

A reference is named by a dataset spec (as `ganjax.data.parse_spec` reads it)
and a split:

  bundled:mnist     the bundled digits' split (train: 4,500 digits, test: 500)
  tfds:<name>       a tensorflow-datasets split, preprocessed as for training
                    (centre crop to a square, area resize to the image size)
  folder:<path>     a folder of images, flat or in class subfolders, decoded
                    as for training (centre crop, bicubic resize to the image
                    size; ganjax.data.image_folder); the split does not apply

Its images are taken in a fixed order: the in-memory sources in the order of
NumPy's default_rng(REFERENCE_SEED).permutation, tfds: splits as the
training pipeline shuffles them with seed REFERENCE_SEED through a buffer of
REFERENCE_SHUFFLE examples. A reference of `limit` images is the first
`limit` of that order (so the quick reference is a prefix of the whole one);
without a limit it is the whole split.

`load` measures the reference's features with a feature extractor once and
caches them, with their FID statistics, in <cache>/references/<name>
(<cache> is $GANJAX_CACHE, default ~/.cache/ganjax). As torch-fidelity and
clean-fid name their cached statistics, the name encodes everything the
numbers depend on:

  <dataset>_<split>_<size>x<size>x<channels>_<extractor>-<weights SHA-256, 12 hex>_n<count>.npz
  e.g. tfds-cifar10-3.0.2_train_32x32x3_inception-6726825d0af5_n50000.npz

(a tfds: dataset carries its version; a folder: its name and a hash of its
path and of its files' names, sizes and modification times, so a changed
folder is measured again). The file holds `mu` and `sigma` (float64:
pytorch-fid's statistics format, so `python -m ganjax fid` and pytorch-fid
read it as statistics), `features` (float32 [count, d], for KID and
precision/recall) and `meta` (JSON: the fields of the name, the weights'
full SHA-256, and whole_split).
"""

import dataclasses
import hashlib
import json
import os
import re

import numpy as np

from ganjax import data
from ganjax.errors import GanjaxError

REFERENCE_SEED = 0
REFERENCE_SHUFFLE = 10_000
REFERENCES_DIR = "references"
CHUNK = 500  # images read and measured at a time
KINDS = ("bundled:mnist", "tfds:<name>", "folder:<path>")


@dataclasses.dataclass
class Source:
  """The images of a named reference, before they are measured."""
  dataset: str        # the spec, e.g. "tfds:cifar10"
  split: str          # "train", "test", ...; "all" for folder:
  image_size: int
  channels: int
  count: int          # images in the reference
  whole_split: bool   # count is the whole split
  slug: str           # the dataset part of the cache file name
  read: object        # () -> iterator of uint8 [n, S, S, C] chunks, `count` images in all

  def chunks(self):
    return self.read()


@dataclasses.dataclass
class Reference:
  """A measured reference: FID statistics, and the features where they were kept."""
  mu: np.ndarray
  sigma: np.ndarray
  features: np.ndarray | None  # float32 [count, d]; None in a statistics-only file
  meta: dict
  path: str | None = None

  @property
  def dim(self) -> int:
    return int(self.mu.shape[0])

  @property
  def count(self) -> int | None:
    if self.features is not None:
      return len(self.features)
    return self.meta.get("count")

  @property
  def whole_split(self) -> bool:
    return bool(self.meta.get("whole_split", False))


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-") or "x"


def _to_uint8(images) -> np.ndarray:
  from ganjax.evaluation import suite  # pylint: disable=g-import-not-at-top
  return suite.to_uint8(images)


def _limited(count: int, limit: int | None) -> tuple[int, bool]:
  if limit is None or limit >= count:
    return count, True
  return limit, False


def _bundled(spec, split, image_size, channels, limit) -> Source:
  if spec.name != "mnist":
    raise GanjaxError(f"reference bundled:{spec.name} is unpaired two-domain data, not one set"
                      " of images; use bundled:mnist, tfds:<name> or folder:<path> (one"
                      " domain's folder, e.g. folder:<path>/trainB)")
  if split not in ("train", "test"):
    raise GanjaxError(f"reference bundled:mnist has no split {split!r}; use train or test")
  images, _ = data.bundled_mnist(split, image_size, channels)
  count, whole = _limited(len(images), limit)
  order = np.random.default_rng(REFERENCE_SEED).permutation(len(images))[:count]

  def read():
    for start in range(0, count, CHUNK):
      yield images[order[start:start + CHUNK]]
  return Source("bundled:mnist", split, image_size, channels, count, whole, "bundled-mnist",
                read)


def _folder(spec, image_size, channels, limit) -> Source:
  from ganjax.data import folder as data_folder  # pylint: disable=g-import-not-at-top
  if data_folder.holds_domains(spec.name):
    raise GanjaxError(f"reference folder:{spec.name} holds unpaired domains (trainA/, trainB/);"
                      f" name one domain's folder, e.g. folder:{spec.name.rstrip('/')}/trainB")
  listed = data.scan_image_folder(spec)  # a GanjaxError naming what is wrong
  listing = hashlib.sha256(listed.root.encode())
  for path, label, size, mtime in listed.files:
    listing.update(f"\0{os.path.relpath(path, listed.root)}\0{label}\0{size}\0{mtime}".encode())
  count, whole = _limited(len(listed.files), limit)
  order = np.random.default_rng(REFERENCE_SEED).permutation(len(listed.files))[:count]

  def read():
    # Decoded as for training (centre crop, bicubic resize), through the data cache.
    images, _ = data.image_folder(spec, image_size, channels)
    for start in range(0, count, CHUNK):
      yield np.asarray(images[order[start:start + CHUNK]])
  slug = f"folder-{_slug(os.path.basename(listed.root))}-{listing.hexdigest()[:8]}"
  return Source(f"folder:{spec.name}", "all", image_size, channels, count, whole, slug, read)


def _tfds(spec, split, image_size, channels, limit, data_dir) -> Source:
  # tfds_dataset checks the dataset (known, prepared, has images, channels) first.
  stream = data.tfds_dataset(spec.name, split=split, image_size=image_size, channels=channels,
                             local_batch_size=CHUNK // 2, seed=REFERENCE_SEED,
                             data_dir=data_dir, shuffle_buffer=REFERENCE_SHUFFLE)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  builder = tfds.builder(spec.name, data_dir=data_dir)
  records = builder.as_dataset(split=split, shuffle_files=False,
                               decoders={"image": tfds.decode.SkipDecoding()})
  total = int(records.cardinality())
  if total < 0:  # unknown: count the undecoded records
    total = int(records.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))
  count, whole = _limited(total, limit)

  def read():
    # The first `total` examples of the stream are its first epoch: each example once.
    left = count
    for batch in stream.as_numpy_iterator():
      images = _to_uint8(batch["image"][:left])
      left -= len(images)
      yield images
      if left <= 0:
        break
  slug = f"tfds-{_slug(spec.name)}-{builder.version}"
  return Source(f"tfds:{spec.name}", split, image_size, channels, count, whole, slug, read)


def _rechunk(chunks, batch: int):
  """The images of `chunks` in pieces of a multiple of `batch` (the last may be shorter),
  so that a batched extractor pads only the very last batch."""
  size = batch * max(1, CHUNK // batch)
  held, count = [], 0
  for chunk in chunks:
    held.append(chunk)
    count += len(chunk)
    while count >= size:
      joined = np.concatenate(held)
      yield joined[:size]
      held, count = [joined[size:]], count - size
  if count:
    yield np.concatenate(held)


def source(dataset: str, *, split: str = "train", image_size: int, channels: int,
           limit: int | None = None, data_dir: str | None = None,
           what: str = "--reference") -> Source:
  """The images of reference `dataset` (a spec) and `split`: all, or the first `limit`."""
  try:
    spec = data.parse_spec(dataset)
  except GanjaxError as e:
    raise GanjaxError(f"{what} {dataset!r} is not a reference: {e}; or give an .npz file of"
                      " reference statistics") from e
  if spec.kind == "toy":
    raise GanjaxError(f"{what} {dataset!r}: the 2D mixtures have no image reference (their"
                      f" metrics compare against fresh points of the mixture); use"
                      f" {', '.join(KINDS)}")
  if spec.kind == "bundled":
    return _bundled(spec, split, image_size, channels, limit)
  if spec.kind == "folder":
    return _folder(spec, image_size, channels, limit)
  return _tfds(spec, split, image_size, channels, limit, data_dir)


def cache_dir() -> str:
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  return os.path.join(fid.cache_dir(), REFERENCES_DIR)


def file_name(src: Source, extractor: str, weights_sha256: str) -> str:
  """The cache file name of `src` measured by `extractor` with weights of that SHA-256."""
  size = f"{src.image_size}x{src.image_size}x{src.channels}"
  return (f"{src.slug}_{_slug(src.split)}_{size}_{_slug(extractor)}-{weights_sha256[:12]}"
          f"_n{src.count}.npz")


def save(path: str, ref: Reference) -> None:
  """Writes `ref` to `path` (atomically: a partial file never has the name)."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  tmp = f"{path}.tmp{os.getpid()}"
  arrays = {"mu": np.asarray(ref.mu, np.float64), "sigma": np.asarray(ref.sigma, np.float64),
            "meta": np.array(json.dumps(ref.meta, sort_keys=True))}
  if ref.features is not None:
    arrays["features"] = np.asarray(ref.features, np.float32)
  with open(tmp, "wb") as f:
    np.savez(f, **arrays)
  os.replace(tmp, path)


def read(path: str, what: str = "--reference") -> Reference:
  """A reference file: this module's, or any .npz of FID statistics (mu, sigma) such as
  pytorch-fid's (statistics only: FID, but no KID or precision/recall)."""
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  path = os.path.expanduser(path)
  if not os.path.isfile(path):
    raise GanjaxError(f"{what} {path} does not exist; give a reference file written by"
                      " ganjax (python -m ganjax fid --save_stats, or the cache of"
                      f" --reference <dataset>) or a dataset spec ({', '.join(KINDS)})")
  mu, sigma = fid.load_stats(path)
  features, meta = None, {}
  try:
    with np.load(path) as f:
      if "features" in f.files:
        features = np.asarray(f["features"], np.float32)
      if "meta" in f.files:
        meta = json.loads(str(f["meta"]))
  except Exception as e:  # a damaged file
    raise GanjaxError(f"{what} {path} cannot be read ({e}); write it again") from e
  if features is not None and (features.ndim != 2 or features.shape[1] != mu.size):
    raise GanjaxError(f"{what} {path}: features have shape {features.shape} but the statistics"
                      f" {mu.size} dimensions; write the file again")
  return Reference(mu, sigma, features, meta, path)


def load(src: Source, extractor, *, extractor_name: str, weights_sha256: str,
         log=print) -> Reference:
  """The reference of `src` measured by `extractor` (images -> {"pool": [n, d]}): read from
  the cache when there, else measured and cached."""
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  path = os.path.join(cache_dir(), file_name(src, extractor_name, weights_sha256))
  meta = {"dataset": src.dataset, "split": src.split, "image_size": src.image_size,
          "channels": src.channels, "count": src.count, "whole_split": src.whole_split,
          "extractor": extractor_name, "weights_sha256": weights_sha256}
  if os.path.isfile(path):
    try:
      ref = read(path)
      if ref.meta == meta and ref.count == src.count:
        return ref
    except GanjaxError:
      pass
    log(f"the cached reference {path} does not match its name; measuring it again")
  what = "all" if src.whole_split else "the first"
  log(f"measuring the {extractor_name} features of {what} {src.count} {src.split} images of"
      f" {src.dataset} (once; cached in {path})")
  features = extractor(_rechunk(src.chunks(), getattr(extractor, "batch_size", CHUNK)))["pool"]
  if len(features) != src.count:
    raise GanjaxError(f"reference {src.dataset} ({src.split}) gave {len(features)} images, not"
                      f" the {src.count} it holds; delete {path} if it exists and try again")
  mu, sigma = fid.statistics(features)
  ref = Reference(mu, sigma, np.asarray(features, np.float32), meta, path)
  save(path, ref)
  return ref
