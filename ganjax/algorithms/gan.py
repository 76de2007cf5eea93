"""GAN (Goodfellow et al. 2014) with the DCGAN networks (Radford et al. 2016).

Pure functions over one state pytree:

  init(config, rng, example_batch) -> GANState
  train_step(config, state, batch) -> (state, metrics)   # per device; see parallel.py
  sample(config, state, z) -> images
  latent(config, key, n) -> z

One train step is one iteration of the reference DCGAN loop: the generator
makes a batch of fakes; the discriminator takes one Adam step on the real batch
and on the fakes, each in its own BatchNorm pass (separate real and fake
batch statistics); then the generator takes one Adam step against the updated
discriminator. The generator's forward pass is computed once and reused for
its own update through `jax.vjp`, as in the reference, where both updates
share the graph of `fake = G(z)`.
"""

import functools

import flax
import jax
import jax.numpy as jnp
import optax
from jax import lax

from ganjax import losses
from ganjax.errors import GanjaxError
from ganjax.models import dcgan
from ganjax.parallel import AXIS

NETWORKS = ("generator", "discriminator")


@flax.struct.dataclass
class GANState:
  step: jax.Array            # int32 [], completed train steps
  rng: jax.Array             # uint32 [2], the run's key; step keys are fold_in(rng, step)
  params: dict               # {"generator": ..., "discriminator": ...}
  batch_stats: dict          # BatchNorm running statistics, same keys
  opt_state: dict            # optax states, same keys


def validate(config) -> None:
  """Raises GanjaxError for a config this algorithm cannot train."""
  if config.loss not in losses.GENERATOR_LOSSES:
    raise GanjaxError(f"loss={config.loss!r} is not a GAN generator loss; use one of"
                      f" {', '.join(losses.GENERATOR_LOSSES)}")
  if not 0.0 < config.real_label <= 1.0:
    raise GanjaxError(f"real_label={config.real_label} must be in (0, 1]; 0.9 is the usual"
                      " one-sided label smoothing, 1.0 none")
  if config.noise not in ("normal", "uniform"):
    raise GanjaxError(f"noise={config.noise!r} must be 'normal' or 'uniform'")
  try:
    dcgan.num_stages(config.image_size)
  except ValueError as e:
    raise GanjaxError(str(e) + "; set --config.image_size") from e


def models(config, axis_name: str | None = AXIS):
  generator = dcgan.Generator(image_size=config.image_size, channels=config.channels,
                              width=config.g_width, axis_name=axis_name)
  discriminator = dcgan.Discriminator(image_size=config.image_size, width=config.d_width,
                                      negative_slope=config.leaky_relu_slope,
                                      axis_name=axis_name)
  return generator, discriminator


def optimizers(config):
  adam = functools.partial(optax.adam, b1=config.beta1, b2=config.beta2)
  return {"generator": adam(config.g_lr), "discriminator": adam(config.d_lr)}


def latent(config, key, n: int):
  """n latent vectors from the config's noise distribution."""
  shape = (n, config.latent_dim)
  if config.noise == "uniform":
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  return jax.random.normal(key, shape)


def init(config, rng, example_batch) -> GANState:
  """A fresh state; `example_batch` gives the image shape. Runs on the host's default device."""
  generator, discriminator = models(config, axis_name=None)
  g_key, d_key = jax.random.split(jax.random.fold_in(rng, 0x1417))
  z = latent(config, g_key, 2)
  g_vars = generator.init(g_key, z, train=False)
  d_vars = discriminator.init(d_key, jnp.asarray(example_batch["image"][:2]), train=False)
  params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
  txs = optimizers(config)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      rng=rng,
      params=params,
      batch_stats={"generator": g_vars["batch_stats"], "discriminator": d_vars["batch_stats"]},
      opt_state={k: txs[k].init(params[k]) for k in NETWORKS})


def device_latent(config, key, local_batch: int):
  """This device's share of the global batch of latents.

  The global batch of noise is drawn from `key` on every device and each
  device takes its own rows, so a step sees the same noise on 1 device or 8.
  """
  n_devices = lax.axis_size(AXIS)
  z = latent(config, key, local_batch * n_devices)
  return lax.dynamic_slice_in_dim(z, lax.axis_index(AXIS) * local_batch, local_batch)


def train_step(config, state: GANState, batch):
  """One D update then one G update, on this device's slice of the batch."""
  generator, discriminator = models(config)
  txs = optimizers(config)
  g_loss_fn = losses.GENERATOR_LOSSES[config.loss]
  real = batch["image"]
  key = jax.random.fold_in(state.rng, state.step)
  z = device_latent(config, key, real.shape[0])
  g_params, d_params = state.params["generator"], state.params["discriminator"]

  def generate(params):
    fake, updates = generator.apply(
        {"params": params, "batch_stats": state.batch_stats["generator"]}, z,
        train=True, mutable=["batch_stats"])
    return fake, updates["batch_stats"]

  fake, generator_vjp, g_stats = jax.vjp(generate, g_params, has_aux=True)

  def run_d(params, stats, images):
    logits, updates = discriminator.apply({"params": params, "batch_stats": stats},
                                          images, train=True, mutable=["batch_stats"])
    return logits, updates["batch_stats"]

  def d_loss_fn(params):
    real_logits, stats = run_d(params, state.batch_stats["discriminator"], real)
    fake_logits, stats = run_d(params, stats, lax.stop_gradient(fake))
    loss = losses.discriminator_loss(real_logits, fake_logits, config.real_label)
    return loss, (stats, real_logits, fake_logits)

  (d_loss, (d_stats, real_logits, fake_logits)), d_grads = (
      jax.value_and_grad(d_loss_fn, has_aux=True)(d_params))
  d_grads = lax.pmean(d_grads, AXIS)
  d_updates, d_opt = txs["discriminator"].update(
      d_grads, state.opt_state["discriminator"], d_params)
  d_params = optax.apply_updates(d_params, d_updates)

  # The generator is scored by the updated discriminator, in training mode;
  # that pass's BatchNorm statistics are not kept.
  def g_loss_of_fake(images):
    logits, _ = run_d(d_params, d_stats, images)
    return g_loss_fn(logits)

  g_loss, fake_cotangent = jax.value_and_grad(g_loss_of_fake)(fake)
  (g_grads,) = generator_vjp(fake_cotangent)
  g_grads = lax.pmean(g_grads, AXIS)
  g_updates, g_opt = txs["generator"].update(g_grads, state.opt_state["generator"], g_params)
  g_params = optax.apply_updates(g_params, g_updates)

  metrics = {
      "d_loss": d_loss,
      "g_loss": g_loss,
      "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
      "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
      "d_grad_norm": optax.global_norm(d_grads),
      "g_grad_norm": optax.global_norm(g_grads),
  }
  new_state = state.replace(
      step=state.step + 1,
      params={"generator": g_params, "discriminator": d_params},
      batch_stats={"generator": g_stats, "discriminator": d_stats},
      opt_state={"generator": g_opt, "discriminator": d_opt})
  return new_state, lax.pmean(metrics, AXIS)


def sample(config, state: GANState, z):
  """Images from latents `z` with the generator in inference mode (running BatchNorm stats)."""
  generator, _ = models(config, axis_name=None)
  return generator.apply({"params": state.params["generator"],
                          "batch_stats": state.batch_stats["generator"]}, z, train=False)
