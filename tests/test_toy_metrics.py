"""Tests for ganjax.evaluation.toy: mixtures, PacGAN/VEEGAN mode metrics, scatter plot."""

import math

import numpy as np
import pytest

from ganjax.errors import GanjaxError
from ganjax.evaluation import toy


def test_ring_means():
  m = toy.means("ring")
  assert m.shape == (8, 2) and m.dtype == np.float64
  np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-12)
  np.testing.assert_allclose(m[0], [1.0, 0.0], atol=1e-12)
  np.testing.assert_allclose(m[2], [0.0, 1.0], atol=1e-12)
  np.testing.assert_allclose(m[1], [math.sqrt(0.5), math.sqrt(0.5)], atol=1e-12)
  assert toy.std("ring") == 0.01


def test_grid_means():
  m = toy.means("grid")
  assert m.shape == (25, 2) and m.dtype == np.float64
  expected = {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
  assert {(float(x), float(y)) for x, y in m} == expected
  assert toy.std("grid") == 0.05


@pytest.mark.parametrize("name", toy.NAMES)
def test_sample_matches_definition(name):
  points, labels = toy.sample(name, np.random.default_rng(0), 20_000)
  assert points.shape == (20_000, 2) and points.dtype == np.float32
  assert labels.shape == (20_000,) and labels.dtype == np.int32
  m, s = toy.means(name), toy.std(name)
  counts = np.bincount(labels, minlength=len(m))
  assert len(counts) == len(m)
  expected = 20_000 / len(m)
  assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))  # uniform choice
  for k in range(len(m)):
    xs = points[labels == k].astype(np.float64)
    np.testing.assert_allclose(xs.mean(axis=0), m[k], atol=6 * s / math.sqrt(len(xs)))
    np.testing.assert_allclose(xs.std(axis=0), s, rtol=0.15)


def test_sample_is_reproducible():
  a, la = toy.sample("grid", np.random.default_rng(3), 100)
  b, lb = toy.sample("grid", np.random.default_rng(3), 100)
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(la, lb)


@pytest.mark.parametrize("name", toy.NAMES)
def test_metrics_on_true_mixture(name):
  points, _ = toy.sample(name, np.random.default_rng(1), toy.EVAL_SAMPLES)
  r = toy.mode_metrics(points, name)
  k = len(toy.means(name))
  assert r["num_modes"] == k
  assert r["modes_captured"] == k
  # In 2D, |x - mu| / sigma is chi-distributed with 2 degrees of freedom, so a
  # true sample is within 3 std with probability 1 - exp(-9/2) = 0.9889 (not
  # the 1D 0.9973); the binomial std over 2,500 samples is 0.0021.
  assert abs(r["high_quality_fraction"] - (1 - math.exp(-4.5))) < 0.01
  assert 0.0 <= r["reverse_kl"] < 0.02
  assert sum(r["mode_counts"]) == round(r["high_quality_fraction"] * toy.EVAL_SAMPLES)
  assert all(isinstance(c, int) for c in r["mode_counts"])
  assert isinstance(r["modes_captured"], int) and isinstance(r["num_modes"], int)


@pytest.mark.parametrize("name", toy.NAMES)
def test_metrics_all_on_one_mode(name):
  m, s = toy.means(name), toy.std(name)
  rng = np.random.default_rng(2)
  points = m[3] + s * np.clip(rng.standard_normal((500, 2)), -2, 2)
  r = toy.mode_metrics(points, name)
  k = len(m)
  assert r["modes_captured"] == 1
  assert r["mode_counts"][3] == 500 and sum(r["mode_counts"]) == 500
  assert r["high_quality_fraction"] == 1.0
  # p = (0, .., 1, .., 0), u = 1/K: KL(p || u) = 1 * log(1 / (1/K)) = log K.
  assert r["reverse_kl"] == pytest.approx(math.log(k))


def test_metrics_reverse_kl_of_a_known_histogram():
  m, s = toy.means("ring"), toy.std("ring")
  # 30 points on mode 0, 10 on mode 1, plus 60 low-quality points that must not count.
  points = np.concatenate([np.repeat(m[:1], 30, 0), np.repeat(m[1:2], 10, 0),
                           np.repeat(m[2:3] + [5 * s, 0.0], 60, 0)])
  r = toy.mode_metrics(points, "ring")
  p = np.array([0.75, 0.25])
  assert r["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * 8))))
  assert r["modes_captured"] == 2
  assert r["high_quality_fraction"] == pytest.approx(0.4)


@pytest.mark.parametrize("name", toy.NAMES)
def test_metrics_far_from_every_mode(name):
  points = np.full((100, 2), 0.5 if name == "grid" else 0.0) + [0.0, 0.001]
  points = np.concatenate([points, np.full((3, 2), np.nan)])
  r = toy.mode_metrics(points, name)
  assert r["high_quality_fraction"] == 0.0
  assert r["modes_captured"] == 0
  assert r["mode_counts"] == [0] * len(toy.means(name))
  assert math.isnan(r["reverse_kl"])


@pytest.mark.parametrize("name", toy.NAMES)
def test_capture_threshold_boundary(name):
  # The reference counts a mode as captured with >= 1 high-quality sample; a
  # mode whose nearest samples all lie just beyond 3 std is not captured.
  m, s = toy.means(name), toy.std(name)
  inside = m[:5] + [2.9 * s, 0.0]          # one high-quality sample on modes 0..4
  outside = m[5:7] + [0.0, 3.1 * s]        # modes 5, 6: nearest, but not high quality
  r = toy.mode_metrics(np.concatenate([inside, outside]), name)
  assert r["modes_captured"] == 5
  assert r["mode_counts"][:7] == [1, 1, 1, 1, 1, 0, 0]
  assert r["high_quality_fraction"] == pytest.approx(5 / 7)
  p = np.full(5, 0.2)
  assert r["reverse_kl"] == pytest.approx(float(np.sum(p * np.log(p * len(m)))))


def test_metrics_rejects_bad_shape():
  with pytest.raises(ValueError):
    toy.mode_metrics(np.zeros((4, 3)), "ring")


def _pixel(x, y, extent, size):
  return (int(math.floor((extent - y) / (2 * extent) * size)),
          int(math.floor((x + extent) / (2 * extent) * size)))


def _is_red(rgb):
  r, g, b = (int(v) for v in rgb)
  return r > 150 and g < 80 and b < 80


def _is_dark(rgb):
  return all(int(v) < 100 for v in rgb)


@pytest.mark.parametrize("name,extent", [("ring", 1.5), ("grid", 5.5)])
def test_scatter_image(name, extent):
  size = 256
  blank = toy.scatter_image(np.zeros((0, 2)), name, size=size)
  assert blank.shape == (size, size, 3) and blank.dtype == np.uint8
  for x, y in toy.means(name):
    assert _is_red(blank[_pixel(x, y, extent, size)])
  assert not np.all(blank < 100, axis=-1).any()

  point = (-0.6 * extent, -0.7 * extent)   # far from every mean
  image = toy.scatter_image(np.array([point]), name, size=size)
  assert _is_dark(image[_pixel(*point, extent, size)])
  empty = (0.6 * extent, -0.7 * extent)
  assert tuple(image[_pixel(*empty, extent, size)]) == (255, 255, 255)
  assert np.all(image < 100, axis=-1).sum() <= 9   # one small dot, nothing else


@pytest.mark.parametrize("name,extent", [("ring", 1.5), ("grid", 5.5)])
def test_scatter_image_drops_points_outside_extent(name, extent):
  size = 128
  outside = np.array([[extent * 1.01, 0.0], [0.0, -extent * 2], [np.inf, 0.0], [np.nan, 1.0]])
  image = toy.scatter_image(outside, name, size=size)
  np.testing.assert_array_equal(image, toy.scatter_image(np.zeros((0, 2)), name, size=size))


def test_unknown_name():
  for call in (lambda: toy.means("rng"), lambda: toy.std("rng"),
               lambda: toy.sample("rng", np.random.default_rng(0), 4),
               lambda: toy.mode_metrics(np.zeros((4, 2)), "rng"),
               lambda: toy.scatter_image(np.zeros((4, 2)), "rng")):
    with pytest.raises(GanjaxError) as info:
      call()
    assert str(info.value) == "toy mixture 'rng' is unknown; use toy:ring or toy:grid"
