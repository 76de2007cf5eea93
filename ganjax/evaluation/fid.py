"""FID, Inception Score and KID, and the FID Inception weights they are measured with.

- FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule
  converge to a local Nash equilibrium"): the Frechet distance between
  Gaussians fitted to the 2048-d pool features of two image sets,
  ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)). Statistics and
  distance are float64, as in pytorch-fid (mseitzer/pytorch-fid,
  `fid_score.py`), whose .npz statistics files (`mu`, `sigma`) load and save
  here unchanged.
- Inception Score (Salimans et al. 2016, "Improved techniques for training
  GANs"; openai/improved-gan `inception_score/model.py`): exp E_x KL(p(y|x) ||
  p(y)) over 10 consecutive splits, mean and standard deviation.
- KID (Binkowski et al. 2018, "Demystifying MMD GANs"; mbinkowski/MMD-GAN
  `compute_scores.py`, torch-fidelity `metric_kid.py`): the unbiased MMD^2
  estimate with the cubic polynomial kernel (x.y / d + 1)^3, averaged over
  random subsets.

The linear algebra runs on the accelerator in float64, with 64-bit types
switched on only around these computations (`jax.enable_x64` as a context),
never globally. TPUs have no float64 linear algebra; there the same formulas
run on the host in NumPy float64 (slower for large KID runs, equally exact).

The weights are pytorch-fid's port of the TensorFlow FID Inception,
`pt_inception-2015-12-05-6726825d.pth`, read without PyTorch
(`torch_weights.load_state_dict`); `resolve_weights` says where it is looked
for and when it is downloaded.
"""

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganjax.errors import GanjaxError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
# pytorch-fid's FID_WEIGHTS_URL: a GitHub release asset of mseitzer/pytorch-fid.
WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
               + WEIGHTS_FILE)
# SHA-256 of that file (95,628,359 bytes), as torch-fidelity pins it for the same URL;
# torch hub's convention holds: the name's hex suffix is a prefix of this digest.
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_ENV = "GANJAX_INCEPTION_WEIGHTS"
CACHE_ENV = "GANJAX_CACHE"
POOL_DIM = 2048


# --- float64 on the device ------------------------------------------------------------


def _device_has_float64() -> bool:
  """Whether the default backend does float64 linear algebra (CPU and GPUs; not TPUs)."""
  return jax.default_backend() != "tpu"


def _x64():
  """A context with 64-bit JAX types on; jax.enable_x64 (JAX >= 0.8) or the older experimental one."""
  enable = getattr(jax, "enable_x64", None)
  if enable is not None:
    return enable(True)
  from jax.experimental import enable_x64  # pylint: disable=g-import-not-at-top
  return enable_x64()


# --- FID ------------------------------------------------------------------------------


def _moments(xp, x):
  mu = x.mean(axis=0)
  centred = x - mu
  return mu, (centred.T @ centred) / (x.shape[0] - 1)


@jax.jit
def _moments_device(x):
  return _moments(jnp, x.astype(jnp.float64))


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) of features [N, d]: float64 mean and covariance (np.cov's N - 1 divisor)."""
  x = np.asarray(features)
  if x.ndim != 2 or x.shape[0] < 2:
    raise ValueError(f"statistics need features [N, d] with N >= 2, got shape {x.shape}")
  if _device_has_float64():
    with _x64():
      mu, sigma = _moments_device(jnp.asarray(x))
      return np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
  return _moments(np, x.astype(np.float64))


def _trace_sqrt_product(xp, sigma1, sigma2):
  """tr((S1 S2)^(1/2)) for symmetric PSD S1, S2, through symmetric matrices only.

  S1 S2 is similar to A S2 A with A = S1^(1/2) (A^-1 (A A S2) A, when A is
  invertible, and by continuity otherwise), and A S2 A is symmetric PSD, so
  the trace of the square root is the sum of the square roots of its
  eigenvalues. Eigenvalues that rounding pushes below zero are taken as zero.
  This avoids the general (Schur) matrix square root of the non-symmetric
  product and its spurious imaginary parts.
  """
  w, v = xp.linalg.eigh(sigma1)
  root = (v * xp.sqrt(xp.clip(w, 0, None))) @ v.T
  inner = root @ sigma2 @ root
  inner = (inner + inner.T) / 2
  return xp.sqrt(xp.clip(xp.linalg.eigvalsh(inner), 0, None)).sum()


def _frechet(xp, mu1, sigma1, mu2, sigma2):
  sigma1 = (sigma1 + sigma1.T) / 2
  sigma2 = (sigma2 + sigma2.T) / 2
  diff = mu1 - mu2
  return (diff @ diff + xp.trace(sigma1) + xp.trace(sigma2)
          - 2 * _trace_sqrt_product(xp, sigma1, sigma2))


@jax.jit
def _frechet_device(mu1, sigma1, mu2, sigma2):
  with jax.default_matmul_precision("highest"):
    return _frechet(jnp, mu1, sigma1, mu2, sigma2)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """The Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
  mu1, mu2 = (np.asarray(m, np.float64) for m in (mu1, mu2))
  sigma1, sigma2 = (np.asarray(s, np.float64) for s in (sigma1, sigma2))
  d = mu1.shape[-1] if mu1.ndim else 0
  if not (mu1.shape == mu2.shape == (d,) and sigma1.shape == sigma2.shape == (d, d)):
    raise ValueError(f"statistics do not match: mu {mu1.shape} and {mu2.shape}, sigma"
                     f" {sigma1.shape} and {sigma2.shape} (want [d] and [d, d] for one d)")
  if _device_has_float64():
    with _x64():
      return float(_frechet_device(*(jnp.asarray(a) for a in (mu1, sigma1, mu2, sigma2))))
  return float(_frechet(np, mu1, sigma1, mu2, sigma2))


def save_stats(path: str, mu, sigma) -> None:
  """Writes FID statistics to `path` as pytorch-fid's --save-stats does (.npz, mu and sigma)."""
  with open(path, "wb") as f:  # a file object: np.savez adds no ".npz" to the name
    np.savez_compressed(f, mu=np.asarray(mu, np.float64), sigma=np.asarray(sigma, np.float64))


def load_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) from an .npz of FID statistics (ganjax's or pytorch-fid's)."""
  if not os.path.isfile(path):
    raise GanjaxError(f"FID statistics file {path} does not exist")
  try:
    with np.load(path) as f:
      if "mu" not in f.files or "sigma" not in f.files:
        raise GanjaxError(f"{path} holds {sorted(f.files)}, not FID statistics; an .npz of"
                          " statistics has the arrays 'mu' and 'sigma' (write one with"
                          " python -m ganjax.fid --save-stats IMAGES OUT.npz)")
      mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
  except GanjaxError:
    raise
  except Exception as e:  # a damaged or non-npz file
    raise GanjaxError(f"cannot read FID statistics from {path} ({e}); write them again") from e
  if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
    raise GanjaxError(f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; FID"
                      " statistics need mu [d] and sigma [d, d]")
  return mu, sigma
