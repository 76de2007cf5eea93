"""2D Gaussian-mixture benchmarks for mode-collapse studies (numpy only).

Two mixtures, both with equal weights and isotropic components:

  ring   8 Gaussians, means (cos(2*pi*i/8), sin(2*pi*i/8)) for i = 0..7
         (radius 1), std 0.01: the 2D-ring of VEEGAN and PacGAN.
  grid   25 Gaussians, means on {-4, -2, 0, 2, 4}^2, std 0.05: the 2D-grid of
         VEEGAN and PacGAN.

The means and standard deviations are those of the PacGAN reference code
(github.com/fjxmlzn/PacGAN, synthetic_data_experiments/2DRing_GAN&PacGAN/config.py
and 2DGrid_GAN&PacGAN/config.py).

`mode_metrics` scores a set of generated points (2,500 of them in the papers,
`EVAL_SAMPLES`) with the three measures of PacGAN's Table 1; `scatter_image`
draws the points over the true means on a fixed extent per mixture.
"""

import math

import numpy as np

from ganjax.errors import GanjaxError

NAMES = ("ring", "grid")

# Number of generated samples the papers score (VEEGAN Sec. 5.1; PacGAN's
# num_log_figure_sample).
EVAL_SAMPLES = 2500

# A sample is high quality if it lies closer than this many standard
# deviations to its nearest mode (VEEGAN; PacGAN MetricLogger dis_thre=3).
HIGH_QUALITY_STDS = 3.0

_STD = {"ring": 0.01, "grid": 0.05}
# Half-width of the square plotted by scatter_image, centred on the origin.
_EXTENT = {"ring": 1.5, "grid": 5.5}


def _check(name: str) -> None:
  if name not in NAMES:
    valid = " or ".join(f"toy:{n}" for n in NAMES)
    raise GanjaxError(f"toy mixture {name!r} is unknown; use {valid}")


def means(name: str) -> np.ndarray:
  """The component means of mixture `name`, float64 [K, 2] (K = 8 or 25)."""
  _check(name)
  if name == "ring":
    angles = 2.0 * np.pi * np.arange(8) / 8.0
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)
  coords = np.arange(-4.0, 5.0, 2.0)
  xs, ys = np.meshgrid(coords, coords, indexing="ij")
  return np.stack([xs.ravel(), ys.ravel()], axis=1)


def std(name: str) -> float:
  """The standard deviation of every component of mixture `name` (isotropic)."""
  _check(name)
  return _STD[name]


def sample(name: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
  """n draws from mixture `name`: (points float32 [n, 2], labels int32 [n]).

  Each label, the index of the component a point was drawn from, is uniform
  over the K components.
  """
  centers = means(name)
  labels = rng.integers(0, len(centers), size=n)
  noise = rng.standard_normal((n, 2)) * _STD[name]
  points = centers[labels] + noise
  return points.astype(np.float32), labels.astype(np.int32)


def mode_metrics(points: np.ndarray, name: str) -> dict:
  """Mode-collapse measures of generated `points` [n, 2] against mixture `name`.

  The measures of PacGAN (Lin et al. 2018, "PacGAN: The power of two samples in
  generative adversarial networks", Sec. 5.1, Table 1), which takes the first
  two from VEEGAN (Srivastava et al. 2017, Sec. 5.1, "Synthetic Dataset"). The
  papers score EVAL_SAMPLES = 2,500 generated points. With mu_k the K means and
  sigma the common standard deviation:

  - Each point x is registered to its nearest mode k(x) = argmin_k |x - mu_k|
    (the reference ranks modes by |x - mu_k| / sigma_k, the same order here
    since all components share sigma).
  - x is *high quality* if |x - mu_k(x)| < 3 sigma (strict, as the reference's
    `min_dis < dis_thre`, dis_thre = 3). Non-finite points are never high
    quality.
  - `mode_counts[k]`: the number of high-quality points registered to mode k.
    Points that are not high quality are registered to no mode.
  - `modes_captured`: the number of modes with mode_counts[k] >= 1, i.e. "the
    number of mixture components whose mean is nearest to at least one high
    quality sample" (VEEGAN); the reference counts the non-zero entries of
    the same histogram. There is no larger threshold (no "20 samples" rule).
  - `high_quality_fraction`: (number of high-quality points) / n, over all n
    points given.
  - `reverse_kl`: KL(p || u) = sum_k p_k log(p_k K), with p = mode_counts /
    sum(mode_counts) the histogram of the high-quality points over modes and
    u uniform over the K modes (the true mode distribution). Empty modes
    contribute 0 (0 log 0 = 0), so the value is finite, between 0 (every mode
    equally often) and log K (a single mode). It equals log K - H(p), H the
    entropy the reference logs ("entropy of coverage"). With no high-quality
    point p is undefined and reverse_kl is NaN (the reference's 0/0).

  Checked against the reference implementation, github.com/fjxmlzn/PacGAN
  synthetic_data_experiments/PacGAN/pacgan/extensions.py, class MetricLogger
  (lines 154-174 at commit 190853e), and the VEEGAN project page
  (github.com/akashgit/VEEGAN index.md, "Synthetic Dataset").

  Returns a dict with modes_captured (int), high_quality_fraction (float in
  [0, 1]), reverse_kl (float), num_modes (int, K) and mode_counts (list of K
  ints).
  """
  centers = means(name)
  sigma = _STD[name]
  points = np.asarray(points, np.float64)
  if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] == 0:
    raise ValueError(f"points must have shape [n, 2] with n >= 1, got {points.shape}")
  num_modes = len(centers)
  sq_dist = np.sum((points[:, None, :] - centers[None, :, :]) ** 2, axis=-1)  # [n, K]
  finite = np.all(np.isfinite(points), axis=1)
  sq_dist = np.where(finite[:, None], sq_dist, np.inf)
  nearest = np.argmin(sq_dist, axis=1)
  nearest_dist = np.sqrt(np.take_along_axis(sq_dist, nearest[:, None], axis=1)[:, 0])
  high_quality = nearest_dist < HIGH_QUALITY_STDS * sigma
  counts = np.bincount(nearest[high_quality], minlength=num_modes)
  total = int(counts.sum())
  if total:
    p = counts[counts > 0] / total
    reverse_kl = float(np.sum(p * np.log(p * num_modes)))
  else:
    reverse_kl = math.nan
  return {
      "modes_captured": int(np.count_nonzero(counts)),
      "high_quality_fraction": total / len(points),
      "reverse_kl": reverse_kl,
      "num_modes": num_modes,
      "mode_counts": [int(c) for c in counts],
  }


def _to_pixels(xy: np.ndarray, name: str, size: int) -> np.ndarray:
  """Plane coordinates [n, 2] -> (column, row) pixel coordinates [n, 2], float.

  The square [-e, e]^2 (e = _EXTENT[name]) maps onto [0, size]^2 with +y up:
  column = (x + e) / (2e) * size, row = (e - y) / (2e) * size.
  """
  e = _EXTENT[name]
  scale = size / (2.0 * e)
  return np.stack([(xy[:, 0] + e) * scale, (e - xy[:, 1]) * scale], axis=1)


def scatter_image(points: np.ndarray, name: str, size: int = 512) -> np.ndarray:
  """A scatter plot of `points` [n, 2] over mixture `name`: uint8 [size, size, 3].

  White canvas; each point a small dark dot; each true mean a red cross with a
  red circle of radius 3 std (the high-quality region) drawn on top. The
  extent is fixed per mixture, [-1.5, 1.5]^2 for ring and [-5.5, 5.5]^2 for
  grid, so plots from different steps are comparable; points outside it (and
  non-finite points) are dropped, not clipped onto the border.
  """
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  centers = means(name)
  e = _EXTENT[name]
  points = np.asarray(points, np.float64).reshape(-1, 2)
  inside = np.all(np.isfinite(points) & (np.abs(points) <= e), axis=1)
  pixels = np.minimum(np.floor(_to_pixels(points[inside], name, size)), size - 1)
  image = Image.new("RGB", (size, size), (255, 255, 255))
  draw = ImageDraw.Draw(image)
  dot = max(1, size // 512)  # dot radius in pixels
  for col, row in pixels.astype(int):
    draw.rectangle([col - dot, row - dot, col + dot, row + dot], fill=(30, 30, 30))
  red = (220, 0, 0)
  arm = max(4, size // 64)
  width = max(1, size // 256)
  radius = max(2.0, HIGH_QUALITY_STDS * _STD[name] * size / (2.0 * e))
  for col, row in np.floor(_to_pixels(centers, name, size)).astype(int):
    draw.line([col - arm, row, col + arm, row], fill=red, width=width)
    draw.line([col, row - arm, col, row + arm], fill=red, width=width)
    draw.ellipse([col - radius, row - radius, col + radius, row + radius], outline=red, width=1)
  return np.asarray(image, np.uint8)
