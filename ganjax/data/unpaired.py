"""Unpaired two-domain data (CycleGAN): bundled:digit_pair, folder:<path>, tfds:cycle_gan/<pair>.

A batch holds examples of domain A and of domain B, in independent orders:
{"image_a": float32 [B, H, W, C], "image_b": float32 [B, H, W, C]} in [-1, 1].
Preprocessing is the reference code's "resize_and_crop" (Zhu et al.): every
image is resized to load_size x load_size (bicubic), then each example of a
batch is a random image_size x image_size crop, mirrored left-right with
probability 1/2 when config.flip. Evaluation, translation and sample grids
take the centre crop, unmirrored (`unpaired_images`, `preview_examples`).

Config keys read: dataset, image_size, channels, batch_size, seed,
load_size (default image_size), flip (default False), and for tfds:
tfds_data_dir, shuffle_buffer.
"""

import functools
import os
from collections.abc import Iterator

import numpy as np

from ganjax.data import bundled, folder, tfds
from ganjax.data.common import (DOMAINS, ArraySource, Spec, _check_split_and_domain, _sizes,
                                centre_crop, group, match_channels, parse_spec, to_unit_range)
from ganjax.errors import GanjaxError


def is_unpaired(spec: str | Spec) -> bool:
  """Whether a dataset spec names unpaired two-domain data (batches image_a, image_b).

  True for bundled:digit_pair, tfds:cycle_gan[/<pair>] and folder:<path> where
  <path> holds trainA/ or trainB/ (any other folder: is one set of images); a
  malformed spec is parse_spec's GanjaxError.
  """
  spec = spec if isinstance(spec, Spec) else parse_spec(spec)
  return ((spec.kind == "folder" and folder.holds_domains(spec.name))
          or (spec.kind == "bundled" and spec.name == "digit_pair")
          or (spec.kind == "tfds" and (spec.name == "cycle_gan"
                                       or spec.name.startswith("cycle_gan/"))))


def loaded_images(config, spec: Spec, split: str, domain: str) -> np.ndarray:
  """The uint8 images of an in-memory domain at load_size, before any cropping."""
  load_size, _ = _sizes(config)
  if spec.kind == "folder":
    return folder.folder_images(spec, split, domain, load_size, config.channels)
  a_images, _, b_images, _ = bundled.digit_pair(load_size, split)
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
    return tfds.tfds_unpaired_images(config, spec, split, domain)
  return centre_crop(loaded_images(config, spec, split, domain), config.image_size)


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
      images = tfds.tfds_unpaired_images(config, spec, split, domain, limit=n)
    else:
      images = unpaired_images(config, split, domain)
      images = images[np.linspace(0, len(images) - 1, min(n, len(images))).astype(int)]
    out[domain] = to_unit_range(images)
  return out


def unpaired_batches(config, spec: Spec, *, start_step: int, process_index: int,
                      process_count: int, per_step) -> Iterator[dict[str, np.ndarray]]:
  load_size, image_size = _sizes(config)
  flip = bool(config.get("flip", False))
  first = sum(per_step(t) for t in range(start_step))
  if spec.kind == "tfds":
    ds = tfds.tfds_unpaired_dataset(spec.name, split="train", image_size=image_size,
                               load_size=load_size, flip=flip, channels=config.channels,
                               local_batch_size=config.batch_size // process_count,
                               seed=config.seed, data_dir=config.get("tfds_data_dir") or None,
                               shuffle_buffer=config.get("shuffle_buffer", 1_000),
                               process_index=process_index, process_count=process_count,
                               start_batch=first)
    return group(ds.as_numpy_iterator(), start_step, per_step)
  source = UnpairedArraySource(loaded_images(config, spec, "train", "a"),
                               loaded_images(config, spec, "train", "b"),
                               config.batch_size, config.seed, image_size, flip,
                               process_index, process_count)
  return group(source.iterate(first), start_step, per_step)
