"""The data-parallel step gives the same result on 1 device and on 8 for the same global batch."""

import functools

import jax
import numpy as np

from ganjax import data, parallel
from ganjax.algorithms import gan
from ganjax.errors import GanjaxError
from tests.helpers import tiny_config

import pytest


def run_steps(config, devices, batches):
  mesh = parallel.make_mesh(devices)
  state = gan.init(config, jax.random.PRNGKey(config.seed), {"image": batches[0]["image"][0]})
  state = parallel.replicate(jax.device_get(state), mesh)
  step = parallel.data_parallel(functools.partial(gan.train_step, config), mesh, batch_axis=1)
  history = []
  for batch in batches:
    state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
    history.append(jax.device_get(metrics))
  return jax.device_get(state), history


def test_one_device_and_eight_devices_agree():
  config = tiny_config(batch_size=16)
  source = data.make_batches(config)
  batches = [next(source) for _ in range(3)]
  one_state, one = run_steps(config, jax.devices()[:1], batches)
  eight_state, eight = run_steps(config, jax.devices(), batches)
  for a, b in zip(one, eight):
    for key in a:
      np.testing.assert_allclose(a[key], b[key], rtol=2e-4, atol=1e-5, err_msg=key)
  for a, b in zip(jax.tree.leaves(one_state.params), jax.tree.leaves(eight_state.params)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
  # BatchNorm running statistics are the global batch's, not one device's.
  for a, b in zip(jax.tree.leaves(one_state.batch_stats), jax.tree.leaves(eight_state.batch_stats)):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
  assert int(eight_state.step) == 3


def test_batch_size_must_divide_by_devices():
  with pytest.raises(GanjaxError, match="batch_size=12 does not divide by the 8 devices"):
    parallel.per_device_batch_size(12, parallel.make_mesh())
