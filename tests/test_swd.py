"""The sliced Wasserstein distance (evaluation/swd.py) against SciPy, and in the suite.

References: the Laplacian pyramid recomputed with scipy.ndimage.convolve (mode
'mirror'), as the Progressive GAN recipe writes it; the sliced distance as the mean
of scipy.stats.wasserstein_distance over the same directions.

Tolerances: the pyramid is sums of 25 products of values up to 255 with weights
summing to 1 (pyr_up: 4), so float32 against float64 differ by about 25 eps of 255 x 4
per level (helpers.float32_tolerance); the distances compare float32 projections of
standardised 147-d descriptors with float64 ones, relative 1e-4.
"""

import os

import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
from PIL import Image

from ganjax.evaluation import suite, swd
from tests.helpers import experiment_config, float32_tolerance

KERNEL = np.outer(swd.BINOMIAL, swd.BINOMIAL)


def scipy_pyramid(images, levels):
  """NHWC float64 images -> the Laplacian pyramid, with scipy's mirrored convolution."""
  k = KERNEL[None, :, :, None]
  down = lambda x: scipy.ndimage.convolve(x, k, mode="mirror")[:, ::2, ::2]  # noqa: E731

  def up(x):
    z = np.zeros((x.shape[0], 2 * x.shape[1], 2 * x.shape[2], x.shape[3]))
    z[:, ::2, ::2] = x
    return scipy.ndimage.convolve(z, 4 * k, mode="mirror")
  pyramid = [images.astype(np.float64)]
  for _ in range(1, levels):
    pyramid.append(down(pyramid[-1]))
    pyramid[-2] = pyramid[-2] - up(pyramid[-1])
  return pyramid


def images(n, size=32, channels=3, seed=0, blur=0.0):
  rng = np.random.default_rng(seed)
  x = rng.integers(0, 256, (n, size, size, channels)).astype(np.float64)
  x = scipy.ndimage.uniform_filter(x, size=(1, 5, 5, 1))  # some structure at every scale
  if blur:
    x = scipy.ndimage.gaussian_filter(x, sigma=(0, blur, blur, 0))
  return np.clip(np.round((x - x.mean()) * 3 + 128), 0, 255).astype(np.uint8)


def test_the_pyramid_is_scipys_and_adds_back_up_to_the_image():
  x = images(3, size=32)
  ours = [np.asarray(p) for p in swd.laplacian_pyramid(x.astype(np.float32), 2)]
  ref = scipy_pyramid(x, 2)
  assert [p.shape for p in ours] == [(3, 32, 32, 3), (3, 16, 16, 3)]
  for a, b in zip(ours, ref):
    np.testing.assert_allclose(a, b, rtol=0, atol=float32_tolerance(25 * 2, 255 * 4))
  rebuilt = np.asarray(swd.pyr_up(ours[1])) + ours[0]
  np.testing.assert_allclose(rebuilt, x, rtol=0, atol=float32_tolerance(50, 255 * 4))
  # Zero-padded edges instead of mirrored ones would differ at the border.
  zero = scipy.ndimage.convolve(x.astype(np.float64), KERNEL[None, :, :, None],
                                mode="constant")[:, ::2, ::2]
  assert np.abs(zero - ref[1]).max() > 10


def test_the_sliced_distance_is_the_mean_of_scipys_1d_distances():
  rng = np.random.default_rng(1)
  a = rng.normal(size=(500, 12)).astype(np.float32)
  b = (rng.normal(size=(500, 12)) * 1.5 + 0.3).astype(np.float32)
  expected = np.mean([
      scipy.stats.wasserstein_distance(a.astype(np.float64) @ d, b.astype(np.float64) @ d)
      for r in range(swd.DIR_REPEATS) for d in swd.directions(12, r).T.astype(np.float64)])
  got = swd.sliced_wasserstein(a, b)
  assert got == pytest.approx(expected, rel=1e-4)
  assert swd.sliced_wasserstein(a, a) == 0.0
  with pytest.raises(ValueError, match="one shape"):
    swd.sliced_wasserstein(a, b[:10])


def test_swd_tells_a_second_sample_from_blurred_images():
  real, same = images(64, seed=2), images(64, seed=3)
  blurred = images(64, seed=3, blur=1.5)
  a = swd.swd(real, same)
  b = swd.swd(real, blurred)
  assert set(a) == {"swd", "swd_32", "swd_16"}
  assert a["swd"] == pytest.approx((a["swd_32"] + a["swd_16"]) / 2)
  assert swd.swd(real, real)["swd"] == 0.0
  # Blurring removes the finest level's detail: that level tells them apart most.
  assert b["swd_32"] > 2 * a["swd_32"] and b["swd"] > a["swd"]
  assert swd.swd(real, same) == a  # fixed patches and directions: the same score again
  with pytest.raises(ValueError, match="at least 16x16"):
    swd.swd(real[:, :8, :8], real[:, :8, :8])


def test_a_folder_run_has_a_cheap_metric(tmp_path, monkeypatch):
  monkeypatch.setenv("GANJAX_CACHE", str(tmp_path / "cache"))
  root = tmp_path / "pngs"
  os.makedirs(root)
  for i, image in enumerate(images(24, size=40, seed=4)):
    Image.fromarray(image).save(root / f"{i}.png")
  config = experiment_config("gan")
  config.update(dict(dataset=f"folder:{root}", channels=3, g_width=8, d_width=8,
                     latent_dim=16, batch_size=8))
  evaluator = suite.Evaluator(config, level="cheap", num_samples=100)
  assert not evaluator.empty and evaluator.main.keys == ("swd",)
  assert evaluator.record()["swd_images"] == 24  # the folder's 24 images, not 2,048
  from ganjax import algorithms  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  state = algorithms.get("gan").init(config, jax.random.PRNGKey(0),
                                     {"image": np.zeros((2, 32, 32, 3), np.float32)})
  result = evaluator(state)
  assert {"swd", "swd_32", "swd_16"} <= set(result) and result["swd"] > 0
  # 8x8 images have no pyramid level: no cheap metric, and a note that says why.
  small = config.copy_and_resolve_references()
  small.image_size = 8
  tiny = suite.Evaluator(small, level="cheap", num_samples=100)
  assert tiny.empty and any("16x16 or larger" in n for n in tiny.notes)
