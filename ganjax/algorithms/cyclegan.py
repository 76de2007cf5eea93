"""CycleGAN (Zhu, Park, Isola and Efros 2017): unpaired image-to-image translation.

Two generators, G: A -> B ("g_ab") and F: B -> A ("g_ba"), and two PatchGAN
discriminators, "d_a" judging domain A (real A against F(B)) and "d_b" judging
domain B (real B against G(A)); the reference code's netD_A is our d_b. One
step, as the reference's optimize_parameters:

  1. generators, one Adam over both: least-squares adversarial terms
     E[(D_B(G(a)) - 1)^2] + E[(D_A(F(b)) - 1)^2], cycle consistency
     lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1) with lambda = cycle_weight (10), and
     identity lambda * identity_weight * (|G(b) - b|_1 + |F(a) - a|_1) (0.5 * 10);
  2. discriminators, one Adam over both, against the fakes of this step's
     forward pass (made before the generator update, as in the reference),
     drawn through the history pools: each loss is
     (E[(D(real) - 1)^2] + E[D(pooled fake)^2]) / 2.

config.dtype "bfloat16" computes the networks' hidden layers in bfloat16
(GPU/TPU); parameters, optimizer states, the pools, the networks' outputs and
every loss stay float32.

Adam lr 2e-4, betas (0.5, 0.999); the learning rate is constant for the first
`lr_decay_start` fraction of training and falls linearly to zero at the end
(the reference: 100 epochs constant, 100 decaying). Weights are N(0, 0.02).

The history pools (Shrivastava et al. 2017) of `pool_size` generated images
per direction are fixed-size arrays in the training state: a new fake goes
into the pool while it fills; afterwards, with probability one half, it
replaces a random pooled image, which the discriminator sees instead. The
query runs over the global batch (gathered from all devices) with the step's
key, so the pools are the same on every device, are checkpointed with
everything else, and never leave the jitted step.

Pure functions, like every algorithm here:

  init(config, rng, example_batch) -> CycleGANState
  train_step(config, state, batch) -> (state, metrics)  # batch: image_a, image_b [1, B, H, W, C]
  translate(config, state, images, direction) -> images   # "AtoB" or "BtoA"
"""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ganjax import losses
from ganjax import validation
from ganjax.algorithms.gan import compute_dtype, ema_update
from ganjax.algorithms.gan import learning_rate as gan_learning_rate
from ganjax.backend import STOCK_BACKEND, Backend
from ganjax.errors import GanjaxError
from ganjax.models import STOCK, Layers
from ganjax.models import cyclegan as nets
from ganjax.parallel import AXIS

GENERATORS = ("g_ab", "g_ba")
DISCRIMINATORS = ("d_a", "d_b")
DIRECTIONS = {"AtoB": "g_ab", "BtoA": "g_ba"}


@flax.struct.dataclass
class CycleGANState:
  step: jax.Array        # int32 [], completed steps
  rng: jax.Array         # the run's key; step keys are fold_in(rng, step)
  params: dict           # g_ab, g_ba, d_a, d_b
  opt_state: dict        # {"generators": ..., "discriminators": ...}
  pool: dict             # {"a": fake A images [pool_size, H, W, C], "b": fake B images}
  pool_count: jax.Array  # int32 [], how many pool slots are filled (the same for both)
  ema: dict              # EMA of g_ab and g_ba ({} when ema_decay = 0)


def validate(config) -> None:
  """Raises GanjaxError for a config this algorithm cannot train (validation.common first)."""
  validation.common(config)
  if config.loss not in ("least_squares", "non_saturating"):
    raise GanjaxError(f"loss={config.loss!r}: CycleGAN trains with 'least_squares' (the"
                      " paper) or 'non_saturating'; set --config.loss")
  if config.image_size % 4:
    raise GanjaxError(f"image_size={config.image_size}: the ResNet generator downsamples"
                      " twice, so the size must divide by 4 (e.g. 32, 128, 256)")
  if config.image_size < 32:
    raise GanjaxError(f"image_size={config.image_size}: the 70x70 PatchGAN needs at least"
                      " 32x32 images")
  if config.load_size < config.image_size:
    raise GanjaxError(f"load_size={config.load_size} is smaller than image_size="
                      f"{config.image_size}; images are resized to load_size, then cropped")
  for key in ("cycle_weight", "identity_weight", "pool_size"):
    if config[key] < 0:
      raise GanjaxError(f"{key}={config[key]} must be >= 0")


def discriminator_updates(config, step: int) -> int:
  del config, step
  return 1


def models(config, layers: Layers = STOCK):
  """(ResNet generator, PatchGAN discriminator), built with `layers`' convolutions."""
  dtype = compute_dtype(config)
  generator = nets.ResnetGenerator(channels=config.channels, width=config.g_width,
                                   num_blocks=config.num_blocks, dtype=dtype, conv=layers.conv,
                                   conv_transpose=layers.conv_transpose)
  discriminator = nets.PatchDiscriminator(width=config.d_width, num_layers=config.d_layers,
                                          dtype=dtype, conv=layers.conv)
  return generator, discriminator


def learning_rate(config):
  """Constant, then linear decay to zero over the last (1 - lr_decay_start) of the run,
  as every algorithm's (gan.learning_rate)."""
  return gan_learning_rate(config, config.lr)


def optimizers(config):
  tx = optax.adam(learning_rate(config), b1=config.beta1, b2=config.beta2)
  return {"generators": tx, "discriminators": tx}


def init(config, rng, example_batch, backend: Backend = STOCK_BACKEND) -> CycleGANState:
  generator, discriminator = models(config, backend.layers)
  images = jnp.asarray(example_batch["image"][:1])
  keys = jax.random.split(jax.random.fold_in(rng, 0xC1C), 4)
  params = {
      "g_ab": generator.init(keys[0], images)["params"],
      "g_ba": generator.init(keys[1], images)["params"],
      "d_a": discriminator.init(keys[2], images)["params"],
      "d_b": discriminator.init(keys[3], images)["params"],
  }
  txs = optimizers(config)
  pool = jnp.zeros((config.pool_size,) + images.shape[1:], jnp.float32)
  return CycleGANState(
      step=jnp.zeros((), jnp.int32), rng=rng, params=params,
      opt_state={"generators": txs["generators"].init(_pick(params, GENERATORS)),
                 "discriminators": txs["discriminators"].init(_pick(params, DISCRIMINATORS))},
      pool={"a": pool, "b": pool}, pool_count=jnp.zeros((), jnp.int32),
      ema=_pick(params, GENERATORS) if config.ema_decay else {})


def _pick(tree: dict, keys) -> dict:
  return {k: tree[k] for k in keys}


def pool_query(pool, count, images, key):
  """The history pool's query over a batch, image by image, as the reference ImagePool.

  While the pool has free slots (count < pool size) each image is stored and
  returned. Afterwards each image is, with probability one half, swapped in
  for a uniformly chosen pooled image, which is returned in its place, or
  else returned as it is. Returns (pool, count, returned images).
  """
  size = pool.shape[0]
  if size == 0:
    return pool, count, images

  def one(carry, xs):
    pool, count = carry
    image, k = xs
    k_coin, k_slot = jax.random.split(k)
    filling = count < size
    swap = jax.random.uniform(k_coin) > 0.5
    slot = jnp.where(filling, count, jax.random.randint(k_slot, (), 0, size))
    old = pool[slot]
    pool = pool.at[slot].set(jnp.where(filling | swap, image, old))
    out = jnp.where(filling | ~swap, image, old)
    return (pool, jnp.minimum(count + 1, size)), out

  keys = jax.random.split(key, images.shape[0])
  (pool, count), out = lax.scan(one, (pool, count), (images, keys))
  return pool, count, out


def _global_pool_query(pool, count, local_images, key):
  """pool_query over the global batch, identical on every device; returns this device's rows."""
  local = local_images.shape[0]
  everything = lax.all_gather(local_images, AXIS, tiled=True)
  pool, count, out = pool_query(pool, count, everything, key)
  return pool, count, lax.dynamic_slice_in_dim(out, lax.axis_index(AXIS) * local, local)


def _gan_terms(config):
  """(generator term(fake logits), discriminator loss(real logits, fake logits))."""
  if config.loss == "least_squares":
    return (lambda fake: losses.mean_squared_error(fake, 1.0),
            lambda real, fake: 0.5 * (losses.mean_squared_error(real, 1.0)
                                      + losses.mean_squared_error(fake, 0.0)))
  return (losses.generator_loss_non_saturating,
          lambda real, fake: 0.5 * losses.discriminator_loss(real, fake))


def train_step(config, state: CycleGANState, batch, backend: Backend = STOCK_BACKEND):
  """Both generators, then both discriminators; one step of the reference loop. `backend`
  (ganjax/backend.py) gives the networks' convolution layers."""
  generator, discriminator = models(config, backend.layers)
  txs = optimizers(config)
  g_term, d_loss_fn = _gan_terms(config)
  real_a, real_b = batch["image_a"][0], batch["image_b"][0]
  key = jax.random.fold_in(state.rng, state.step)
  key_a, key_b = jax.random.split(key)
  lam, idt = config.cycle_weight, config.cycle_weight * config.identity_weight

  def g(name, params, x):
    return generator.apply({"params": params[name]}, x)

  def d(name, params, x):
    return discriminator.apply({"params": params[name]}, x)

  def generator_loss(g_params):
    fake_b, fake_a = g("g_ab", g_params, real_a), g("g_ba", g_params, real_b)
    parts = {
        "g_gan_a": g_term(d("d_a", state.params, fake_a)),
        "g_gan_b": g_term(d("d_b", state.params, fake_b)),
        "cycle_a": losses.l1(g("g_ba", g_params, fake_b), real_a),
        "cycle_b": losses.l1(g("g_ab", g_params, fake_a), real_b),
    }
    total = parts["g_gan_a"] + parts["g_gan_b"] + lam * (parts["cycle_a"] + parts["cycle_b"])
    if idt > 0:
      parts["identity_a"] = losses.l1(g("g_ba", g_params, real_a), real_a)
      parts["identity_b"] = losses.l1(g("g_ab", g_params, real_b), real_b)
      total = total + idt * (parts["identity_a"] + parts["identity_b"])
    return total, (parts, fake_a, fake_b)

  g_params = _pick(state.params, GENERATORS)
  (g_loss, (g_parts, fake_a, fake_b)), g_grads = jax.value_and_grad(
      generator_loss, has_aux=True)(g_params)
  g_grads = lax.pmean(g_grads, AXIS)
  updates, g_opt = txs["generators"].update(g_grads, state.opt_state["generators"], g_params)
  g_params = optax.apply_updates(g_params, updates)

  # The discriminators see the fakes through the history pools.
  fake_a, fake_b = lax.stop_gradient(fake_a), lax.stop_gradient(fake_b)
  pool_a, count, fake_a = _global_pool_query(state.pool["a"], state.pool_count, fake_a, key_a)
  pool_b, _, fake_b = _global_pool_query(state.pool["b"], state.pool_count, fake_b, key_b)

  def discriminator_loss(d_params):
    parts = {"d_a": d_loss_fn(d("d_a", d_params, real_a), d("d_a", d_params, fake_a)),
             "d_b": d_loss_fn(d("d_b", d_params, real_b), d("d_b", d_params, fake_b))}
    return parts["d_a"] + parts["d_b"], parts

  d_params = _pick(state.params, DISCRIMINATORS)
  (_, d_parts), d_grads = jax.value_and_grad(discriminator_loss, has_aux=True)(d_params)
  d_grads = lax.pmean(d_grads, AXIS)
  updates, d_opt = txs["discriminators"].update(d_grads, state.opt_state["discriminators"],
                                                d_params)
  d_params = optax.apply_updates(d_params, updates)

  metrics = {**g_parts, **d_parts, "g_loss": g_loss}
  metrics = lax.pmean(metrics, AXIS)
  metrics.update(g_grad_norm=optax.global_norm(g_grads), d_grad_norm=optax.global_norm(d_grads),
                 lr=learning_rate(config)(state.step))
  new_state = state.replace(
      step=state.step + 1, params={**g_params, **d_params},
      opt_state={"generators": g_opt, "discriminators": d_opt},
      pool={"a": pool_a, "b": pool_b}, pool_count=count,
      ema=ema_update(config.ema_decay, state.ema, g_params) if config.ema_decay else state.ema)
  return new_state, metrics


def translate(config, state: CycleGANState, images, direction: str = "AtoB",
              backend: Backend = STOCK_BACKEND):
  """images of one domain -> the other, with the EMA weights when kept."""
  if direction not in DIRECTIONS:
    raise GanjaxError(f"direction={direction!r}: use AtoB or BtoA")
  generator, _ = models(config, backend.layers)
  name = DIRECTIONS[direction]
  params = state.ema[name] if config.ema_decay else state.params[name]
  return generator.apply({"params": params}, images)


def preview_inputs(config, examples):
  """The fixed images of the sample grids: `examples` = {"a": [n, ...], "b": [n, ...]}."""
  n = min(config.num_samples, len(examples["a"]), len(examples["b"]))
  return {"a": np.asarray(examples["a"][:n]), "b": np.asarray(examples["b"][:n])}, n


def preview(config, state, inputs, backend: Backend = STOCK_BACKEND):
  """Six rows: real A, G(A), F(G(A)), real B, F(B), G(F(B))."""
  a, b = inputs["a"], inputs["b"]
  ab = translate(config, state, a, "AtoB", backend)
  ba = translate(config, state, b, "BtoA", backend)
  return jnp.concatenate([a, ab, translate(config, state, ab, "BtoA", backend),
                          b, ba, translate(config, state, ba, "AtoB", backend)])
