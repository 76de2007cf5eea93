"""Datasets -> iterators of host-local numpy batches.

A dataset is named by an explicit spec string:

  bundled:mnist       MNIST digits shipped with ganjax, offline: 4,500 to train on
                      (450 per class); 500 more held out (bundled_mnist)
  tfds:<name>         a tensorflow-datasets dataset, e.g. tfds:cifar10, tfds:celeb_a
  toy:ring            8 Gaussians on the unit circle, std 0.01 (evaluation/toy.py)
  toy:grid            25 Gaussians on {-4, -2, 0, 2, 4}^2, std 0.05
  folder:<path>       your images: directly in <path> (no labels), or in one subfolder
                      per class (labels by class folder, names in sorted order); any
                      size, centre-cropped and resized to image_size, decoded once
                      into a cache (ganjax/data/folder.py)

Unpaired two-domain data, for CycleGAN (see ganjax/data/unpaired.py):

  bundled:digit_pair  two domains made from the bundled digits, offline (digit_pair)
  folder:<path>       where <path> holds trainA/ and trainB/ (and testA/, testB/)
  tfds:cycle_gan/<pair>  tensorflow-datasets' cycle_gan pairs, e.g. horse2zebra

Toy batches hold 2D points, `image` float32 [B, 2], with the mixture
component as `label`; fresh samples every step, or with config.toy_points = N
from a training set of N points drawn once per run (in epochs, as images).

Every batch is a dict of numpy arrays, `image` float32 [B, H, W, C] in [-1, 1]
and `label` int32 [B], where B is this host's share of the global batch (the
global batch divided by the number of processes). For in-memory sources batch
t is a pure function of (seed, t), the same whatever the number of hosts, so a
resumed run sees exactly the batches it would have seen. tfds: sources are a
pure function of (seed, t) for a given number of hosts (each host reads its own
slice of the split); a resumed run skips to batch t too. Unpaired batches are
{"image_a", "image_b"} instead, float32 [B, H, W, C] in [-1, 1], without labels.

TensorFlow and tensorflow-datasets are imported only for `tfds:` specs.

One module per source: bundled (bundled:), toy (toy:), tfds (tfds:, with
tfds:cycle_gan pairs), folder (reading image files for folder:) and unpaired
(the two-domain batches of CycleGAN); common holds what they share. This
package re-exports their public names and dispatches on the spec
(make_batches, check_source, num_classes, check_labels).
"""

import json
import os
from collections.abc import Callable, Iterator

import numpy as np

# The public names of every source, as `ganjax.data.<name>`.
from ganjax.data.bundled import (DIGIT_PAIR_BACKGROUND, DIGIT_PAIR_STROKE, _load_bundled_mnist,
                                 bundled_mnist, colourise, digit_pair, fit_mnist, held_out,
                                 load_bundled, thicken)
from ganjax.data.common import (BUNDLED, DOMAINS, SPLITS, TOY, ArraySource, Spec, centre_crop,
                                example_shape, group, match_channels, parse_spec, to_unit_range)
from ganjax.data.folder import (IMAGE_EXTENSIONS, cache_root, decode_image, folder_images,
                                image_folder, image_folder_classes, scan_image_folder)
# tfds: sources ask `_network_reachable` here, where tests replace it to be offline.
from ganjax.data.tfds import (_network_reachable, shuffled_epochs, tf_resize_and_crop,
                              tfds_dataset, tfds_unpaired_dataset)
from ganjax.data.toy import ToySetSource, ToySource
from ganjax.data.unpaired import (UnpairedArraySource, is_unpaired, preview_examples,
                                  unpaired_images)
from ganjax.data import tfds as _tfds, unpaired as _unpaired  # pylint: disable=g-bad-import-order
from ganjax.errors import GanjaxError

CLASSES_FILE = "classes.json"  # <workdir>/classes.json: the names of the labels (save_class_names)


def _two_domains(config, spec: Spec) -> bool:
  """Whether the run reads unpaired domains: is_unpaired, or any folder: for CycleGAN."""
  return is_unpaired(spec) or (spec.kind == "folder" and config.get("algorithm") == "cyclegan")


def samples_per_step(config) -> int:
  """The examples of one training batch: `batch_size` times `pack` (PacGAN packs that many
  examples into each of the discriminator's `batch_size` inputs; 1 without the key)."""
  return config.batch_size * config.get("pack", 1)


def make_batches(config, *, start_step: int = 0, process_index: int = 0,
                 process_count: int = 1,
                 per_step: Callable[[int], int] = lambda step: 1
                 ) -> Iterator[dict[str, np.ndarray]]:
  """Host-local training batches for steps `start_step`, `start_step + 1`, ...

  The batch of step t stacks `per_step(t)` consecutive batches on a leading
  axis (the discriminator updates of one generator iteration):
  image [per_step(t), B, H, W, C], label [per_step(t), B], with B =
  `samples_per_step(config)` / process_count; for unpaired data
  (`is_unpaired`) image_a and image_b [per_step(t), B, H, W, C], no labels.
  """
  spec = parse_spec(config.dataset)
  if config.batch_size % process_count:
    raise GanjaxError(f"batch_size={config.batch_size} does not divide by the"
                      f" {process_count} processes; use a multiple of {process_count}")
  check_labels(config, spec)
  if _two_domains(config, spec):
    return _unpaired.unpaired_batches(config, spec, start_step=start_step,
                                      process_index=process_index,
                                      process_count=process_count, per_step=per_step)
  first = sum(per_step(t) for t in range(start_step))  # batches before step start_step
  if spec.kind in ("bundled", "toy", "folder"):
    if spec.kind == "toy":
      check_toy(config, spec)
      points = config.get("toy_points", 0)
      source = (ToySetSource(spec.name, points, samples_per_step(config), config.seed,
                             process_index, process_count) if points
                else ToySource(spec.name, samples_per_step(config), config.seed, process_index,
                               process_count))
    else:
      images, labels = (image_folder(spec, config.image_size, config.channels)
                        if spec.kind == "folder"
                        else load_bundled(spec.name, config.image_size, config.channels))
      source = ArraySource(images, labels, samples_per_step(config), config.seed,
                           process_index, process_count)
    return group(source.iterate(first), start_step, per_step)
  ds = tfds_dataset(spec.name, split="train", image_size=config.image_size,
                    channels=config.channels,
                    local_batch_size=samples_per_step(config) // process_count,
                    seed=config.seed,
                    data_dir=config.tfds_data_dir or None,
                    shuffle_buffer=config.shuffle_buffer,
                    process_index=process_index, process_count=process_count,
                    start_batch=first)
  return group(ds.as_numpy_iterator(), start_step, per_step)


def check_source(config) -> None:
  """Raises the GanjaxError that reading `config.dataset` would, before training starts.

  Writes nothing. The spec, the labels a conditional model needs, the kind of
  data the algorithm trains on (unpaired domains for CycleGAN, single images
  otherwise), then the data itself: every image of a folder: dataset is read
  (and kept for make_batches; single images are decoded into their cache, the
  only thing written, outside the user's folder), a tfds: dataset must exist and be prepared or
  downloadable (a download happens here), with the right channels.
  """
  spec = parse_spec(config.dataset)
  two_domains = _two_domains(config, spec)
  if config.get("algorithm") == "cyclegan" and not two_domains:
    raise GanjaxError(f"dataset={config.dataset!r} is one set of images, but CycleGAN trains"
                      " on two unpaired domains; use bundled:digit_pair, folder:<path> (with"
                      " trainA/ and trainB/) or tfds:cycle_gan/<pair>")
  if config.get("algorithm", "cyclegan") != "cyclegan" and two_domains:
    raise GanjaxError(f"dataset={config.dataset!r} is unpaired two-domain data, for"
                      f" algorithm='cyclegan'; algorithm={config.algorithm!r} trains on one set"
                      " of images: use bundled:mnist, tfds:<name>, folder:<path> of images (no"
                      " trainA/, trainB/) or a toy: mixture")
  check_labels(config, spec)
  check_toy(config, spec)
  if two_domains and spec.kind != "tfds":
    for domain in DOMAINS:
      _unpaired.loaded_images(config, spec, "train", domain)
  elif spec.kind == "bundled":
    load_bundled(spec.name, config.image_size, config.channels)
  elif spec.kind == "folder":
    image_folder(spec, config.image_size, config.channels)
  elif spec.kind == "tfds":
    _tfds.check_tfds(config, spec, two_domains)


def check_toy(config, spec: Spec) -> None:
  """A toy: mixture needs channels=2; toy_points is for toy: mixtures only."""
  points = config.get("toy_points", 0)
  if spec.kind != "toy":
    if points:
      raise GanjaxError(f"toy_points={points} is for the toy: mixtures, not"
                        f" dataset={config.dataset!r}; set --config.toy_points=0")
    return
  if config.channels != 2:
    raise GanjaxError(f"dataset={config.dataset!r} has 2D points but channels="
                      f"{config.channels}; set --config.channels=2")
  if not isinstance(points, int) or isinstance(points, bool) or points < 0:
    raise GanjaxError(f"toy_points={points!r} must be a whole number >= 0 (0: fresh points"
                      " every step; N: a training set of N points drawn once)")


def num_classes(spec: Spec, data_dir: str | None = None) -> int | None:
  """The number of classes of a dataset's labels, or None if it has none."""
  if spec.kind == "bundled":
    return 10  # bundled:digit_pair keeps the digits' classes too (see digit_pair)
  if spec.kind == "folder":
    classes = None if is_unpaired(spec) else image_folder_classes(spec)
    return len(classes) if classes else None
  if spec.kind == "toy":
    return 8 if spec.name == "ring" else 25
  return _tfds.tfds_num_classes(spec.name, data_dir)


def check_labels(config, spec: Spec) -> None:
  """A conditional model needs labels with exactly config.num_classes classes."""
  if not config.get("num_classes"):
    return
  if _two_domains(config, spec):
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r} is"
                      " unpaired two-domain data, whose batches carry no labels; set"
                      " --config.num_classes=0")
  have = num_classes(spec, config.get("tfds_data_dir") or None)
  if have is None:
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r}"
                      " has no class labels; set --config.num_classes=0")
  if have != config.num_classes:
    raise GanjaxError(f"num_classes={config.num_classes} but dataset={config.dataset!r} has"
                      f" {have} classes; set --config.num_classes={have}")



def class_names(config) -> list[str] | None:
  """The names of the dataset's classes (label i is the i-th), or None where they have none.

  A folder: of class subfolders gives the folders' names, a tfds: dataset its
  label feature's names; other datasets, and flat folders, None.
  """
  spec = parse_spec(config.dataset)
  if spec.kind == "folder" and not _two_domains(config, spec):
    classes = image_folder_classes(spec)
    return list(classes) if classes else None
  if spec.kind == "tfds" and not is_unpaired(spec):
    return _tfds.tfds_class_names(spec.name, config.get("tfds_data_dir") or None)
  return None


def save_class_names(config, workdir: str) -> str | None:
  """Writes <workdir>/classes.json, {"dataset": ..., "classes": [names]}, where the classes
  have names (`class_names`); returns its path, or None, writing nothing, where they have not.

  For `python -m ganjax sample --labels` to name classes; read back with load_class_names.
  """
  names = class_names(config)
  if names is None:
    return None
  path = os.path.join(workdir, CLASSES_FILE)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump({"dataset": config.dataset, "classes": names}, f, indent=2)
    f.write("\n")
  os.replace(tmp, path)
  return path


def load_class_names(workdir: str) -> list[str] | None:
  """The class names a run saved in its workdir (save_class_names), or None if it saved none."""
  path = os.path.join(workdir, CLASSES_FILE)
  if not os.path.isfile(path):
    return None
  try:
    with open(path, encoding="utf-8") as f:
      return [str(name) for name in json.load(f)["classes"]]
  except (OSError, ValueError, KeyError, TypeError) as e:
    raise GanjaxError(f"{path} cannot be read ({e}); remove it, or train again to rewrite"
                      " it") from e
