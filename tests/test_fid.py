"""Tests for ganjax.evaluation.fid (FID, IS, KID, the weights lookup) and python -m ganjax fid.

The metrics are checked against direct NumPy/SciPy computations of their
definitions. The command line runs with a small stand-in feature network
(the real one is 95 MB and slow on a CPU); one test runs the real network's
code on random weights.
"""

import hashlib
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from ganjax.cli import fid_cmd as fid_cli
from ganjax.errors import GanjaxError
from ganjax.evaluation import features, fid, inception

scipy_linalg = pytest.importorskip("scipy.linalg")


def _features(rng, n, d, scale=1.0, shift=0.0):
  """Correlated features: Gaussian noise through a random linear map."""
  mix = rng.standard_normal((d, d)) / np.sqrt(d)
  return ((rng.standard_normal((n, d)) @ mix) * scale + shift).astype(np.float32)


def _fid_scipy(mu1, s1, mu2, s2):
  """FID with SciPy's general matrix square root of S1 S2, as pytorch-fid computes it."""
  covmean = scipy_linalg.sqrtm(s1 @ s2)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
               - 2 * np.trace(covmean.real))


# --- FID ------------------------------------------------------------------------------


def test_statistics_are_float64_mean_and_cov():
  x = _features(np.random.default_rng(0), 50, 8)
  mu, sigma = fid.statistics(x)
  assert mu.dtype == sigma.dtype == np.float64
  np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10,
                             atol=1e-14)
  with pytest.raises(ValueError, match="N >= 2"):
    fid.statistics(x[:1])


@pytest.mark.parametrize("d", [64, 256])
def test_frechet_distance_matches_scipy(d):
  rng = np.random.default_rng(d)
  a, b = _features(rng, 3 * d, d), _features(rng, 3 * d, d, scale=1.3, shift=0.2)
  stats_a, stats_b = fid.statistics(a), fid.statistics(b)
  got = fid.frechet_distance(*stats_a, *stats_b)
  np.testing.assert_allclose(got, _fid_scipy(*stats_a, *stats_b), rtol=1e-6)
  # Identical sets are at distance 0, up to rounding of terms of size tr(S) ~ d.
  assert abs(fid.frechet_distance(*stats_a, *stats_a)) < 1e-9 * d
  # The distance is symmetric.
  np.testing.assert_allclose(fid.frechet_distance(*stats_b, *stats_a), got, rtol=1e-9)


def test_frechet_distance_rank_deficient_covariances():
  """Fewer examples than dimensions (singular covariances), where sqrtm struggles."""
  rng = np.random.default_rng(1)
  stats_a, stats_b = fid.statistics(_features(rng, 40, 64)), fid.statistics(
      _features(rng, 40, 64, shift=0.5))
  got = fid.frechet_distance(*stats_a, *stats_b)
  assert np.isfinite(got) and got > 0
  np.testing.assert_allclose(got, _fid_scipy(*stats_a, *stats_b), rtol=1e-4)


def test_frechet_distance_closed_form_for_diagonal_covariances():
  rng = np.random.default_rng(2)
  var1, var2 = rng.uniform(0.1, 3.0, 32), rng.uniform(0.1, 3.0, 32)
  mu1, mu2 = rng.standard_normal(32), rng.standard_normal(32)
  want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
  got = fid.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
  np.testing.assert_allclose(got, want, rtol=1e-10)


def test_frechet_distance_host_fallback_and_no_global_x64(monkeypatch):
  rng = np.random.default_rng(3)
  stats_a, stats_b = fid.statistics(_features(rng, 100, 16)), fid.statistics(
      _features(rng, 100, 16, shift=1.0))
  on_device = fid.frechet_distance(*stats_a, *stats_b)
  assert not jax.config.x64_enabled and jnp.zeros(1).dtype == jnp.float32
  monkeypatch.setattr(fid, "_device_has_float64", lambda: False)  # as on a TPU
  np.testing.assert_allclose(fid.frechet_distance(*stats_a, *stats_b), on_device, rtol=1e-10)
  x = _features(rng, 30, 4)
  np.testing.assert_allclose(fid.statistics(x)[1], np.cov(x.astype(np.float64), rowvar=False),
                             rtol=1e-10)


def test_frechet_distance_rejects_mismatched_statistics():
  with pytest.raises(ValueError, match="do not match"):
    fid.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_stats_files_round_trip_in_pytorch_fids_format(tmp_path):
  rng = np.random.default_rng(4)
  mu, sigma = fid.statistics(_features(rng, 20, 5))
  path = str(tmp_path / "stats.npz")
  fid.save_stats(path, mu, sigma)
  with np.load(path) as f:  # what pytorch-fid reads: f["mu"][:], f["sigma"][:]
    np.testing.assert_array_equal(f["mu"], mu)
    np.testing.assert_array_equal(f["sigma"], sigma)
  # A file written as pytorch-fid's --save-stats writes it loads back.
  np.savez_compressed(tmp_path / "theirs.npz", mu=mu.astype(np.float32), sigma=sigma)
  got_mu, got_sigma = fid.load_stats(str(tmp_path / "theirs.npz"))
  assert got_mu.dtype == np.float64
  np.testing.assert_array_equal(got_sigma, sigma)

  np.savez(tmp_path / "other.npz", images=np.zeros((2, 4, 4, 3), np.uint8))
  with pytest.raises(GanjaxError, match="not FID statistics.*'mu' and 'sigma'"):
    fid.load_stats(str(tmp_path / "other.npz"))
  with pytest.raises(GanjaxError, match="does not exist"):
    fid.load_stats(str(tmp_path / "missing.npz"))
  np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.zeros((2, 2)))
  with pytest.raises(GanjaxError, match=r"mu \[d\] and sigma \[d, d\]"):
    fid.load_stats(str(tmp_path / "bad.npz"))


# --- Inception Score ------------------------------------------------------------------


def _inception_score_loops(logits, splits):
  """The definition, one example and one class at a time."""
  n = len(logits)
  probs = [np.exp(row - row.max()) / np.exp(row - row.max()).sum() for row in logits]
  scores = []
  for s in range(splits):
    part = probs[s * n // splits:(s + 1) * n // splits]
    marginal = sum(part) / len(part)
    kls = [sum(p[c] * np.log(p[c] / marginal[c]) for c in range(len(p))) for p in part]
    scores.append(np.exp(sum(kls) / len(kls)))
  mean = sum(scores) / splits
  return mean, np.sqrt(sum((s - mean) ** 2 for s in scores) / splits)


@pytest.mark.parametrize("n, splits", [(103, 10), (20, 3)])
def test_inception_score_matches_the_definition(n, splits):
  logits = np.random.default_rng(n).standard_normal((n, 12)) * 3
  got = fid.inception_score(logits, splits)
  np.testing.assert_allclose(got, _inception_score_loops(logits.astype(np.float64), splits),
                             rtol=1e-10)


def test_inception_score_splits_are_consecutive_chunks():
  assert fid.split_sizes(50_000) == [5_000] * 10  # the standard protocol's splits
  assert fid.split_sizes(103) == [10, 10, 10, 11, 10, 10, 11, 10, 10, 11]
  logits = np.random.default_rng(15).standard_normal((50_000, 4)) * 2
  scores, start = [], 0
  for size in fid.split_sizes(50_000):
    scores.append(fid.inception_score(logits[start:start + size], splits=1)[0])
    start += size
  np.testing.assert_allclose(fid.inception_score(logits), (np.mean(scores), np.std(scores)),
                             rtol=1e-12)


def test_inception_score_extremes():
  # The same prediction everywhere: p(y|x) = p(y), score 1.
  assert fid.inception_score(np.tile(np.arange(7.0), (40, 1)), 4) == pytest.approx((1.0, 0.0))
  # Confident predictions spread evenly over k classes in every split: score k.
  k = 5
  logits = np.full((100, 1008), -1e4)
  logits[np.arange(100), np.arange(100) % k] = 0.0
  score, std = fid.inception_score(logits)
  assert score == pytest.approx(k) and std == pytest.approx(0.0, abs=1e-9)
  with pytest.raises(ValueError, match="N >= splits"):
    fid.inception_score(logits[:9])


# --- KID ------------------------------------------------------------------------------


def _mmd2_loops(x, y):
  m, d = x.shape
  k = lambda a, b: (a @ b / d + 1.0) ** 3
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
  return xx / (m * (m - 1)) + yy / (m * (m - 1)) - 2 * xy / m ** 2


def test_kid_matches_a_double_loop():
  rng = np.random.default_rng(5)
  a, b = _features(rng, 15, 6), _features(rng, 12, 6, shift=0.3)
  mean, std = fid.kernel_inception_distance(a, b, num_subsets=4, subset_size=9, seed=7)
  draws = np.random.RandomState(7)
  mmds = []
  for _ in range(4):
    ia, ib = draws.choice(15, 9, replace=False), draws.choice(12, 9, replace=False)
    mmds.append(_mmd2_loops(a[ia].astype(np.float64), b[ib].astype(np.float64)))
  np.testing.assert_allclose((mean, std), (np.mean(mmds), np.std(mmds)), rtol=1e-9)


def test_kid_caps_the_subset_size_and_host_fallback(monkeypatch):
  rng = np.random.default_rng(6)
  a, b = _features(rng, 10, 4), _features(rng, 10, 4, shift=1.0)
  mean, std = fid.kernel_inception_distance(a, b, num_subsets=3, subset_size=1000)
  # Subsets of all 10 examples are the whole sets in another order: every estimate agrees.
  np.testing.assert_allclose(mean, _mmd2_loops(a.astype(np.float64), b.astype(np.float64)),
                             rtol=1e-9)
  assert std == pytest.approx(0.0, abs=1e-9)
  monkeypatch.setattr(fid, "_device_has_float64", lambda: False)
  np.testing.assert_allclose(fid.kernel_inception_distance(a, b, 3, 1000), (mean, std),
                             rtol=1e-9, atol=1e-12)


def test_kid_near_zero_for_one_distribution_and_positive_when_shifted():
  rng = np.random.default_rng(8)
  both = _features(rng, 800, 16)  # one distribution (one mixing matrix)
  a, b = both[:400], both[400:]
  same, same_std = fid.kernel_inception_distance(a, b, num_subsets=20, subset_size=200)
  shifted, _ = fid.kernel_inception_distance(a, b + 0.5, num_subsets=20, subset_size=200)
  # Unbiased: within the scatter of one subset's estimate (the subsets overlap, so
  # their mean scatters nearly as much); a shift of half a unit stands far out.
  assert abs(same) < 2 * same_std
  assert shifted > 20 * same_std


# --- the weights ----------------------------------------------------------------------


def test_weights_constants_follow_torch_hubs_convention():
  assert fid.WEIGHTS_URL.endswith("/" + fid.WEIGHTS_FILE)
  suffix = fid.WEIGHTS_FILE.rsplit("-", 1)[1].split(".")[0]
  assert fid.WEIGHTS_SHA256.startswith(suffix) and len(fid.WEIGHTS_SHA256) == 64


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
  """An isolated lookup: empty cache, no variable, the 'published' file a local fake."""
  cache = tmp_path / "cache"
  monkeypatch.setenv(fid.CACHE_ENV, str(cache))
  monkeypatch.delenv(fid.WEIGHTS_ENV, raising=False)
  published = tmp_path / "published.pth"
  published.write_bytes(b"fake FID weights " * 100)
  monkeypatch.setattr(fid, "WEIGHTS_URL", published.as_uri())
  monkeypatch.setattr(fid, "WEIGHTS_SHA256", hashlib.sha256(published.read_bytes()).hexdigest())
  return cache, published


def test_resolve_weights_order(weights_env, tmp_path, monkeypatch):
  cache, published = weights_env
  # Nothing local: downloaded into the cache, then found there without a download.
  cached = fid.resolve_weights()
  assert cached == str(cache / fid.WEIGHTS_FILE)
  assert open(cached, "rb").read() == published.read_bytes()
  assert os.listdir(cache) == [fid.WEIGHTS_FILE]  # no partial file left behind
  monkeypatch.setattr(fid, "WEIGHTS_URL", (tmp_path / "gone.pth").as_uri())
  assert fid.resolve_weights() == cached
  # The environment variable beats the cache; an explicit path beats both.
  from_env, explicit = tmp_path / "env.pth", tmp_path / "flag.pth"
  from_env.write_bytes(b"x")
  explicit.write_bytes(b"y")
  monkeypatch.setenv(fid.WEIGHTS_ENV, str(from_env))
  assert fid.resolve_weights() == str(from_env)
  assert fid.resolve_weights(str(explicit)) == str(explicit)
  # Names of missing files are errors, never silently skipped.
  with pytest.raises(GanjaxError, match="nope.pth does not exist"):
    fid.resolve_weights(str(tmp_path / "nope.pth"))
  monkeypatch.setenv(fid.WEIGHTS_ENV, str(tmp_path / "absent.pth"))
  with pytest.raises(GanjaxError, match=f"{fid.WEIGHTS_ENV}=.*absent.pth names no file"):
    fid.resolve_weights()


def test_resolve_weights_rejects_a_bad_download(weights_env, monkeypatch):
  cache, _ = weights_env
  monkeypatch.setattr(fid, "WEIGHTS_SHA256", "0" * 64)
  with pytest.raises(GanjaxError, match="SHA-256 .* was deleted"):
    fid.resolve_weights()
  assert not os.path.exists(cache / fid.WEIGHTS_FILE) and os.listdir(cache) == []


def test_resolve_weights_offline_says_where_to_put_the_file(weights_env, tmp_path,
                                                            monkeypatch):
  cache, _ = weights_env
  monkeypatch.setattr(fid, "WEIGHTS_URL", (tmp_path / "unreachable.pth").as_uri())
  with pytest.raises(GanjaxError) as e:
    fid.resolve_weights()
  message = str(e.value)
  assert "\n" not in message and "could not be downloaded" in message
  assert fid.WEIGHTS_FILE in message and fid.WEIGHTS_URL in message
  for place in ("--inception_weights FILE", "inception_weights", fid.WEIGHTS_ENV, str(cache)):
    assert place in message
  assert os.listdir(cache) == []


# --- the network and image metrics ----------------------------------------------------


def test_load_inception_runs_the_fid_network(monkeypatch, tmp_path):
  """The real FIDInception on random weights: shapes, sharding and bias-free logits."""
  rng = np.random.default_rng(9)
  shapes = inception.variable_shapes()

  def fill(path, leaf):
    name = path[-1].key
    if name == "kernel":
      fan_in = np.prod(leaf.shape[:-1])
      return rng.standard_normal(leaf.shape, np.float32) * np.sqrt(2.0 / fan_in)
    if name in ("scale", "var"):
      return np.ones(leaf.shape, np.float32)
    return rng.standard_normal(leaf.shape, np.float32) * 0.1
  variables = jax.tree_util.tree_map_with_path(fill, shapes)
  weights = tmp_path / "random.pth"
  weights.write_bytes(b"stand-in")
  read = []
  monkeypatch.setattr(fid.torch_weights, "load_state_dict", read.append)
  monkeypatch.setattr(fid.inception, "params_from_state_dict", lambda unused: variables)
  extractor = fid.load_inception(str(weights), batch_size=8)
  assert read == [str(weights)] and extractor.batch_size == 8
  images = rng.integers(0, 256, (5, 24, 24, 3), dtype=np.uint8)
  out = extractor(images)
  assert out["pool"].shape == (5, fid.POOL_DIM) and out["logits"].shape == (5, 1008)
  assert np.all(np.isfinite(out["pool"])) and np.ptp(out["pool"], axis=0).max() > 0
  # The logits are the fully connected layer's without its bias.
  np.testing.assert_allclose(out["logits"], out["pool"] @ variables["params"]["fc"]["kernel"],
                             rtol=1e-4, atol=1e-4)


def _tiny_fn(images):
  """A stand-in feature network: resize to 8x8, 12 pool features, 10 logits."""
  x = inception.resize_bilinear(images, (8, 8))
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  quads = [x[:, i:i + 4, j:j + 4].mean(axis=(1, 2)) for i in (0, 4) for j in (0, 4)]
  pool = jnp.concatenate(quads, axis=-1)
  logits = pool @ jnp.asarray(np.random.default_rng(0).standard_normal((12, 10)), jnp.float32)
  return {"pool": pool, "logits": 3 * logits}


def _tiny_extractor(weights=None, batch_size=200, mesh=None):
  return features.Extractor(_tiny_fn, batch_size, mesh)


def test_image_metrics_composes_the_metrics():
  rng = np.random.default_rng(10)
  fake = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
  real = rng.integers(0, 200, (40, 8, 8, 3), dtype=np.uint8)
  extractor = _tiny_extractor(batch_size=16)
  got = fid.image_metrics(extractor, fake, real, kid_subset_size=20)
  assert list(got) == ["fid", "inception_score", "inception_score_std", "kid", "kid_std"]
  f, r = _tiny_fn(jnp.asarray(fake) / 127.5 - 1), _tiny_fn(jnp.asarray(real) / 127.5 - 1)
  want_fid = fid.frechet_distance(*fid.statistics(np.asarray(f["pool"])),
                                  *fid.statistics(np.asarray(r["pool"])))
  np.testing.assert_allclose(got["fid"], want_fid, rtol=1e-5)
  np.testing.assert_allclose(got["inception_score"],
                             fid.inception_score(np.asarray(f["logits"]))[0], rtol=1e-5)
  np.testing.assert_allclose(
      (got["kid"], got["kid_std"]),
      fid.kernel_inception_distance(np.asarray(f["pool"]), np.asarray(r["pool"]),
                                    subset_size=20), rtol=1e-4)
  # Float images in [-1, 1] are the same images; statistics stand in for real images.
  as_float = fake.astype(np.float32) / 127.5 - 1
  stats = fid.statistics(extractor(real)["pool"])
  only_stats = fid.image_metrics(extractor, as_float, real_stats=stats)
  assert list(only_stats) == ["fid", "inception_score", "inception_score_std"]
  np.testing.assert_allclose(only_stats["fid"], got["fid"], rtol=1e-5)
  assert list(fid.image_metrics(extractor, fake[:4])) == ["inception_score",
                                                          "inception_score_std"]


# --- python -m ganjax fid -------------------------------------------------------------


@pytest.fixture
def tiny_network(monkeypatch, tmp_path):
  calls = []

  def load(weights=None, batch_size=200, mesh=None):
    calls.append(weights)
    return _tiny_extractor(weights, batch_size, mesh)
  monkeypatch.setattr(fid, "load_inception", load)
  stand_in = tmp_path / "tiny.pth"  # the weights file is only hashed
  stand_in.write_bytes(b"tiny network")
  monkeypatch.setattr(fid, "resolve_weights", lambda path=None: str(path or stand_in))
  return calls


def _write_folder(folder, images):
  folder.mkdir()
  for i, image in enumerate(images):
    Image.fromarray(image).save(folder / f"{i:03d}.png")


def test_cli_folders_npz_and_stats_agree(tmp_path, tiny_network, capsys):
  rng = np.random.default_rng(11)
  a = rng.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
  b = rng.integers(30, 226, (9, 8, 8, 3), dtype=np.uint8)
  _write_folder(tmp_path / "a", a)
  _write_folder(tmp_path / "b", b)
  (tmp_path / "a" / "notes.txt").write_text("not an image")
  np.savez(tmp_path / "b_images.npz", images=b)
  np.savez(tmp_path / "b_float.npz", b.astype(np.float32) / 127.5 - 1)  # the only array

  want = fid.frechet_distance(*fid.statistics(np.asarray(_tiny_fn(a / 127.5 - 1)["pool"])),
                              *fid.statistics(np.asarray(_tiny_fn(b / 127.5 - 1)["pool"])))
  fid_cli.main([str(tmp_path / "a"), str(tmp_path / "b"), "--batch-size", "4"])
  line = capsys.readouterr().out.strip()
  assert line.startswith("FID: ")
  np.testing.assert_allclose(float(line.split()[-1]), want, rtol=1e-5)
  for other in ("b_images.npz", "b_float.npz"):
    got = fid_cli.compute(str(tmp_path / "a"), str(tmp_path / other), log=lambda s: None)
    np.testing.assert_allclose(got["fid"], want, rtol=1e-5)

  # --save-stats, then statistics in place of images; no network is needed for two.
  fid_cli.main(["--save-stats", str(tmp_path / "b"), str(tmp_path / "b_stats.npz")])
  assert "wrote the FID statistics of 9 images" in capsys.readouterr().out
  got = fid_cli.compute(str(tmp_path / "a"), str(tmp_path / "b_stats.npz"), log=lambda s: None)
  np.testing.assert_allclose(got["fid"], want, rtol=1e-5)
  fid_cli.main(["--save-stats", str(tmp_path / "a"), str(tmp_path / "a_stats.npz")])
  tiny_network.clear()
  fid_cli.main([str(tmp_path / "a_stats.npz"), str(tmp_path / "b_stats.npz")])
  assert tiny_network == []
  np.testing.assert_allclose(float(capsys.readouterr().out.split()[-1]), want, rtol=1e-5)
  with pytest.raises(SystemExit, match="b_stats.npz exists"):
    fid_cli.main(["--save-stats", str(tmp_path / "b"), str(tmp_path / "b_stats.npz")])

  # Identical sets; the extras.
  got = fid_cli.compute(str(tmp_path / "a"), str(tmp_path / "a"), kid=True,
                        inception_score=True, log=lambda s: None)
  assert abs(got["fid"]) < 1e-6
  assert set(got) == {"fid", "kid", "kid_std", "inception_score_a", "inception_score_std_a",
                      "inception_score_b", "inception_score_std_b"}
  assert got["inception_score_a"] == got["inception_score_b"] > 1


def test_cli_reads_a_cached_reference(tmp_path, tiny_network, monkeypatch, capsys):
  """The reference files of `--reference <dataset>` serve FID, KID and precision/recall."""
  from ganjax.data import bundled_mnist  # pylint: disable=g-import-not-at-top
  from ganjax.evaluation import prdc, reference  # pylint: disable=g-import-not-at-top
  monkeypatch.setenv(fid.CACHE_ENV, str(tmp_path / "cache"))
  sha = fid.weights_sha256(fid.resolve_weights())
  src = reference.source("bundled:mnist", split="test", image_size=32, channels=1, limit=60)
  ref = reference.load(src, _tiny_extractor(batch_size=16), extractor_name="inception",
                       weights_sha256=sha, log=lambda message: None)
  fake = np.random.default_rng(14).integers(0, 256, (40, 32, 32, 1), dtype=np.uint8)
  np.savez(tmp_path / "fake.npz", images=fake)
  fake_pool = np.asarray(_tiny_fn(jnp.asarray(fake, jnp.float32) / 127.5 - 1)["pool"])

  fid_cli.main([str(tmp_path / "fake.npz"), ref.path, "--kid", "--prdc"])
  printed = capsys.readouterr().out
  got = fid_cli.compute(str(tmp_path / "fake.npz"), ref.path, kid=True, prdc=True,
                        log=lambda message: None)
  want_fid = fid.frechet_distance(*fid.statistics(fake_pool), *fid.statistics(ref.features))
  np.testing.assert_allclose(got["fid"], want_fid, rtol=1e-5)
  assert f"FID: {got['fid']}" in printed and "precision: " in printed
  np.testing.assert_allclose((got["kid"], got["kid_std"]),
                             fid.kernel_inception_distance(fake_pool, ref.features), rtol=1e-4)
  # 40 of each set: the 40 generated images, 40 of the 60 real ones.
  keep = np.sort(np.random.default_rng(prdc.SUBSET_SEED).choice(60, 40, replace=False))
  want = prdc.precision_recall_density_coverage(ref.features[keep], fake_pool)
  for key, value in want.items():
    assert got[key] == pytest.approx(value, abs=1e-6), key

  # Features of other weights are not compared with it; statistics alone serve FID only.
  other = tmp_path / "other.pth"
  other.write_bytes(b"other weights")
  with pytest.raises(SystemExit, match="measured with Inception weights of SHA-256"):
    fid_cli.main([str(tmp_path / "fake.npz"), ref.path, "--inception_weights", str(other)])
  fid.save_stats(str(tmp_path / "stats.npz"), ref.mu, ref.sigma)
  with pytest.raises(SystemExit, match="--prdc needs images .*stats.npz holds statistics only"):
    fid_cli.main([str(tmp_path / "fake.npz"), str(tmp_path / "stats.npz"), "--prdc"])
  # --save-stats records the weights' hash, which is then checked.
  fid_cli.main(["--save-stats", str(tmp_path / "fake.npz"), str(tmp_path / "saved.npz"),
                "--inception_weights", str(other)])
  with pytest.raises(SystemExit, match="measured with Inception weights of SHA-256"):
    fid_cli.main([str(tmp_path / "saved.npz"), ref.path])


def test_cli_mixed_image_sizes_match_one_at_a_time(tmp_path, tiny_network):
  """A folder of several sizes gives each image the features it has on its own."""
  rng = np.random.default_rng(12)
  sizes = [(8, 8), (12, 10), (8, 8), (6, 9), (12, 10), (8, 8), (16, 16)]
  images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
  _write_folder(tmp_path / "mixed", images)
  files = fid_cli.list_images(str(tmp_path / "mixed"), "PATH_A")
  got = fid_cli.file_features(_tiny_extractor(batch_size=8), files, "PATH_A", chunk=3)
  for image, pool in zip(images, got["pool"]):
    alone = _tiny_fn(jnp.asarray(image[None], jnp.float32) / 127.5 - 1)["pool"][0]
    np.testing.assert_allclose(pool, alone, rtol=1e-5, atol=1e-6)


def test_cli_errors_are_one_line(tmp_path, tiny_network):
  (tmp_path / "empty").mkdir()
  np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
  np.savez(tmp_path / "wide.npz", images=np.full((4, 8, 8, 3), 3.0, np.float32))
  np.savez(tmp_path / "two.npz", x=np.zeros(3), y=np.zeros(3))
  cases = {
      (str(tmp_path / "missing"), str(tmp_path / "stats.npz")): "PATH_A .*missing does not exist",
      (str(tmp_path / "empty"), str(tmp_path / "stats.npz")): "holds no image files",
      (str(tmp_path / "wide.npz"), str(tmp_path / "stats.npz")): r"not \[-1, 1\]",
      (str(tmp_path / "two.npz"), str(tmp_path / "stats.npz")): "name the image array 'images'",
      (str(tmp_path / "stats.npz"), str(tmp_path / "stats.npz"), "--kid"): "--kid needs images",
      ("--save-stats", str(tmp_path / "stats.npz"), str(tmp_path / "o.npz")): "already holds",
  }
  for argv, pattern in cases.items():
    with pytest.raises(SystemExit, match="^ganjax: error: .*" + pattern) as e:
      fid_cli.main(list(argv))
    assert "\n" not in str(e.value.code)


def test_cli_offline_without_weights_says_where_to_put_them(weights_env, tmp_path,
                                                           monkeypatch):
  monkeypatch.setattr(fid, "WEIGHTS_URL", (tmp_path / "unreachable.pth").as_uri())
  np.savez(tmp_path / "images.npz", images=np.zeros((3, 8, 8, 3), np.uint8))
  with pytest.raises(SystemExit, match=f"^ganjax: error: .*{fid.WEIGHTS_ENV}"):
    fid_cli.main([str(tmp_path / "images.npz"), str(tmp_path / "images.npz")])
  with pytest.raises(SystemExit, match="ganjax: error: .*nope.pth does not exist"):
    fid_cli.main([str(tmp_path / "images.npz"), str(tmp_path / "images.npz"),
                  "--inception_weights", str(tmp_path / "nope.pth")])


def test_cli_runs_as_a_module(tmp_path):
  rng = np.random.default_rng(13)
  for name in ("a", "b"):
    fid.save_stats(str(tmp_path / f"{name}.npz"), *fid.statistics(_features(rng, 30, 6)))
  want = fid.frechet_distance(*fid.load_stats(str(tmp_path / "a.npz")),
                              *fid.load_stats(str(tmp_path / "b.npz")))
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  done = subprocess.run([sys.executable, "-m", "ganjax", "fid", str(tmp_path / "a.npz"),
                         str(tmp_path / "b.npz")], capture_output=True, text=True, env=env,
                        check=True, cwd=os.path.dirname(os.path.dirname(__file__)))
  assert done.stdout.startswith("FID: ")
  np.testing.assert_allclose(float(done.stdout.split()[1]), want, rtol=1e-12)
