"""WGAN and WGAN-GP: the penalty, clipping, sign conventions, the scanned critic loop, training."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax import backend, data, losses, parallel, train
from ganjax.algorithms import gan, wgan
from ganjax.errors import GanjaxError
from tests.helpers import experiment_config

TINY = dict(g_width=8, d_width=8, latent_dim=16, batch_size=16, num_train_steps=2,
            log_every=1, sample_every=2, checkpoint_every=1, num_samples=4)


def tiny(name, **overrides):
  config = experiment_config(name)
  config.update({**TINY, **overrides})
  return config


def test_gradient_penalty_of_a_linear_critic_is_closed_form():
  w = jnp.array([[0.3, -1.2], [2.0, 0.5]])  # D(x) = <w, x> + 1: gradient w everywhere
  critic = lambda x: jnp.sum(x * w, axis=(1, 2)) + 1.0
  real = jax.random.normal(jax.random.PRNGKey(0), (5, 2, 2))
  fake = jax.random.normal(jax.random.PRNGKey(1), (5, 2, 2))
  penalty, norms = losses.gradient_penalty(critic, real, fake, jax.random.PRNGKey(2), 10.0)
  norm = np.sqrt(0.3**2 + 1.2**2 + 2.0**2 + 0.5**2)
  np.testing.assert_allclose(norms, np.full(5, norm), rtol=1e-6)
  np.testing.assert_allclose(penalty, 10.0 * (norm - 1.0) ** 2, rtol=1e-6)


def test_gradient_penalty_interpolates_with_one_weight_per_example():
  # D(x) = sum(x^2) / 2 has gradient x: the norms reveal each example's x_hat.
  critic = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
  real = jnp.ones((6, 3, 3, 2))
  fake = -jnp.ones((6, 3, 3, 2))
  key = jax.random.PRNGKey(7)
  _, norms = losses.gradient_penalty(critic, real, fake, key)
  u = np.asarray(jax.random.uniform(key, (6, 1, 1, 1))).ravel()
  # x_hat = u - (1 - u) = 2u - 1 in every pixel, so ||x_hat|| = |2u - 1| * sqrt(18).
  np.testing.assert_allclose(norms, np.abs(2 * u - 1) * np.sqrt(18), rtol=1e-5)
  assert len(np.unique(np.round(u, 6))) == 6  # a different weight for each example


def test_gradient_penalty_weights_are_the_global_batch_weights_on_any_device_count():
  # D(x) = sum(x^2) / 2 again: each norm is |2u - 1| * sqrt(8), so it shows the example's u.
  critic = lambda x: 0.5 * jnp.sum(x**2, axis=(1, 2, 3))
  real, fake = jnp.ones((16, 2, 2, 2)), -jnp.ones((16, 2, 2, 2))
  key = jax.random.PRNGKey(3)
  _, whole = losses.gradient_penalty(critic, real, fake, key)
  spec = jax.sharding.PartitionSpec(parallel.AXIS)
  for n in (1, 2, 8):
    mesh = parallel.make_mesh(jax.devices()[:n])
    norms = jax.jit(jax.shard_map(
        lambda r, f: losses.gradient_penalty(critic, r, f, key, axis_name=parallel.AXIS)[1],
        mesh=mesh, in_specs=(spec, spec), out_specs=spec))(real, fake)
    # The same u for every example; the norms are computed alike, up to rounding.
    np.testing.assert_allclose(norms, whole, rtol=1e-6, err_msg=f"{n} devices")
  assert len(np.unique(np.round(np.asarray(whole), 5))) == 16  # no weight repeats


def test_wasserstein_sign_convention():
  real, fake = jnp.array([3.0, 1.0]), jnp.array([-1.0, 0.0])
  # The critic minimises E[D(G(z))] - E[D(x)], i.e. it raises real scores.
  assert float(losses.wasserstein_critic_loss(real, fake)) == pytest.approx(-2.5)
  assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(0.5)
  grad_real = jax.grad(lambda r: losses.wasserstein_critic_loss(r, fake))(real)
  assert np.all(np.asarray(grad_real) < 0)  # gradient descent raises D(x)


def test_hinge_and_least_squares_closed_forms():
  real, fake = np.array([0.5, 2.0]), np.array([-2.0, 0.3])
  np.testing.assert_allclose(losses.hinge_critic_loss(real, fake),
                             np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake)))
  np.testing.assert_allclose(losses.least_squares_critic_loss(real, fake, 0.9),
                             0.5 * np.mean((real - 0.9) ** 2) + 0.5 * np.mean(fake**2))
  np.testing.assert_allclose(losses.least_squares_generator_loss(fake),
                             0.5 * np.mean((fake - 1) ** 2))


def test_wgan_critic_schedule():
  config = experiment_config("wgan")
  assert [wgan.discriminator_updates(config, t) for t in (0, 24, 25, 26, 499, 500, 501, 1000)] == [
      100, 100, 5, 5, 5, 100, 5, 100]
  config.critic_warmup = False
  assert {wgan.discriminator_updates(config, t) for t in range(1001)} == {5}


@pytest.mark.parametrize("overrides,message", [
    (dict(d_norm="batch"), "d_norm='batch' with gp_weight=10.0"),
    (dict(n_critic=0), "n_critic=0 must be at least 1"),
    (dict(gp_weight=0.0), "exactly one Lipschitz constraint"),
    (dict(loss="hinge"), "trains with loss='wasserstein'"),
    (dict(real_label=0.9), "label smoothing needs a loss with a real target"),
])
def test_wgan_gp_config_errors(overrides, message):
  config = experiment_config("wgan_gp")
  config.update(overrides)
  with pytest.raises(GanjaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
    wgan.validate(config)


def one_step(config, n_devices=1, run_backend=None):
  """One step from the initial state, with `run_backend` (default: what train.py resolves)."""
  mesh = parallel.make_mesh(jax.devices()[:n_devices])
  run_backend = run_backend or backend.resolve(mesh.devices.flat, config.algorithm)
  per_step = functools.partial(gan.discriminator_updates, config)
  batch = next(data.make_batches(config, per_step=per_step))
  state = gan.init(config, jax.random.PRNGKey(0), {"image": batch["image"][0]})
  state = parallel.replicate(jax.device_get(state), mesh)
  step = parallel.data_parallel(functools.partial(gan.train_step, config, backend=run_backend),
                                mesh, batch_axis=1, donate=False,
                                compiler_options=run_backend.jit_options())
  new_state, metrics = step(state, parallel.shard_batch(batch, mesh, batch_axis=1))
  return jax.device_get(state), jax.device_get(new_state), jax.device_get(metrics), batch


def test_weight_clipping_bounds_the_critic_after_a_step():
  config = tiny("wgan", critic_warmup=False, n_critic=2, weight_clip=0.01, d_lr=0.05)
  _, state, metrics, _ = one_step(config)
  leaves = jax.tree.leaves(state.params["discriminator"])
  assert max(float(np.max(np.abs(w))) for w in leaves) <= 0.01
  # BatchNorm scales start near 1: they are among the weights clipped.
  assert 0.0 < metrics["clipped_fraction"] <= 1.0
  assert np.isclose(metrics["wasserstein"], -metrics["d_loss"])


def lowered_step(config, run_backend) -> str:
  per_step = functools.partial(gan.discriminator_updates, config)
  batch = next(data.make_batches(config, per_step=per_step))
  mesh = parallel.make_mesh(jax.devices()[:1])
  state = jax.eval_shape(functools.partial(gan.init, config), jax.random.PRNGKey(0),
                         {"image": batch["image"][0]})
  step = parallel.data_parallel(functools.partial(gan.train_step, config, backend=run_backend),
                                mesh, batch_axis=1)
  return step.lower(state, batch).as_text()


def test_critic_updates_are_unrolled_as_the_backend_says():
  """No loop around the critic updates up to the backend's unrolled_d_updates of
  them, one beyond; the stock backend always loops. (The random bits' lowering has loops
  of its own: one critic update has no critic loop.)"""
  cpu = backend.resolve(jax.devices()[:1], "wgan_gp")
  most = cpu.unrolled_d_updates
  assert most == backend.UNROLLED_D_UPDATES

  def loops(n, run_backend=cpu):
    return lowered_step(tiny("wgan_gp", n_critic=n), run_backend).count("stablehlo.while")
  base = loops(1)
  for n, extra in [(3, 0), (most, 0), (most + 1, 1)]:
    assert loops(n) == base + extra, n
  assert loops(3, backend.STOCK_BACKEND) == base + 1


@pytest.mark.parametrize("unrolled", [True, False])
def test_scanned_critic_updates_equal_separate_updates(unrolled):
  """The critic updates, unrolled or a loop (built with the loop's layers), are the updates
  written out one by one."""
  cpu = backend.resolve(jax.devices()[:1], "wgan_gp")
  run_backend = cpu if unrolled else dataclasses.replace(cpu, unrolled_d_updates=0)
  config = tiny("wgan_gp", n_critic=3)
  before, after, metrics, batch = one_step(config, run_backend=run_backend)
  # The same three critic updates and one generator update, written out by hand.
  generator, critic = gan.models(config, axis_name=None)
  txs = gan.optimizers(config)
  key = jax.random.fold_in(before.rng, before.step)
  g_key, d_key_ = jax.random.split(key)
  n = config.batch_size

  def fakes_from(key_):
    z = gan.latent(config, key_, n)
    out, _ = generator.apply({"params": before.params["generator"],
                              "batch_stats": before.batch_stats["generator"]}, z, train=True,
                             mutable=["batch_stats"])
    return out

  d_params, d_opt = before.params["discriminator"], before.opt_state["discriminator"]
  for i in range(3):
    k_fake, k_gp = jax.random.split(jax.random.fold_in(d_key_, i))
    real = jnp.asarray(batch["image"][i])

    def loss(p):
      d = lambda x: critic.apply({"params": p}, x)
      fake = fakes_from(k_fake)
      penalty, _ = losses.gradient_penalty(d, real, fake, k_gp, 10.0)
      return losses.wasserstein_critic_loss(d(real), d(fake)) + penalty

    grads = jax.grad(loss)(d_params)
    updates, d_opt = txs["discriminator"].update(grads, d_opt, d_params)
    d_params = jax.tree.map(lambda p, u: p + u, d_params, updates)
  for a, b in zip(jax.tree.leaves(after.params["discriminator"]), jax.tree.leaves(d_params)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)

  def g_loss(p):
    z = gan.latent(config, g_key, n)
    fake, _ = generator.apply({"params": p, "batch_stats": before.batch_stats["generator"]}, z,
                              train=True, mutable=["batch_stats"])
    return losses.wasserstein_generator_loss(critic.apply({"params": d_params}, fake))

  g_grads = jax.grad(g_loss)(before.params["generator"])
  updates, _ = txs["generator"].update(g_grads, before.opt_state["generator"],
                                       before.params["generator"])
  expected = jax.tree.map(lambda p, u: p + u, before.params["generator"], updates)
  for a, b in zip(jax.tree.leaves(after.params["generator"]), jax.tree.leaves(expected)):
    np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)
  assert metrics["gradient_penalty"] > 0


@pytest.mark.parametrize("name,overrides", [
    ("wgan", dict(critic_warmup=True)),   # both steps are 100-critic warmup steps
    ("wgan_gp", dict(n_critic=2)),
])
def test_experiment_trains_and_resumes(tmp_path, name, overrides):
  workdir = str(tmp_path / name)
  state = train.train_and_evaluate(tiny(name, **overrides), workdir)
  assert int(jax.device_get(state.step)) == 2
  resumed = train.train_and_evaluate(tiny(name, num_train_steps=3, **overrides), workdir)
  straight = train.train_and_evaluate(tiny(name, num_train_steps=3, **overrides),
                                      str(tmp_path / "straight"))
  for a, b in zip(jax.tree.leaves(jax.device_get(resumed)), jax.tree.leaves(jax.device_get(straight))):
    np.testing.assert_array_equal(a, b)
