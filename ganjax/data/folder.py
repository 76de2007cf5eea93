"""folder:<path>: image files read from the user's folders, which are only ever read.

Two layouts, told apart by what <path> holds:

  <path>/trainA/, <path>/trainB/ (testA/, testB/)   unpaired domains, for CycleGAN
                                                     (`folder_images`, ganjax/data/unpaired.py)
  <path>/*.png ...                                   one set of images, without labels
  <path>/<class>/*.png ...                           one set of images, labelled by class
                                                     folder (`image_folder`)

The second and third are what the single-image GANs (gan, wgan, wgan_gp, sngan,
cgan) train on. Their images are decoded once, centre-cropped to a square and
resized to image_size, into a cache outside the user's folder (`cache_root`):
a .npy file read back memory-mapped, so that a folder larger than memory trains
from disk through the page cache at the speed of the disk, and one that fits
at the speed of memory, without a threshold to choose between the two.
"""

import dataclasses
import functools
import hashlib
import json
import os
import re
import shutil
import tempfile

import numpy as np

from ganjax.data.common import Spec, _check_split_and_domain
from ganjax.errors import GanjaxError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
# Image formats that are skipped, named in the error when a folder holds nothing else.
OTHER_IMAGE_EXTENSIONS = (".gif", ".tif", ".tiff", ".heic", ".heif", ".avif", ".jp2", ".ppm",
                          ".pgm", ".pbm", ".ico", ".svg", ".dng", ".raw", ".cr2", ".nef")
CACHE_ENV = "GANJAX_CACHE"  # the cache directory, as for the Inception weights
CACHE_FORMAT = 1            # bump when the decoding changes, so that old caches are not read
DECODE_CHUNK = 256          # images decoded (in threads) between writes to the cache


def holds_domains(path: str) -> bool:
  """Whether folder:<path> is unpaired two-domain data: <path> holds trainA/ or trainB/."""
  root = os.path.abspath(os.path.expanduser(path))
  return any(os.path.isdir(os.path.join(root, f"train{d}")) for d in "AB")


# The domain folders of unpaired data: <path>/trainA, <path>/trainB, ...


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


def _check_depth(where: str, path: str, mode: str) -> None:
  if mode in ("I", "F") or mode.startswith("I;"):
    raise GanjaxError(f"{where}: {path} has 16-bit or float pixels (mode {mode}), which"
                      " ganjax does not rescale; save it as an 8-bit image")


def _unreadable(where: str, path: str, error: Exception) -> GanjaxError:
  why = " ".join(str(error).split()) or type(error).__name__
  return GanjaxError(f"{where}: cannot read the image {path} ({why}); replace or remove"
                     " that file")


def decode_image(where: str, path: str, channels: int) -> np.ndarray:
  """One image file -> uint8 [H, W, channels] at its own size (reads, never writes).

  `where` starts each error message (the dataset or flag that named the file).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      im.load()
      _check_depth(where, path, im.mode)
      rgb = np.asarray(im.convert("RGB"))
  except GanjaxError:
    raise
  except Exception as e:  # any failure to decode is a bad file of the user's
    raise _unreadable(where, path, e) from e
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


# One set of images: <path>/*.png or <path>/<class>/*.png -------------------------------


@dataclasses.dataclass(frozen=True)
class ImageFolder:
  """What a folder: dataset of single images holds, as listed (nothing decoded yet).

  classes: the class folders' names, sorted (label i is classes[i]); None for a
  flat folder, whose images all get label 0. files: (path, label, bytes,
  mtime_ns) of every image, by class then by name.
  """
  root: str
  classes: tuple[str, ...] | None
  files: tuple[tuple[str, int, int, int], ...]


def _where(spec: Spec) -> str:
  return f"dataset='folder:{spec.name}'"


def _entries(spec: Spec, directory: str) -> list:
  """The entries of a directory that are not hidden, sorted by name."""
  try:
    with os.scandir(directory) as listing:
      entries = [e for e in listing if not e.name.startswith(".")]
  except OSError as e:
    raise GanjaxError(f"{_where(spec)}: cannot list {directory} ({e.strerror}); make it"
                      " readable (chmod a+rx) or copy the images somewhere readable") from e
  return sorted(entries, key=lambda e: e.name)


def _is_image(entry) -> bool:
  return entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file()


def _no_images(spec: Spec, directory: str, entries: list, fix: str) -> GanjaxError:
  """The error for a folder without image files, naming a file of a format ganjax skips."""
  other = [e.name for e in entries
           if e.name.lower().endswith(OTHER_IMAGE_EXTENSIONS) and e.is_file()]
  if other:
    fix = (f"{other[0]} is in a format ganjax does not read: convert the images to PNG or"
           " JPEG")
  return GanjaxError(f"{_where(spec)}: {directory} holds no image files"
                     f" ({', '.join(IMAGE_EXTENSIONS)}); {fix}")


def _stamped(spec: Spec, entry, label: int) -> tuple[str, int, int, int]:
  try:
    stat = entry.stat()
  except OSError as e:
    raise GanjaxError(f"{_where(spec)}: cannot read {entry.path} ({e.strerror}); make it"
                      " readable or remove it") from e
  return (entry.path, label, stat.st_size, stat.st_mtime_ns)


def _root(spec: Spec) -> str:
  root = os.path.abspath(os.path.expanduser(spec.name))
  if not os.path.isdir(root):
    what = "is not a directory" if os.path.exists(root) else "does not exist"
    raise GanjaxError(f"{_where(spec)}: {root} {what}; point folder:<path> at a directory of"
                      " images, or of class subfolders of images (for CycleGAN: a directory"
                      " holding trainA/ and trainB/)")
  return root


def scan_image_folder(spec: Spec) -> ImageFolder:
  """Lists a folder: dataset of single images, or raises the GanjaxError naming what is wrong.

  Image files (.png, .jpg, .jpeg, .bmp, .webp, any case; hidden files skipped)
  directly inside <path> make a flat dataset; subfolders of <path> are classes,
  each holding its images directly. A folder with both, an empty class or no
  images at all is an error naming the path and the fix. Only lists and stats.
  """
  root = _root(spec)
  entries = _entries(spec, root)
  folders = [e for e in entries if e.is_dir()]
  images = [e for e in entries if _is_image(e)]
  if not folders:
    if not images:
      raise _no_images(spec, root, entries, "put your images there, or in one subfolder per"
                       " class")
    return ImageFolder(root, None, tuple(_stamped(spec, e, 0) for e in images))
  if images:
    raise GanjaxError(f"{_where(spec)}: {root} holds both image files ({images[0].name}, ...)"
                      f" and subfolders ({folders[0].name}/, ...); subfolders are classes: move"
                      " every image into its class folder, or move the subfolders out")
  files = []
  for label, folder in enumerate(folders):
    inside = _entries(spec, folder.path)
    class_images = [e for e in inside if _is_image(e)]
    if not class_images:
      raise _no_images(spec, folder.path, inside, f"put the images of class {folder.name!r}"
                       " there, or move that folder out of the dataset")
    files += [_stamped(spec, e, label) for e in class_images]
  return ImageFolder(root, tuple(f.name for f in folders), tuple(files))


def cache_root() -> str:
  """Where decoded folders are kept: $GANJAX_CACHE/folders, else ~/.cache/ganjax/folders."""
  base = os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "ganjax")
  return os.path.join(os.path.abspath(os.path.expanduser(base)), "folders")


def _cache_dir(spec: Spec, folder: ImageFolder, image_size: int, channels: int) -> tuple[str, str]:
  """(the cache directory of these images at this size, the prefix its older versions share).

  The name is the folder's name, a hash of (path, image_size, channels) and a
  hash of every file's path, label, size and modification time: any change to
  the folder's images gives another directory.
  """
  real = os.path.realpath(folder.root)
  setting = json.dumps([CACHE_FORMAT, real, image_size, channels])
  listing = json.dumps([folder.classes, [(os.path.relpath(p, folder.root), label, size, mtime)
                                         for p, label, size, mtime in folder.files]])
  name = re.sub(r"[^A-Za-z0-9_.-]+", "-", os.path.basename(real)).strip("-.") or "folder"
  prefix = f"{name}-{hashlib.sha256(setting.encode()).hexdigest()[:10]}-"
  directory = os.path.join(cache_root(), prefix + hashlib.sha256(listing.encode()).hexdigest()[:16])
  if os.path.commonpath([real, os.path.realpath(cache_root())]) == real:
    raise GanjaxError(f"{_where(spec)}: the cache of decoded images, {cache_root()}, is inside"
                      f" the dataset folder, which ganjax never writes to; set {CACHE_ENV} to a"
                      " directory outside it")
  return directory, prefix


def _square_image(where: str, path: str, size: int, channels: int) -> tuple[np.ndarray, bool]:
  """One image file -> (uint8 [size, size, channels], whether it is in colour).

  EXIF orientation applied, the central square (the full shorter side) resized
  to size x size, bicubic (antialiased when shrinking); channels=1 takes the
  luminance of colour images. Reads, never writes.
  """
  from PIL import Image, ImageOps  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      im.load()
      _check_depth(where, path, im.mode)
      rgb = ImageOps.exif_transpose(im).convert("RGB")
      width, height = rgb.size
      side = min(width, height)
      left, top = (width - side) // 2, (height - side) // 2
      square = rgb.resize((size, size), Image.BICUBIC, box=(left, top, left + side, top + side))
  except GanjaxError:
    raise
  except Exception as e:  # any failure to decode is a bad file of the user's
    raise _unreadable(where, path, e) from e
  pixels = np.asarray(square)
  colour = not (np.array_equal(pixels[..., 0], pixels[..., 1])
                and np.array_equal(pixels[..., 0], pixels[..., 2]))
  if channels == 1:
    pixels = np.asarray(square.convert("L"))[..., None]
  return pixels, colour


def _decode_into_cache(spec: Spec, folder: ImageFolder, image_size: int, channels: int,
                       directory: str, prefix: str) -> None:
  """Decodes every image into `directory` (written whole, then renamed into place)."""
  from concurrent import futures  # pylint: disable=g-import-not-at-top
  from ganjax import logs  # pylint: disable=g-import-not-at-top
  where, n = _where(spec), len(folder.files)
  parent = os.path.dirname(directory)
  need = n * image_size * image_size * channels + (1 << 20)
  try:
    os.makedirs(parent, exist_ok=True)
    free = shutil.disk_usage(parent).free
  except OSError as e:
    raise GanjaxError(f"{where}: cannot make the cache of decoded images in {parent}"
                      f" ({e.strerror}); set {CACHE_ENV} to a writable directory") from e
  if free < need:
    raise GanjaxError(f"{where}: the {n} decoded images need {need / 2**30:.1f} GiB in"
                      f" {parent}, which has {free / 2**30:.1f} GiB free; free space there or"
                      f" set {CACHE_ENV} to a directory with room")
  logs.info(f"decoding the {n} images of folder:{spec.name} at {image_size}x{image_size}x"
            f"{channels}, once, into {directory}")
  tmp = tempfile.mkdtemp(prefix=os.path.basename(directory) + ".tmp", dir=parent)
  try:
    images = np.lib.format.open_memmap(os.path.join(tmp, "images.npy"), mode="w+",
                                       dtype=np.uint8,
                                       shape=(n, image_size, image_size, channels))
    colour = 0
    with futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
      for start in range(0, n, DECODE_CHUNK):
        chunk = folder.files[start:start + DECODE_CHUNK]
        for i, (pixels, is_colour) in enumerate(pool.map(
            lambda f: _square_image(where, f[0], image_size, channels), chunk)):
          images[start + i] = pixels
          colour += is_colour
    images.flush()
    del images
    np.save(os.path.join(tmp, "labels.npy"), np.array([f[1] for f in folder.files], np.int32))
    with open(os.path.join(tmp, "info.json"), "w", encoding="utf-8") as f:
      json.dump({"root": folder.root, "classes": folder.classes, "count": n,
                 "image_size": image_size, "channels": channels, "colour": colour}, f)
    try:
      os.rename(tmp, directory)
    except OSError:
      if not os.path.isfile(os.path.join(directory, "info.json")):
        raise  # not a concurrent writer that finished first
  except OSError as e:
    raise GanjaxError(f"{where}: cannot write the decoded images to {parent} ({e.strerror});"
                      f" free space there or set {CACHE_ENV} to a writable directory") from e
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  for old in os.listdir(parent):  # the same folder at the same size, before its files changed
    if old.startswith(prefix) and ".tmp" not in old and old != os.path.basename(directory):
      shutil.rmtree(os.path.join(parent, old), ignore_errors=True)


@functools.lru_cache(maxsize=8)
def _open_cache(directory: str) -> tuple[np.ndarray, np.ndarray, dict] | None:
  """(images memory-mapped read-only, labels, info) of a complete cache directory, else None."""
  try:
    with open(os.path.join(directory, "info.json"), encoding="utf-8") as f:
      info = json.load(f)
    images = np.load(os.path.join(directory, "images.npy"), mmap_mode="r")
    labels = np.load(os.path.join(directory, "labels.npy"))
  except (OSError, ValueError):
    return None
  labels.setflags(write=False)
  return images, labels, info


def image_folder(spec: Spec, image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images [N, S, S, C], int32 labels [N]) of a folder: dataset of single images.

  Listed by `scan_image_folder`; each image is decoded with PIL, turned
  upright by its EXIF orientation, centre-cropped to a square and resized to
  image_size x image_size (bicubic); channels=3 gives RGB (grey images
  repeated, alpha dropped), channels=1 greyscale (the luminance of colour
  images). Decoded once into the cache (`cache_root`), keyed by the folder's
  path, every file's name, size and modification time, image_size and
  channels; later runs read the cache, memory-mapped. The user's files are
  only read. The labels are class indices (0 for a flat folder).
  """
  where = _where(spec)
  if channels not in (1, 3):
    raise GanjaxError(f"channels={channels}: {where} loads images as RGB (channels=3) or"
                      " greyscale (channels=1); set --config.channels=3")
  if image_size < 1:
    raise GanjaxError(f"image_size={image_size} must be at least 1")
  folder = scan_image_folder(spec)
  directory, prefix = _cache_dir(spec, folder, image_size, channels)
  loaded = _open_cache(directory)
  if loaded is None or loaded[0].shape != (len(folder.files), image_size, image_size, channels):
    _open_cache.cache_clear()
    shutil.rmtree(directory, ignore_errors=True)  # an incomplete cache of ganjax's own
    _decode_into_cache(spec, folder, image_size, channels, directory, prefix)
    loaded = _open_cache(directory)
    if loaded is None:
      raise GanjaxError(f"{where}: cannot read back the decoded images in {directory}; remove"
                        f" it, or set {CACHE_ENV} to another directory")
  images, labels, info = loaded
  if channels == 1 and info.get("colour"):
    _note_colour(spec, info["colour"], len(images))
  return images, labels


@functools.cache
def _note_colour(spec: Spec, colour: int, n: int) -> None:
  from ganjax import logs  # pylint: disable=g-import-not-at-top
  logs.info(f"folder:{spec.name}: {colour} of the {n} images are in colour and are trained on"
            " in greyscale (channels=1); set --config.channels=3 to train in colour")


def image_folder_classes(spec: Spec) -> tuple[str, ...] | None:
  """The class names of a folder: dataset of single images (label i is the i-th), or None."""
  return scan_image_folder(spec).classes
