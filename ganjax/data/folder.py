"""folder:<path>: image files read from the user's folders (which are only ever read)."""

import functools
import os

import numpy as np

from ganjax.data.common import Spec, _check_split_and_domain
from ganjax.errors import GanjaxError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")


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
