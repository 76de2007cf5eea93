"""The synthetic FID feature sets of tests/make_fid_golden.py and tests/test_inception.py.

The golden file stores only this recipe's arguments and pytorch-fid's FID of
the two sets; the test rebuilds the sets from them.
"""

import numpy as np


def fid_features(seed, n, dims, factors):
  """Two [n, dims] float64 feature sets with different means and covariances.

  Each set is per-dimension scaled noise plus a `factors`-dimensional random
  mixture (covariance diag(scale^2) + B^T B, full rank), shifted by its own
  random mean. tests/test_inception.py rebuilds them from the same recipe.
  """
  rng = np.random.default_rng(seed)
  sets = []
  for _ in range(2):
    mean = rng.normal(0.0, 0.5, dims)
    scale = rng.uniform(0.5, 1.5, dims)
    mixing = rng.standard_normal((factors, dims)) / np.sqrt(factors)
    x = rng.standard_normal((n, dims)) * scale + rng.standard_normal((n, factors)) @ mixing
    sets.append(x + mean)
  return sets
