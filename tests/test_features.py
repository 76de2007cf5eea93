"""Tests for ganjax.evaluation.features: sharded batched extraction equals one big call."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import parallel
from ganjax.evaluation import features


def _fn(x):
  # Per-example features: a mean, a max and a nonlinear map of each image.
  flat = x.reshape(x.shape[0], -1)
  return {"mean": flat.mean(1), "max": flat.max(1), "tanh": jnp.tanh(flat[:, :5] * 3)}


@pytest.mark.parametrize("devices,n,batch", [(1, 7, 3), (8, 37, 10), (8, 5, 64), (4, 16, 8)])
def test_extract_matches_direct_call(devices, n, batch):
  rng = np.random.default_rng(0)
  images = rng.uniform(-1, 1, (n, 4, 4, 3)).astype(np.float32)
  mesh = parallel.make_mesh(jax.devices()[:devices])
  got = features.extract(_fn, images, batch_size=batch, mesh=mesh)
  want = jax.device_get(_fn(jnp.asarray(images)))
  assert set(got) == set(want)
  for key in want:
    assert got[key].shape == want[key].shape
    np.testing.assert_allclose(got[key], want[key], rtol=1e-6, atol=1e-6)


def test_extractor_batch_is_a_multiple_of_devices():
  mesh = parallel.make_mesh(jax.devices()[:8])
  assert features.Extractor(_fn, batch_size=10, mesh=mesh).batch_size == 16
  assert features.Extractor(_fn, batch_size=3, mesh=mesh).batch_size == 8


def test_extract_uint8_and_chunks():
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (11, 4, 4, 1), dtype=np.uint8)
  whole = features.extract(_fn, images, batch_size=4)
  chunked = features.extract(_fn, [images[:5], images[5:]], batch_size=4)
  want = jax.device_get(_fn(jnp.asarray(images, jnp.float32) / 127.5 - 1))
  for key in want:
    np.testing.assert_allclose(whole[key], want[key], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(chunked[key], whole[key])


def test_extract_nothing_is_an_error():
  with pytest.raises(ValueError, match="no images"):
    features.extract(_fn, [], batch_size=4)


def test_extract_with_params_matches_closure():
  rng = np.random.default_rng(2)
  images = rng.uniform(-1, 1, (9, 4, 4, 3)).astype(np.float32)
  weights = {"w": rng.normal(size=(48, 5)).astype(np.float32)}
  fn = lambda p, x: {"out": x.reshape(x.shape[0], -1) @ p["w"]}
  got = features.extract(fn, images, batch_size=4, params=weights)
  want = images.reshape(9, -1) @ weights["w"]
  np.testing.assert_allclose(got["out"], want, rtol=1e-5, atol=1e-5)
