"""Sliced Wasserstein distance (SWD) between the Laplacian-pyramid patches of two image sets.

The multi-scale statistical similarity of Karras et al. 2018 ("Progressive growing
of GANs", Section 5 and Appendix D), which needs no trained network, so that any
image run can be scored offline:

1. each image becomes a Laplacian pyramid, from its own size down to 16 x 16
   (a 5 x 5 binomial blur with mirrored edges, then every other pixel; each level
   but the smallest is the image minus its blurred and upsampled half);
2. each level gives PATCHES_PER_IMAGE random 7 x 7 patches per image (the same
   positions for both sets), and each set's patches are normalised per channel
   by that set's mean and standard deviation;
3. the sliced Wasserstein distance of the two patch sets is the mean, over
   DIR_REPEATS x DIRS_PER_REPEAT random unit directions, of the 1-d Wasserstein-1
   distance of their projections (sorted, compared point by point);
4. it is reported x 1e3 per level (swd_<resolution>) and averaged over the levels
   (swd); lower is closer.

Published SWD figures use 16,384 images per set (8,192 in some tables); the
value depends on the number of images, which `Evaluator.record` writes beside it
(swd_images). The directions and patch positions come from fixed seeds, so two
scores of the same images are equal.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

PATCH = 7
PATCHES_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128
MIN_RESOLUTION = 16
BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # the 5x5 blur is its outer product
PATCH_SEED = 0x5D
DIRECTION_SEED = 0xD1


def resolutions(size: int) -> list[int]:
  """The pyramid's levels for images of `size`: size, size/2, ... down to 16."""
  levels = []
  while size >= MIN_RESOLUTION:
    levels.append(size)
    size //= 2
  return levels


def _blur(x):
  """The 5 x 5 binomial blur of NHWC images, edges mirrored (d c b | a b c d | c b a)."""
  x = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  k = jnp.asarray(BINOMIAL, x.dtype)
  h, w = x.shape[1] - 4, x.shape[2] - 4
  x = sum(k[i] * x[:, i:i + h] for i in range(5))
  return sum(k[j] * x[:, :, j:j + w] for j in range(5))


def pyr_down(x):
  return _blur(x)[:, ::2, ::2]


def pyr_up(x):
  n, h, w, c = x.shape
  up = jnp.zeros((n, 2 * h, 2 * w, c), x.dtype).at[:, ::2, ::2].set(x)
  return 4.0 * _blur(up)


def laplacian_pyramid(images, levels: int) -> list:
  """NHWC float images -> `levels` arrays, full size first; the last is the blurred image."""
  pyramid = [images]
  for _ in range(1, levels):
    pyramid.append(pyr_down(pyramid[-1]))
    pyramid[-2] = pyramid[-2] - pyr_up(pyramid[-1])
  return pyramid


def patch_positions(n_images: int, size: int, level: int):
  """(image, top, left) of every patch of one level: PATCHES_PER_IMAGE per image, drawn
  from a fixed seed so that both sets, and every evaluation, use the same ones."""
  rng = np.random.default_rng([PATCH_SEED, level, size])
  count = n_images * PATCHES_PER_IMAGE
  image = np.repeat(np.arange(n_images), PATCHES_PER_IMAGE)
  top, left = (rng.integers(0, size - PATCH + 1, count) for _ in range(2))
  return image, top, left


@jax.jit
def descriptors(level, image, top, left):
  """The normalised patches of one pyramid level: [patches, 7 * 7 * channels].

  Each channel is centred and scaled by its mean and standard deviation over all
  the set's patches and pixels."""
  offsets = jnp.arange(PATCH)
  rows = (top[:, None] + offsets)[:, :, None]
  cols = (left[:, None] + offsets)[:, None, :]
  patches = level[image[:, None, None], rows, cols]  # [P, 7, 7, C]
  patches = patches - jnp.mean(patches, axis=(0, 1, 2))
  patches = patches / jnp.std(patches, axis=(0, 1, 2))
  return patches.reshape(patches.shape[0], -1)


def directions(dim: int, repeat: int) -> np.ndarray:
  """DIRS_PER_REPEAT random unit vectors of `dim` components, as columns: [dim, dirs]."""
  d = np.random.default_rng([DIRECTION_SEED, repeat, dim]).standard_normal((dim, DIRS_PER_REPEAT))
  return (d / np.linalg.norm(d, axis=0, keepdims=True)).astype(np.float32)


@jax.jit
def _projected_distance(a, b, dirs):
  pa, pb = jnp.sort(a @ dirs, axis=0), jnp.sort(b @ dirs, axis=0)
  return jnp.mean(jnp.abs(pa - pb))


def sliced_wasserstein(a, b) -> float:
  """The sliced Wasserstein-1 distance of two equal-sized point sets [n, d]: the 1-d
  distance of their projections, averaged over DIR_REPEATS x DIRS_PER_REPEAT directions."""
  if a.shape != b.shape:
    raise ValueError(f"sliced_wasserstein compares sets of one shape, not {a.shape} and"
                     f" {b.shape}")
  return float(np.mean([_projected_distance(a, b, directions(a.shape[1], r))
                        for r in range(DIR_REPEATS)]))


@functools.partial(jax.jit, static_argnums=1)
def _pyramid_of(images_uint8, levels: int):
  return laplacian_pyramid(images_uint8.astype(jnp.float32), levels)


def swd(real_uint8: np.ndarray, fake_uint8: np.ndarray) -> dict[str, float]:
  """SWD x 1e3 between two sets of uint8 images [n, S, S, C] of one shape, per level
  (swd_<resolution>) and their mean (swd). S must be at least 16."""
  if real_uint8.shape != fake_uint8.shape:
    raise ValueError(f"swd compares sets of one shape, not {real_uint8.shape} and"
                     f" {fake_uint8.shape}")
  n, size = real_uint8.shape[0], real_uint8.shape[1]
  levels = resolutions(size)
  if not levels:
    raise ValueError(f"swd needs images of at least {MIN_RESOLUTION}x{MIN_RESOLUTION}, not"
                     f" {size}x{size}")
  pyramids = [_pyramid_of(jnp.asarray(x), len(levels)) for x in (real_uint8, fake_uint8)]
  result = {}
  for i, resolution in enumerate(levels):
    where = tuple(jnp.asarray(p) for p in patch_positions(n, resolution, i))
    a, b = (descriptors(p[i], *where) for p in pyramids)
    result[f"swd_{resolution}"] = 1e3 * sliced_wasserstein(a, b)
  result["swd"] = float(np.mean([result[f"swd_{r}"] for r in levels]))
  return result
