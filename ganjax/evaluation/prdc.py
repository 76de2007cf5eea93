"""Improved precision and recall, density and coverage of generated samples' features.

All four compare a real set X (N points) and a generated set Y (M points) in a
feature space (Inception pool features, the MNIST classifier's features, or the
2D points of the mixtures), through balls around the points: B_k(x, S) is the
closed ball around x that reaches x's k-th nearest neighbour in its own set S
(the point itself is not its own neighbour; a duplicate of it is).

- precision and recall (Kynkaenniemi et al. 2019, "Improved precision and
  recall metric for assessing generative models", k = 3): the real manifold
  is the union of the balls B_3(x, X), the generated manifold that of the
  B_3(y, Y). precision is the fraction of generated points inside the real
  manifold (sample quality), recall the fraction of real points inside the
  generated manifold (how much of the data the generator covers).
- density and coverage (Naeem et al. 2020, "Reliable fidelity and diversity
  metrics for generative models", k = 5, only the real balls B_5(x, X)):
  density = (1 / (k M)) sum_j sum_i 1[y_j in B_5(x_i, X)], how many real balls
  hold a generated point on average, over k (near 1 when the distributions
  match, above 1 where samples crowd into dense regions of the data, unbounded);
  coverage = the fraction of real points whose ball holds at least one
  generated point. Unlike recall, neither is inflated by generated outliers.

Balls are closed (a point at exactly the radius is inside), as in the papers.
The `prdc` package (clovaai/prdc) uses open balls; the two agree except where
distances tie exactly, as with duplicated features.

A generator collapsed onto a few modes keeps high precision and density (its
samples are realistic) while recall and coverage fall to the fraction of the
data it still covers.

The N x M (and N x N, M x M) distance matrices are never formed: rows are
taken a block at a time (`block_size` rows, by default as many as keep a block
within `BLOCK_ELEMENTS` distances), so memory grows with the number of points,
not with its square. Distances are computed on the default device as
|a|^2 + |b|^2 - 2 a.b from features centred on the real mean, in float64
where the backend has float64 (CPU, GPU), else float32.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from ganjax.evaluation import fid

K_PRECISION_RECALL = 3  # Kynkaenniemi et al.'s k
K_DENSITY_COVERAGE = 5  # Naeem et al.'s default k
BLOCK_ELEMENTS = 1 << 25  # distances held at once per block (256 MiB in float64)
SUBSET_SEED = 0


def equal_sizes(real, fake, seed: int = SUBSET_SEED):
  """(real, fake) cut to the same number of points, n = min(N, M).

  The papers compare sets of equal size (coverage in particular assumes it).
  The generated points are i.i.d., so the first n are kept; the real set may be
  ordered (by class, say), so n of its points are drawn without replacement by
  NumPy's default_rng(seed), in their original order.
  """
  n = min(len(real), len(fake))
  if len(real) > n:
    keep = np.sort(np.random.default_rng(seed).choice(len(real), n, replace=False))
    real = real[keep]
  return real, fake[:n]


def compare(real, fake) -> dict:
  """The four metrics with the papers' k on sets of equal size (`equal_sizes`), as the
  evaluation reports them; NaN where the smaller set has K_DENSITY_COVERAGE points or
  fewer."""
  real, fake = equal_sizes(np.asarray(real), np.asarray(fake))
  if len(real) <= max(K_PRECISION_RECALL, K_DENSITY_COVERAGE):
    return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
  return precision_recall_density_coverage(real, fake)


def _sq_dist(a, b, b_sq):
  with jax.default_matmul_precision("highest"):
    d = jnp.sum(a * a, axis=1)[:, None] + b_sq[None, :] - 2.0 * (a @ b.T)
  return jnp.maximum(d, 0.0)


@functools.partial(jax.jit, static_argnames="k")
def _kth_sq_radius(block, points, points_sq, k):
  """Squared distance of each row of `block` to its k-th nearest neighbour in `points`.

  Each row is itself one of `points`, at distance 0: the (k + 1)-th smallest
  distance skips it.
  """
  smallest = -jax.lax.top_k(-_sq_dist(block, points, points_sq), k + 1)[0]
  return smallest[:, k]


@jax.jit
def _cross_block(fake, fake_r2_pr, valid, real, real_sq, real_r2_pr, real_r2_dc):
  """One block of generated rows against every real point.

  Returns (precision count, density count, per real point: covered, recalled).
  """
  d = _sq_dist(fake, real, real_sq)  # [block, N]
  valid = valid[:, None]
  in_real_pr = (d <= real_r2_pr[None, :]) & valid
  in_real_dc = (d <= real_r2_dc[None, :]) & valid
  in_fake_pr = (d <= fake_r2_pr[:, None]) & valid
  return (jnp.sum(jnp.any(in_real_pr, axis=1)), jnp.sum(in_real_dc),
          jnp.any(in_real_dc, axis=0), jnp.any(in_fake_pr, axis=0))


def _blocks(x, size):
  """Row blocks of `x`, each `size` rows (the last padded with copies of row 0), and masks."""
  for start in range(0, len(x), size):
    block = x[start:start + size]
    valid = jnp.arange(size) < block.shape[0]
    if block.shape[0] < size:
      block = jnp.concatenate([block, jnp.broadcast_to(x[:1], (size - block.shape[0],
                                                               x.shape[1]))])
    yield block, valid


def _kth_radii(x, k, size):
  """Squared k-th nearest-neighbour radius of every point of x within x, in blocks."""
  x_sq = jnp.sum(x * x, axis=1)
  parts = [_kth_sq_radius(block, x, x_sq, k)[:int(jnp.sum(valid))] for block, valid in
           _blocks(x, size)]
  return jnp.concatenate(parts)


def block_rows(n: int, m: int) -> int:
  """Rows per block for sets of n and m points: as many as keep BLOCK_ELEMENTS distances."""
  return max(1, min(max(n, m), BLOCK_ELEMENTS // max(n, m, 1)))


def _prdc(real, fake, m, k_pr, k_dc, block_size):
  """The four metrics of `fake`, the finite ones of `m` generated points."""
  n, finite = len(real), len(fake)
  size = block_size or block_rows(n, finite)
  real_r2_pr = _kth_radii(real, k_pr, size)
  real_r2_dc = _kth_radii(real, k_dc, size)
  # Fewer finite generated points than k_pr + 1 make no generated manifold: no recall.
  has_manifold = finite > k_pr
  fake_r2_pr = (_kth_radii(fake, k_pr, size) if has_manifold
                else jnp.full(finite, -1.0, real.dtype))
  real_sq = jnp.sum(real * real, axis=1)
  precise = dense = 0
  covered = recalled = jnp.zeros(n, bool)
  for (block, valid), start in zip(_blocks(fake, size), range(0, finite, size)):
    radii = jnp.pad(fake_r2_pr[start:start + size], (0, size - min(size, finite - start)))
    p, d, c, r = _cross_block(block, radii, valid, real, real_sq, real_r2_pr, real_r2_dc)
    precise, dense = precise + int(p), dense + int(d)
    covered, recalled = covered | c, recalled | r
  return {"precision": precise / m,
          "recall": int(jnp.sum(recalled)) / n if has_manifold else float("nan"),
          "density": dense / (k_dc * m), "coverage": int(jnp.sum(covered)) / n}


def precision_recall_density_coverage(real, fake, *, k_pr: int = K_PRECISION_RECALL,
                                      k_dc: int = K_DENSITY_COVERAGE,
                                      block_size: int | None = None) -> dict:
  """{"precision", "recall", "density", "coverage"} of generated `fake` [M, d] against `real` [N, d].

  Precision and recall with k_pr-th neighbour balls, density and coverage with
  k_dc-th neighbour balls of the real points (see the module docstring). Every
  point is used; `equal_sizes` first for the papers' protocol. The real set
  needs more than max(k_pr, k_dc) points, all finite. A generated point with a
  non-finite coordinate (a diverged generator) lies in no ball and has none:
  it counts against precision and density; with k_pr or fewer finite
  generated points recall is NaN. `block_size`: rows per block (default: as
  many as keep `BLOCK_ELEMENTS` distances); the result does not depend on it.
  """
  real, fake = np.asarray(real), np.asarray(fake)
  if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
    raise ValueError(f"precision/recall need features [N, d] and [M, d], got {real.shape} and"
                     f" {fake.shape}")
  k = max(k_pr, k_dc)
  if len(real) <= k or len(fake) < 1 or min(k_pr, k_dc) < 1:
    raise ValueError(f"precision/recall with k = {k_pr} and density/coverage with k = {k_dc}"
                     f" need more than {k} real points and one generated point, got"
                     f" {len(real)} real and {len(fake)} generated")
  if not np.all(np.isfinite(real)):
    raise ValueError("precision/recall need finite real features; some are NaN or infinite")
  m = len(fake)
  fake = fake[np.all(np.isfinite(fake), axis=1)]
  centre = real.astype(np.float64).mean(axis=0)
  real, fake = real - centre, fake - centre
  if fid._device_has_float64():  # pylint: disable=protected-access
    with fid._x64():  # pylint: disable=protected-access
      return _prdc(jnp.asarray(real, jnp.float64), jnp.asarray(fake, jnp.float64), m, k_pr,
                   k_dc, block_size)
  return _prdc(jnp.asarray(real, jnp.float32), jnp.asarray(fake, jnp.float32), m, k_pr, k_dc,
               block_size)
