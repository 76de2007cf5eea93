"""Tests for ganjax.evaluation.prdc: improved precision/recall, density and coverage.

The metrics are checked against a direct NumPy computation of the papers'
definitions over the whole distance matrix (written here, independently of
the blocked JAX code), against the `prdc` package where it is installed, and
on the 2D mixtures, where a collapsed generator must show high precision and
low recall and coverage.
"""

import numpy as np
import pytest

from ganjax.evaluation import prdc, toy


def _direct(real, fake, k_pr=3, k_dc=5):
  """The definitions, from the full distance matrices in float64 (closed balls)."""
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

  def distances(a, b):
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

  def kth_radius(x, k):
    # Sorted distances to the whole set; position 0 is the point itself.
    return np.sort(distances(x, x), axis=1)[:, k]

  real_fake = distances(real, fake)  # [N, M]
  r_pr, r_dc, f_pr = kth_radius(real, k_pr), kth_radius(real, k_dc), kth_radius(fake, k_pr)
  precision = np.mean([any(real_fake[i, j] <= r_pr[i] for i in range(len(real)))
                       for j in range(len(fake))])
  recall = np.mean([any(real_fake[i, j] <= f_pr[j] for j in range(len(fake)))
                    for i in range(len(real))])
  density = sum(real_fake[i, j] <= r_dc[i] for i in range(len(real))
                for j in range(len(fake))) / (k_dc * len(fake))
  coverage = np.mean([real_fake[i].min() <= r_dc[i] for i in range(len(real))])
  return {"precision": precision, "recall": recall, "density": density, "coverage": coverage}


def _features(rng, n, d, scale=1.0, shift=0.0):
  mix = rng.standard_normal((d, d)) / np.sqrt(d)
  return ((rng.standard_normal((n, d)) @ mix) * scale + shift).astype(np.float32)


@pytest.mark.parametrize("n, m, d, block", [(90, 70, 8, None), (64, 101, 16, 7), (40, 40, 2, 1)])
def test_matches_the_definitions(n, m, d, block):
  rng = np.random.default_rng(n + m)
  real, fake = _features(rng, n, d), _features(rng, m, d, scale=1.3, shift=0.4)
  got = prdc.precision_recall_density_coverage(real, fake, block_size=block)
  want = _direct(real, fake)
  for key in want:
    assert got[key] == pytest.approx(want[key], abs=1e-12), key
  # Some of every metric is neither 0 nor 1 here: the comparison is not vacuous.
  assert 0 < got["precision"] < 1 and 0 < got["coverage"] < 1


def test_blocks_do_not_change_the_result_and_fit_50k():
  rng = np.random.default_rng(1)
  real, fake = _features(rng, 150, 6), _features(rng, 130, 6, shift=0.2)
  whole = prdc.precision_recall_density_coverage(real, fake, block_size=1000)
  for block in (13, 64):
    assert prdc.precision_recall_density_coverage(real, fake, block_size=block) == whole
  # The default block of a 50,000 x 50,000 comparison holds BLOCK_ELEMENTS distances.
  rows = prdc.block_rows(50_000, 50_000)
  assert rows * 50_000 <= prdc.BLOCK_ELEMENTS and rows >= 100


def test_ties_count_inside_closed_balls():
  """Duplicated points (a collapsed generator's exact copies) sit on the ball's edge."""
  real = np.repeat(np.arange(8.0)[:, None], 6, axis=0)  # 8 points, each 6 times: radii 0
  fake = np.array([[0.0], [0.5], [3.0], [7.0], [7.0], [7.0]])
  got = prdc.precision_recall_density_coverage(real, fake)
  want = _direct(real, fake)
  assert got == pytest.approx(want)
  assert got["precision"] == pytest.approx(5 / 6)  # all but 0.5 coincide with a real point
  assert got["coverage"] == pytest.approx(3 / 8)    # real points 0, 3 and 7


def test_non_finite_generated_points_are_in_no_ball():
  rng = np.random.default_rng(2)
  real, fake = _features(rng, 60, 4), _features(rng, 50, 4)
  broken = fake.copy()
  broken[[3, 17]] = np.nan
  got = prdc.precision_recall_density_coverage(real, broken)
  finite = _direct(real, np.delete(fake, [3, 17], axis=0))
  assert got["precision"] == pytest.approx(finite["precision"] * 48 / 50)
  assert got["density"] == pytest.approx(finite["density"] * 48 / 50)
  assert got["recall"] == pytest.approx(finite["recall"])
  assert got["coverage"] == pytest.approx(finite["coverage"])
  nothing = prdc.precision_recall_density_coverage(real, np.full((10, 4), np.inf))
  assert nothing["precision"] == nothing["coverage"] == nothing["density"] == 0
  assert np.isnan(nothing["recall"])


def test_bad_input():
  with pytest.raises(ValueError, match=r"\[N, d\] and \[M, d\]"):
    prdc.precision_recall_density_coverage(np.zeros((10, 3)), np.zeros((10, 4)))
  with pytest.raises(ValueError, match="more than 5 real points"):
    prdc.precision_recall_density_coverage(np.zeros((5, 3)), np.zeros((10, 3)))
  with pytest.raises(ValueError, match="finite real features"):
    prdc.precision_recall_density_coverage(np.full((10, 3), np.nan), np.zeros((10, 3)))


def test_compare_uses_equal_sizes():
  rng = np.random.default_rng(3)
  real, fake = _features(rng, 80, 5), _features(rng, 50, 5, shift=0.3)
  keep = np.sort(np.random.default_rng(prdc.SUBSET_SEED).choice(80, 50, replace=False))
  assert prdc.compare(real, fake) == prdc.precision_recall_density_coverage(real[keep], fake)
  assert prdc.compare(real[:30], fake) == prdc.precision_recall_density_coverage(real[:30],
                                                                                fake[:30])
  assert all(np.isnan(v) for v in prdc.compare(real[:5], fake).values())


def test_matches_the_prdc_package():
  package = pytest.importorskip("prdc")
  rng = np.random.default_rng(4)
  real, fake = _features(rng, 300, 32), _features(rng, 250, 32, scale=1.2, shift=0.1)
  got = prdc.precision_recall_density_coverage(real, fake)
  theirs_pr = package.compute_prdc(real, fake, nearest_k=3)
  theirs_dc = package.compute_prdc(real, fake, nearest_k=5)
  assert got["precision"] == pytest.approx(theirs_pr["precision"], abs=1e-12)
  assert got["recall"] == pytest.approx(theirs_pr["recall"], abs=1e-12)
  assert got["density"] == pytest.approx(theirs_dc["density"], abs=1e-12)
  assert got["coverage"] == pytest.approx(theirs_dc["coverage"], abs=1e-12)


@pytest.mark.parametrize("name", toy.NAMES)
def test_mixtures_separate_quality_from_coverage(name):
  """On the mixtures: a generator on one mode keeps precision but loses recall and coverage;
  a blurred generator on every mode keeps recall but loses precision."""
  n = 1000
  real, _ = toy.sample(name, np.random.default_rng(0), n)
  good, _ = toy.sample(name, np.random.default_rng(1), n)
  collapsed = (toy.means(name)[0] + toy.std(name) * np.random.default_rng(2).standard_normal(
      (n, 2))).astype(np.float32)
  blurred = good + 4 * toy.std(name) * np.random.default_rng(3).standard_normal((n, 2))
  k = len(toy.means(name))
  scores = {kind: prdc.compare(real, points) for kind, points in
            (("good", good), ("collapsed", collapsed), ("blurred", blurred))}
  assert toy.mode_metrics(collapsed, name)["modes_captured"] == 1

  assert min(scores["good"].values()) > 0.85
  # Collapsed: every sample realistic, one mode's worth of the data covered.
  assert scores["collapsed"]["precision"] > 0.9 and scores["collapsed"]["density"] > 0.7
  assert scores["collapsed"]["recall"] < 1.5 / k and scores["collapsed"]["coverage"] < 1.5 / k
  # Blurred: most samples off the data, but the data is all reached.
  assert scores["blurred"]["precision"] < 0.5 and scores["blurred"]["density"] < 0.5
  assert scores["blurred"]["recall"] > 0.9
