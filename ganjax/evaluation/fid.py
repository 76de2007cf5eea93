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
import sys
import tempfile
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganjax.errors import GanjaxError
from ganjax.evaluation import features, inception, torch_weights

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
  """A context with 64-bit JAX types on (jax.enable_x64, or the older experimental one)."""
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
                          " python -m ganjax fid --save_stats IMAGES OUT.npz)")
      mu, sigma = np.asarray(f["mu"], np.float64), np.asarray(f["sigma"], np.float64)
  except GanjaxError:
    raise
  except Exception as e:  # a damaged or non-npz file
    raise GanjaxError(f"cannot read FID statistics from {path} ({e}); write them again") from e
  if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
    raise GanjaxError(f"{path}: mu has shape {mu.shape} and sigma {sigma.shape}; FID"
                      " statistics need mu [d] and sigma [d, d]")
  return mu, sigma


# --- Inception Score ------------------------------------------------------------------


IS_SPLITS = 10  # improved-gan's splits of the Inception Score


def split_sizes(n: int, splits: int = IS_SPLITS) -> list[int]:
  """The sizes of the consecutive splits `inception_score` cuts n examples into."""
  return [(i + 1) * n // splits - i * n // splits for i in range(splits)]


def inception_score(logits, splits: int = IS_SPLITS) -> tuple[float, float]:
  """(mean, std) over `splits` of exp(mean_x KL(p(y|x) || p(y))), from classifier logits [N, C].

  As the reference (improved-gan's `get_inception_score`): p(y|x) is the
  softmax of the logits, the splits are consecutive chunks (split i holds
  examples i N // splits to (i + 1) N // splits), p(y) is the mean of p(y|x)
  within a split, and the std is NumPy's (population) std of the split
  scores. The FID Inception gives 1008 logits; `load_inception` returns them
  without the fully connected layer's bias, as improved-gan computes them
  (torch-fidelity's "logits_unbiased"). Unlike torch-fidelity, nothing is
  shuffled before splitting. Computed in float64 on the host (N x C is small).
  """
  logits = np.asarray(logits, np.float64)
  n = len(logits)
  if logits.ndim != 2 or n < splits or splits < 1:
    raise ValueError(f"inception_score needs logits [N, C] with N >= splits={splits}, got"
                     f" shape {logits.shape}")
  shifted = logits - logits.max(axis=1, keepdims=True)
  log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
  p = np.exp(log_p)
  scores = []
  for i in range(splits):
    part = slice(i * n // splits, (i + 1) * n // splits)
    p_part, log_p_part = p[part], log_p[part]
    marginal = p_part.mean(axis=0)
    # A class whose probability underflows to 0 in the whole split adds 0 (p log p -> 0).
    log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
    kl = (p_part * (log_p_part - log_marginal)).sum(axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


# --- KID ------------------------------------------------------------------------------


def _mmd2_unbiased(xp, x, y):
  """Unbiased MMD^2 of two equal-size samples under k(a, b) = (a.b / d + 1)^3."""
  m, d = x.shape
  k_xx = (x @ x.T / d + 1) ** 3
  k_yy = (y @ y.T / d + 1) ** 3
  k_xy = (x @ y.T / d + 1) ** 3
  within = (k_xx.sum() - xp.trace(k_xx)) + (k_yy.sum() - xp.trace(k_yy))
  return within / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)


@jax.jit
def _kid_device(a, b, index_a, index_b):
  a, b = a.astype(jnp.float64), b.astype(jnp.float64)
  with jax.default_matmul_precision("highest"):
    return lax.map(lambda ij: _mmd2_unbiased(jnp, a[ij[0]], b[ij[1]]), (index_a, index_b))


def kernel_inception_distance(features_a, features_b, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """(mean, std) of the unbiased polynomial-kernel MMD^2 over random subsets (KID).

  Each of `num_subsets` draws `subset_size` examples from each set without
  replacement (NumPy's RandomState(seed).choice, A then B, as torch-fidelity
  draws them; its default seed is 2020) and computes
  sum_{i!=j} k(a_i, a_j) / (m (m-1)) + sum_{i!=j} k(b_i, b_j) / (m (m-1))
  - 2 sum_{i,j} k(a_i, b_j) / m^2 with k(x, y) = (x.y / d + 1)^3. The mean
  is unbiased, so it scatters around 0 (and can be negative) for two
  samples of one distribution. A subset size above the smaller set's size
  is lowered to it, as Binkowski et al.'s `polynomial_mmd_averages` does
  (torch-fidelity refuses instead); with the whole of both sets every subset
  is the same, and the std is 0. Default 100 subsets of 1000: torch-fidelity's.
  """
  a, b = np.asarray(features_a, np.float32), np.asarray(features_b, np.float32)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"KID needs features [N, d] and [M, d], got {a.shape} and {b.shape}")
  m = min(subset_size, len(a), len(b))
  if m < 2:
    raise ValueError(f"KID needs subsets of at least 2 examples, got {m}")
  rng = np.random.RandomState(seed)
  index_a, index_b = np.empty((2, num_subsets, m), np.int32)
  for i in range(num_subsets):
    index_a[i] = rng.choice(len(a), m, replace=False)
    index_b[i] = rng.choice(len(b), m, replace=False)
  if _device_has_float64():
    with _x64():
      mmds = np.asarray(_kid_device(jnp.asarray(a), jnp.asarray(b), index_a, index_b))
  else:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    mmds = np.array([_mmd2_unbiased(np, a64[i], b64[j]) for i, j in zip(index_a, index_b)])
  return float(np.mean(mmds)), float(np.std(mmds))


# --- the weights ----------------------------------------------------------------------


def cache_dir() -> str:
  """Where downloaded weights are kept: $GANJAX_CACHE, else ~/.cache/ganjax."""
  return os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join("~", ".cache", "ganjax"))


def _where_to_put_it() -> str:
  return (f"download {WEIGHTS_URL} elsewhere and pass --inception_weights FILE (the config key"
          f" inception_weights), set {WEIGHTS_ENV}=FILE, or put it in {cache_dir()}/")


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


_SHA256_SEEN: dict = {}


def weights_sha256(path: str) -> str:
  """The SHA-256 of a weights file (hex), read once per (path, size, modification time)."""
  path = os.path.abspath(os.path.expanduser(os.fspath(path)))
  stat = os.stat(path)
  key = (path, stat.st_size, stat.st_mtime_ns)
  if key not in _SHA256_SEEN:
    _SHA256_SEEN[key] = _sha256(path)
  return _SHA256_SEEN[key]


def download(url: str, target: str, sha256: str) -> str:
  """Downloads `url` to `target` through a temporary file; a wrong SHA-256 is an error.

  The file appears at `target` (by an atomic rename) only once complete and
  verified; a failed or mismatched download leaves nothing behind.
  """
  directory = os.path.dirname(os.path.abspath(target))
  os.makedirs(directory, exist_ok=True)
  fd, partial = tempfile.mkstemp(dir=directory, prefix=os.path.basename(target) + ".",
                                 suffix=".partial")
  try:
    digest = hashlib.sha256()
    with os.fdopen(fd, "wb") as out, \
        contextlib.closing(urllib.request.urlopen(url, timeout=60)) as src:
      for block in iter(lambda: src.read(1 << 20), b""):
        digest.update(block)
        out.write(block)
    if digest.hexdigest() != sha256:
      raise GanjaxError(f"the download of {url} has SHA-256 {digest.hexdigest()}, not"
                        f" {sha256}: it is damaged or not the FID weights, and was deleted;"
                        f" try again or {_where_to_put_it()}")
    os.replace(partial, target)
  finally:
    if os.path.exists(partial):
      os.remove(partial)
  return target


def resolve_weights(path: str | None = None) -> str:
  """The path of the FID Inception weights (pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`).

  Looked for in this order: `path` (the --inception_weights flag or the config key
  `inception_weights`, passed in by the caller); the file named by
  $GANJAX_INCEPTION_WEIGHTS; `WEIGHTS_FILE` in the cache directory
  ($GANJAX_CACHE, else ~/.cache/ganjax); else it is downloaded from
  `WEIGHTS_URL` into the cache, and its SHA-256 checked. A path or variable
  that names a missing file is an error (no fallback hides a typo); so is
  being offline with no file, and the message says where to put it.
  """
  if path:
    path = os.path.expanduser(os.fspath(path))
    if not os.path.isfile(path):
      raise GanjaxError(f"the FID Inception weights file {path} does not exist; give the path"
                        f" of {WEIGHTS_FILE} (from {WEIGHTS_URL})")
    return path
  from_env = os.environ.get(WEIGHTS_ENV)
  if from_env:
    from_env = os.path.expanduser(from_env)
    if not os.path.isfile(from_env):
      raise GanjaxError(f"{WEIGHTS_ENV}={from_env} names no file; point it at {WEIGHTS_FILE}"
                        f" (from {WEIGHTS_URL}) or unset it")
    return from_env
  cached = os.path.join(cache_dir(), WEIGHTS_FILE)
  if os.path.isfile(cached):
    return cached
  print(f"ganjax: downloading the FID Inception weights from {WEIGHTS_URL} to {cached}",
        file=sys.stderr)
  try:
    return download(WEIGHTS_URL, cached, WEIGHTS_SHA256)
  except (urllib.error.URLError, OSError, ValueError) as e:  # offline, refused, unwritable
    why = " ".join(str(getattr(e, "reason", e)).split()) or type(e).__name__
    raise GanjaxError(f"the FID Inception weights {WEIGHTS_FILE} are not on this machine and"
                      f" could not be downloaded ({why}); {_where_to_put_it()}") from e


# --- the network and the metrics of images --------------------------------------------


def inception_features(variables, images) -> dict:
  """{"pool": [B, 2048], "logits": [B, 1008]} of images in [-1, 1], any size, 1 or 3 channels.

  The logits are the fully connected layer's without its bias, the scores
  the Inception Score was defined with (see `inception_score`).
  """
  pool = inception.FIDInception().apply(variables, images)["pool"]
  kernel = variables["params"]["fc"]["kernel"]
  return {"pool": pool, "logits": jnp.dot(pool, kernel, precision=lax.Precision.HIGHEST)}


def load_inception(weights: str | None = None, batch_size: int = 200, mesh=None):
  """The FID Inception as a `features.Extractor`: images -> {"pool", "logits"} (NumPy).

  `weights` as `resolve_weights` takes it. Images may be uint8 [0, 255] or
  float [-1, 1], NHWC with 1 or 3 channels, any size (each call's images are
  resized to 299x299 as pytorch-fid resizes them; one array holds one size).
  """
  variables = inception.params_from_state_dict(
      torch_weights.load_state_dict(resolve_weights(weights)))
  return features.Extractor(inception_features, batch_size, mesh, params=variables)


def image_metrics(extractor, fake_images, real=None, *, real_stats=None, real_pool=None,
                  kid_subset_size: int = 1000, prdc: bool = False) -> dict:
  """FID, Inception Score, KID and (with `prdc`) precision, recall, density, coverage.

  extractor: `load_inception(...)` (or any callable images -> {"pool",
  "logits"}). fake_images and real: NHWC arrays, uint8 or float in [-1, 1],
  1 or 3 channels (or iterables of such chunks). Returns inception_score and
  inception_score_std (IS_SPLITS = 10 splits; fewer, one per image, for under
  10 images), fid when `real` images, `real_pool` or `real_stats` (mu, sigma)
  are given (the images win over the others; `real_stats` with `real_pool`
  saves computing them again), and kid and kid_std when `real` images or
  `real_pool` are given (100 subsets of min(kid_subset_size, both set sizes)).
  `real_pool`: the real images' pool features, measured before, in place of
  `real`. With `prdc` and real features, precision and recall (k = 3),
  density and coverage (k = 5) of the pool features, on sets of equal size
  (`prdc.compare`).
  """
  from ganjax.evaluation import prdc as prdc_lib  # pylint: disable=g-import-not-at-top
  fake = extractor(fake_images)
  result = {}
  if real is not None:
    real_pool = extractor(real)["pool"]
    real_stats = None
  if real_pool is not None and real_stats is None:
    real_stats = statistics(real_pool)
  if real_stats is not None:
    result["fid"] = frechet_distance(*statistics(fake["pool"]), *real_stats)
  score, score_std = inception_score(fake["logits"], splits=min(IS_SPLITS, len(fake["logits"])))
  result["inception_score"], result["inception_score_std"] = score, score_std
  if real_pool is not None:
    result["kid"], result["kid_std"] = kernel_inception_distance(
        fake["pool"], real_pool, subset_size=kid_subset_size)
    if prdc:
      result.update(prdc_lib.compare(real_pool, fake["pool"]))
  return result
