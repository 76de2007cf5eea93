"""bundled:mnist and bundled:digit_pair: the 5,000 MNIST digits shipped with ganjax, offline."""

import functools
import importlib.resources

import numpy as np

from ganjax.data.common import _check_split_and_domain, match_channels

DIGIT_PAIR_STROKE = (255, 176, 0)    # amber
DIGIT_PAIR_BACKGROUND = (16, 32, 96)  # dark blue


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
