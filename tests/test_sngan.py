"""SNGAN (experiments/sngan.py, ganjax/algorithms/sngan.py): the variant of docs/extending.md.

Spectral normalisation against NumPy's SVD, the hinge losses of a step against
a hand computation, 1 vs 8 devices, the config errors, and the experiment
training, resuming and being evaluated.
"""

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import backend, parallel, train
from ganjax.algorithms import gan, sngan
from ganjax.cli import evaluate_cmd as evaluate
from ganjax.errors import GanjaxError
from tests.helpers import experiment_config

TINY = dict(g_width=8, d_width=8, latent_dim=16, batch_size=16, num_samples=16, eval_every=0)


def tiny(**overrides):
  config = experiment_config("sngan")
  config.update({**TINY, **overrides})
  return config


def init(config, seed=0):
  return jax.jit(functools.partial(sngan.init, config))(jax.random.PRNGKey(seed),
                                                        train.example_batch(config))


def kernels(state):
  """{layer: (kernel as SpectralNorm reshapes it [-1, out], stored sigma, stored u)}."""
  params = jax.device_get(state.params["discriminator"])
  stats = {k: v for module in jax.device_get(state.batch_stats["discriminator"]).values()
           for k, v in module.items()}
  return {name: (np.asarray(p["kernel"]).reshape(-1, p["kernel"].shape[-1]),
                 float(stats[f"{name}/kernel/sigma"]), np.asarray(stats[f"{name}/kernel/u"]))
          for name, p in params.items() if "kernel" in p}  # not the LayerNorms


def images(config, n, seed):
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (n, config.image_size, config.image_size, 1)).astype(np.float32)


def test_every_critic_layer_is_normalised():
  """Scaling any layer's kernel leaves the critic unchanged: W / sigma(W) ignores scale.

  Without LayerNorm (d_norm="none", the paper's critic), which would hide a missing
  normalisation behind its own scale invariance.
  """
  config = tiny(d_norm="none")
  state = init(config)
  _, critic = sngan.models(config, axis_name=None)
  params, stats = state.params["discriminator"], state.batch_stats["discriminator"]
  assert set(kernels(state)) == {f"conv{i}" for i in range(7)} | {"dense"}
  x = jnp.asarray(images(config, 4, seed=1))
  apply = jax.jit(lambda p: critic.apply({"params": p, "batch_stats": stats}, x, train=False))
  out = apply(params)
  assert float(jnp.std(out)) > 1e-4  # the outputs depend on the input
  for name in params:
    scaled = {**params, name: {**params[name], "kernel": 10.0 * params[name]["kernel"]}}
    np.testing.assert_allclose(apply(scaled), out, rtol=1e-4, atol=1e-6, err_msg=name)
  # A bias is not normalised: shifting one changes the outputs.
  shifted = {**params, "conv6": {**params["conv6"], "bias": params["conv6"]["bias"] + 1.0}}
  assert not np.allclose(apply(shifted), out, atol=1e-4)


def test_spectral_norms_against_numpy_svd():
  """The stored sigma is a power-iteration estimate of the largest singular value:
  never above it, and equal to it once the iteration has converged, when every
  normalised weight matrix W / sigma has spectral norm 1."""
  config = tiny(d_norm="none")
  state = init(config)
  _, critic = sngan.models(config, axis_name=None)
  x = jnp.asarray(images(config, 2, seed=2))
  params = state.params["discriminator"]

  @jax.jit
  def iterate(stats):  # 300 training-mode passes: 300 power-iteration steps per layer
    def body(_, s):
      return critic.apply({"params": params, "batch_stats": s}, x, train=True,
                          mutable=["batch_stats"])[1]["batch_stats"]
    return jax.lax.fori_loop(0, 300, body, stats)

  before = kernels(state)
  after = kernels(state.replace(batch_stats={**state.batch_stats, "discriminator": iterate(
      state.batch_stats["discriminator"])}))
  for name, (matrix, sigma, u) in after.items():
    top = np.linalg.svd(matrix, compute_uv=False)[0]
    assert before[name][1] <= top * (1 + 1e-5), name
    np.testing.assert_allclose(sigma, top, rtol=1e-3, err_msg=name)
    np.testing.assert_allclose(np.linalg.svd(matrix / sigma, compute_uv=False)[0], 1.0,
                               rtol=1e-3, err_msg=name)
    # u is the top right singular vector (up to sign).
    vt = np.linalg.svd(matrix)[2]
    np.testing.assert_allclose(abs(float(u[0] @ vt[0])), 1.0, atol=1e-3, err_msg=name)


def one_step(config, state, batch, n_devices):
  mesh = parallel.make_mesh(jax.devices()[:n_devices])
  run_backend = backend.resolve(mesh.devices.flat, config.algorithm)  # as train.py does
  step = parallel.data_parallel(functools.partial(sngan.train_step, config, backend=run_backend),
                                mesh, batch_axis=1, donate=False,
                                compiler_options=run_backend.jit_options())
  state = parallel.replicate(jax.device_get(state), mesh)
  return jax.device_get(step(state, parallel.shard_batch(batch, mesh, batch_axis=1)))


def test_step_hinge_losses_by_hand():
  """A step's d_loss is E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))] with the critic
  before its update, and g_loss is -E[D(G(z))] with the critic after it.

  The hand computation runs the networks on the whole batch on one device; the
  step's noise is drawn for the global batch from the same keys (gan.device_latent).
  """
  config = tiny()
  state = init(config)
  real = images(config, config.batch_size, seed=3)
  # Over 8 devices: the losses are of the global batch, each device holding 2 examples.
  new_state, metrics = one_step(config, state, {"image": real[None]}, n_devices=8)

  generator, critic = sngan.models(config, axis_name=None)
  # With one critic update, the fakes it sees are the generator update's (gan.py
  # reuses that forward pass through jax.vjp): both come from g_key.
  g_key = jax.random.split(jax.random.fold_in(state.rng, state.step))[0]

  @jax.jit
  def fakes(key):
    z = gan.latent(config, key, config.batch_size)
    return generator.apply({"params": state.params["generator"],
                            "batch_stats": state.batch_stats["generator"]}, z, train=True,
                           mutable=["batch_stats"])[0]

  @functools.partial(jax.jit, static_argnames="train")
  def critic_outputs(d_state, x, train):
    variables = {"params": d_state.params["discriminator"],
                 "batch_stats": d_state.batch_stats["discriminator"]}
    return critic.apply(variables, x, train=train, mutable=["batch_stats"])[0]

  both = jnp.concatenate([jnp.asarray(real), fakes(g_key)])
  d_real, d_fake = np.split(np.asarray(critic_outputs(state, both, True), np.float64), 2)
  hinge = np.mean(np.maximum(0, 1 - d_real)) + np.mean(np.maximum(0, 1 + d_fake))
  np.testing.assert_allclose(metrics["d_loss"], hinge, rtol=1e-5)
  np.testing.assert_allclose(metrics["wasserstein"], d_real.mean() - d_fake.mean(),
                             rtol=1e-4, atol=1e-6)

  after = critic_outputs(new_state, fakes(g_key), False)
  np.testing.assert_allclose(metrics["g_loss"], -np.mean(np.asarray(after, np.float64)),
                             rtol=1e-4, atol=1e-6)
  # The critic update moved u (the state carries the power iteration forward).
  moved = [not np.allclose(a[2], b[2]) for a, b in zip(kernels(state).values(),
                                                       kernels(new_state).values())]
  assert sum(moved) >= 7  # the dense layer's u is [1, 1]: already converged


def test_one_and_eight_devices_agree():
  config = tiny(n_critic=2, image_size=16)  # two scanned critic updates per step
  state = init(config)
  batch = {"image": images(config, 2 * config.batch_size, seed=4).reshape(
      2, config.batch_size, config.image_size, config.image_size, 1)}
  one, m1 = one_step(config, state, batch, n_devices=1)
  eight, m8 = one_step(config, state, batch, n_devices=8)
  for key in ("d_loss", "g_loss", "wasserstein"):
    np.testing.assert_allclose(m1[key], m8[key], rtol=1e-4, atol=1e-6)
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(eight)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("overrides,message", [
    ({"gp_weight": 10.0}, "gp_weight=10.0: the SNGAN discriminator does not implement it"),
    ({"num_classes": 10}, "num_classes=10"),
    ({"d_norm": "batch"}, "takes no BatchNorm"),
    ({"architecture": "mlp"}, "SNGAN uses the DCGAN generator"),
])
def test_config_errors(overrides, message):
  with pytest.raises(GanjaxError, match=message):
    sngan.validate(tiny(**overrides))


def test_experiment_trains_resumes_and_evaluates(tmp_path):
  def config(steps):
    return tiny(num_train_steps=steps, log_every=1, sample_every=2, checkpoint_every=1)

  workdir = tmp_path / "run"
  state = train.train_and_evaluate(config(2), str(workdir))
  assert int(jax.device_get(state.step)) == 2
  assert (workdir / "samples" / "step_2.png").is_file()
  resumed = train.train_and_evaluate(config(3), str(workdir))
  straight = train.train_and_evaluate(config(3), str(tmp_path / "straight"))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed)),
                  jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(a, b)
  result = evaluate.evaluate(str(workdir), num_samples=100, metrics="cheap")
  assert result["algorithm"] == "sngan" and result["step"] == 3
  assert math.isfinite(result["classifier_fid"]) and result["classifier_fid"] > 0
