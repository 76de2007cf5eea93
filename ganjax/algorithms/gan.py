"""GAN (Goodfellow et al. 2014) with the DCGAN networks (Radford et al. 2016).

Also the shared machinery of every GAN-family algorithm with one generator and
one discriminator: the objective, the number of discriminator updates per
generator update, weight clipping and the gradient penalty are config options (see
ganjax/configs.py); wgan.py sets them as its papers do.

Pure functions over one state pytree:

  init(config, rng, example_batch) -> GANState
  train_step(config, state, batch) -> (state, metrics)   # per device; see parallel.py
  discriminator_updates(config, step) -> int  # discriminator updates in step `step`
  sample(config, state, z) -> images
  latent(config, key, n) -> z

`batch["image"]` has a leading discriminator axis: [n_critic, per-device batch, H, W, C],
the per-device batch holding `pack` samples per discriminator input.
With one discriminator update per step (GAN) a step is one iteration of the
reference DCGAN loop: the generator makes a batch of fakes; the
discriminator takes one step on the real batch and on those fakes; then the
generator takes one step against the updated discriminator, reusing its
forward pass through `jax.vjp`, as the reference reuses `fake = G(z)`. With
n_critic > 1 the discriminator updates run in a `lax.scan` (unrolled where the
backend says so, ganjax/backend.py), each on fresh real data and fresh fakes,
and the generator update draws fresh noise, as in the WGAN reference code.

`backend` (ganjax/backend.py, resolved once per run by the caller; default: the
stock Flax layers) supplies the convolution layers the networks are built
with and whether the discriminator updates are unrolled. A variant forwards it.

Options that apply to every algorithm here (ganjax/configs.py):
  num_classes > 0   class-conditional (cGAN): G and D take labels. The fakes of
                    a discriminator update carry the labels of its real batch, so
                    real and fake label distributions match and the gradient
                    penalty interpolates examples of one class; the generator
                    update uses the labels of the first real batch.
  feature_matching  adds w * ||E f(x) - E f(G(z))||^2 to G's loss, with f the
                    discriminator's last hidden layer and the expectations over the
                    global batch (Salimans et al. 2016); adversarial_weight 0
                    leaves feature matching alone.
  ema_decay > 0     keeps an exponential moving average of G's weights in the
                    state, ema <- d * ema + (1 - d) * params after every
                    generator update; `sample` uses it, with BatchNorm
                    statistics computed for the EMA weights themselves
                    (`standing_statistics`).
  minibatch_stddev  the minibatch standard-deviation feature in D.
  pack > 1          PacGAN (Lin et al. 2018): D scores `pack` samples at once,
                    all real or all generated, concatenated on the last axis
                    (`pack`); the batch and the noise of a step hold
                    batch_size * pack samples, a device packs its own rows, and
                    the generator's loss is on packed fakes too.
  dtype             "bfloat16" runs the networks' hidden layers in bfloat16
                    (GPU/TPU); parameters, optimizer states, BatchNorm
                    statistics, the output layers (images, logits), losses and
                    the gradient penalty stay float32. "float32" is the default.
"""


import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ganjax import losses, validation
from ganjax.backend import STOCK_BACKEND, Backend
from ganjax.errors import GanjaxError
from ganjax.models import STOCK, Layers, dcgan, mlp
from ganjax.parallel import AXIS

NETWORKS = ("generator", "discriminator")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@flax.struct.dataclass
class GANState:
  step: jax.Array            # int32 [], completed generator iterations
  rng: jax.Array             # uint32 [2], the run's key; step keys are fold_in(rng, step)
  params: dict               # {"generator": ..., "discriminator": ...}
  batch_stats: dict          # BatchNorm running statistics, same keys ({} where none)
  opt_state: dict            # optax states, same keys
  ema: dict                  # EMA of the generator's params ({} when ema_decay = 0)


_choice = validation.choice


def compute_dtype(config):
  """The networks' compute dtype from config.dtype (float32 when a config has no such key;
  validation.common refuses other names)."""
  return DTYPES[config.get("dtype", "float32")]


def validate(config) -> None:
  """Raises GanjaxError for a config this algorithm cannot train (validation.common first)."""
  validation.common(config)
  _choice(config, "loss", tuple(losses.OBJECTIVES))
  _choice(config, "noise", ("normal", "uniform"))
  _choice(config, "d_norm", ("batch", "layer", "none"))
  _choice(config, "optimizer", ("adam", "rmsprop"))
  _choice(config, "architecture", ("dcgan", "mlp"))
  _choice(config, "conditioning", ("concat", "projection"))
  _choice(config, "g_norm", ("batch",) if config.architecture == "dcgan" else ("batch", "none"))
  if config.num_classes < 0:
    raise GanjaxError(f"num_classes={config.num_classes} must be >= 0 (0: unconditional)")
  if config.num_classes and config.architecture != "dcgan":
    raise GanjaxError(f"num_classes={config.num_classes}: class conditioning is built for"
                      " architecture='dcgan'; set --config.num_classes=0")
  if packing(config) < 1:
    raise GanjaxError(f"pack={config.pack} must be at least 1 (samples per discriminator"
                      " input; 1 = no packing, 2 to 4 in PacGAN)")
  if packing(config) > 1 and config.num_classes:
    raise GanjaxError(f"pack={config.pack} with num_classes={config.num_classes}: packing is"
                      " built for unconditional models; set --config.pack=1 (or"
                      " --config.num_classes=0)")
  if config.feature_matching < 0 or config.adversarial_weight < 0:
    raise GanjaxError("feature_matching and adversarial_weight must be >= 0")
  if config.feature_matching == 0 and config.adversarial_weight == 0:
    raise GanjaxError("adversarial_weight=0 and feature_matching=0 leave the generator no"
                      " loss; set one of them above 0")
  if config.minibatch_stddev < 0:
    raise GanjaxError(f"minibatch_stddev={config.minibatch_stddev} must be >= 0 (a group"
                      " size; 4 is usual, 0 = off)")
  if config.minibatch_stddev:
    local = config.batch_size // jax.device_count()
    if config.minibatch_stddev > local:
      raise GanjaxError(
          f"minibatch_stddev={config.minibatch_stddev}: a group larger than the per-device"
          f" batch of {local} shrinks to it, so the result would depend on the device count;"
          f" set --config.minibatch_stddev to at most {local} (or raise batch_size)")
    if local % config.minibatch_stddev:
      raise GanjaxError(
          f"minibatch_stddev={config.minibatch_stddev}: the per-device batch of {local}"
          " does not split into groups of that size; use a divisor of it")
  if not 0.0 < config.real_label <= 1.0:
    raise GanjaxError(f"real_label={config.real_label} must be in (0, 1]; 0.9 is the usual"
                      " one-sided label smoothing, 1.0 none")
  if config.real_label < 1.0 and config.loss not in losses.SMOOTHABLE:
    raise GanjaxError(f"real_label={config.real_label}: label smoothing needs a loss with a"
                      f" real target ({', '.join(losses.SMOOTHABLE)}), not loss={config.loss!r}")
  if config.n_critic < 1:
    raise GanjaxError(f"n_critic={config.n_critic} must be at least 1 (discriminator updates per"
                      " generator update)")
  if config.gp_weight < 0 or config.weight_clip < 0:
    raise GanjaxError("gp_weight and weight_clip must be >= 0 (0 turns them off)")
  if config.gp_weight > 0 and config.d_norm == "batch":
    raise GanjaxError(
        f"d_norm='batch' with gp_weight={config.gp_weight}: the gradient penalty needs each"
        " example's own discriminator gradient, which BatchNorm mixes across the batch; set"
        " --config.d_norm=layer (or none)")
  if config.gp_weight > 0 and config.minibatch_stddev:
    raise GanjaxError(
        f"minibatch_stddev={config.minibatch_stddev} with gp_weight={config.gp_weight}: the"
        " gradient penalty needs each example's own discriminator gradient, which the minibatch"
        " standard deviation mixes across its group; set --config.minibatch_stddev=0 (or"
        " --config.gp_weight=0)")
  if config.get("maxout_pieces", 0) < 0 or config.get("init_std", 0.0) < 0:
    raise GanjaxError(f"maxout_pieces={config.maxout_pieces} and init_std={config.init_std}"
                      " must be >= 0 (0: LeakyReLU units; Flax's default initialisation)")
  if not 0.0 < config.get("bn_momentum", 0.9) < 1.0:
    raise GanjaxError(f"bn_momentum={config.bn_momentum} must be in (0, 1): the weight of the"
                      " old running statistics (0.9 is Flax's usual, 0.95 PacGAN's)")
  mlp_only = [k for k, default in MLP_ONLY.items() if config.get(k, default) != default]
  if mlp_only and config.architecture != "mlp":
    raise GanjaxError(f"{', '.join(f'{k}={config[k]}' for k in mlp_only)}: built for"
                      " architecture='mlp'; leave them at their defaults"
                      f" ({', '.join(f'{k}={MLP_ONLY[k]}' for k in mlp_only)})")
  if config.get("simultaneous_updates", False) and (config.n_critic != 1
                                                    or config.critic_warmup):
    raise GanjaxError(f"simultaneous_updates with n_critic={config.n_critic} (critic_warmup="
                      f"{config.critic_warmup}): both networks step from the same point only"
                      " with one discriminator update per generator update; set"
                      " --config.n_critic=1 --config.critic_warmup=False")
  if config.architecture == "dcgan":
    try:
      dcgan.num_stages(config.image_size)
    except ValueError as e:
      raise GanjaxError(str(e) + "; set --config.image_size") from e


# Keys of the MLP networks only, with the values that leave them off.
MLP_ONLY = {"maxout_pieces": 0, "init_std": 0.0, "g_hidden_bias": True, "bn_momentum": 0.9}


def discriminator_updates(config, step: int) -> int:
  """Discriminator updates in generator iteration `step` (0-based).

  With `critic_warmup`, the WGAN reference schedule: 100 for the first 25
  generator iterations and for every 500th, else `n_critic`.
  """
  if config.critic_warmup and (step < 25 or step % 500 == 0):
    return 100
  return config.n_critic


def models(config, axis_name: str | None = AXIS, layers: Layers = STOCK):
  """(generator, discriminator) of the config, built with the convolutions of `layers`."""
  dtype = compute_dtype(config)
  if config.architecture == "mlp":
    init_std = config.get("init_std", 0.0)
    generator = mlp.Generator(out_dim=config.channels, width=config.g_width,
                              depth=config.g_depth, norm=config.g_norm, axis_name=axis_name,
                              dtype=dtype, hidden_bias=config.get("g_hidden_bias", True),
                              momentum=config.get("bn_momentum", 0.9), init_std=init_std)
    discriminator = mlp.Discriminator(width=config.d_width, depth=config.d_depth,
                                      negative_slope=config.leaky_relu_slope,
                                      norm=config.d_norm, axis_name=axis_name,
                                      minibatch_stddev=config.minibatch_stddev, dtype=dtype,
                                      maxout_pieces=config.get("maxout_pieces", 0),
                                      init_std=init_std)
    return generator, discriminator
  generator = dcgan.Generator(image_size=config.image_size, channels=config.channels,
                              width=config.g_width, axis_name=axis_name,
                              num_classes=config.num_classes, label_dim=config.label_dim,
                              dtype=dtype, conv_transpose=layers.conv_transpose)
  discriminator = dcgan.Discriminator(image_size=config.image_size, width=config.d_width,
                                      negative_slope=config.leaky_relu_slope,
                                      norm=config.d_norm, axis_name=axis_name,
                                      num_classes=config.num_classes,
                                      conditioning=config.conditioning,
                                      minibatch_stddev=config.minibatch_stddev, dtype=dtype,
                                      conv=layers.conv)
  return generator, discriminator


def learning_rate(config, lr: float, updates_per_step: int = 1):
  """`lr` until the fraction `lr_decay_start` of the run, then falling linearly to 0 at
  its end (an optax schedule over optimizer updates); `lr` itself when lr_decay_start is 1.

  An optimizer makes `updates_per_step` updates per generator iteration (the
  discriminator: n_critic), so both networks' rates fall over the same generator
  iterations. The extra discriminator updates of `critic_warmup` are not counted:
  with it the discriminator's decay starts a little early.
  """
  start = config.get("lr_decay_start", 1.0)
  if start >= 1.0:
    return lr
  total = config.num_train_steps * updates_per_step
  begin = int(round(start * total))
  return optax.linear_schedule(lr, 0.0, transition_steps=max(total - begin, 1),
                               transition_begin=begin)


def optimizers(config):
  def make(lr):
    if config.optimizer == "rmsprop":  # as torch.optim.RMSprop, which the WGAN reference uses
      return optax.rmsprop(lr, decay=0.99, eps=1e-8, eps_in_sqrt=False)
    return optax.adam(lr, b1=config.beta1, b2=config.beta2)
  return {"generator": make(learning_rate(config, config.g_lr)),
          "discriminator": make(learning_rate(config, config.d_lr, config.n_critic))}


def latent(config, key, n: int):
  """n latent vectors from the config's noise distribution."""
  shape = (n, config.latent_dim)
  if config.noise == "uniform":
    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
  return jax.random.normal(key, shape)


def init(config, rng, example_batch, networks=None, backend: Backend = STOCK_BACKEND) -> GANState:
  """A fresh state; `example_batch["image"]` ([B, H, W, C]) gives the image shape.

  `networks(config, axis_name, layers)` -> (generator, discriminator) builds the
  networks (default: `models`); a variant with its own discriminator passes its
  builder here and to `train_step` (algorithms/sngan.py). The parameters do not
  depend on `backend`'s layers, which have the stock layers' parameters.
  """
  generator, discriminator = (networks or models)(config, None, backend.layers)
  g_key, d_key = jax.random.split(jax.random.fold_in(rng, 0x1417))
  labels = jnp.zeros((2,), jnp.int32) if config.num_classes else None
  g_vars = generator.init(g_key, latent(config, g_key, 2), labels, train=False)
  m = packing(config)
  example = jnp.asarray(example_batch["image"][:2])
  example = pack(jnp.concatenate([example] * m), m)  # D's inputs have m times the channels
  d_vars = discriminator.init(d_key, example, labels, train=False)
  params = {"generator": g_vars["params"], "discriminator": d_vars["params"]}
  txs = optimizers(config)
  return GANState(
      step=jnp.zeros((), jnp.int32),
      rng=rng,
      params=params,
      batch_stats={"generator": g_vars.get("batch_stats", {}),
                   "discriminator": d_vars.get("batch_stats", {})},
      opt_state={k: txs[k].init(params[k]) for k in NETWORKS},
      ema=params["generator"] if config.ema_decay else {})


def ema_update(decay: float, ema, params):
  """ema <- decay * ema + (1 - decay) * params, leaf by leaf."""
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)


def pack(x, m: int):
  """m samples per discriminator input (PacGAN): x [m * N, ..., C] -> [N, ..., m * C].

  Packed input i concatenates samples i * m, ..., i * m + m - 1, in that order, on the
  last axis (the channels of an image, the features of a point); pack(x, 1) is x.
  """
  if m == 1:
    return x
  if x.shape[0] % m:
    raise ValueError(f"a batch of {x.shape[0]} samples does not pack into inputs of {m}")
  x = x.reshape((x.shape[0] // m, m) + x.shape[1:])
  x = jnp.moveaxis(x, 1, -2)  # [N, ..., m, C]
  return x.reshape(x.shape[:-2] + (m * x.shape[-1],))


def packing(config) -> int:
  """Samples per discriminator input: config.pack (1 for a config without the key)."""
  return config.get("pack", 1)


def device_latent(config, key, local_batch: int):
  """This device's share of the global batch of latents.

  The global batch of noise is drawn from `key` on every device and each
  device takes its own rows, so a step sees the same noise on 1 device or 8.
  """
  z = latent(config, key, local_batch * lax.axis_size(AXIS))
  return lax.dynamic_slice_in_dim(z, lax.axis_index(AXIS) * local_batch, local_batch)


def _apply(module, params, stats, *args, train=True, **kwargs):
  """module(*args) in training mode -> (output, updated BatchNorm statistics)."""
  if not stats:
    return module.apply({"params": params}, *args, train=train, **kwargs), stats
  out, updates = module.apply({"params": params, "batch_stats": stats}, *args, train=train,
                              mutable=["batch_stats"], **kwargs)
  return out, updates["batch_stats"]


def discriminator_update(config, discriminator, tx, params, stats, opt_state, real, fake, key,
                         labels=None):
  """One optimizer step of the discriminator on a real and a fake batch (this device's slices).

  `labels` (conditional models) are the labels of both the real and the fake batch.

  Returns (params, stats, opt_state, metrics). Gradients and metrics are
  averaged over the devices; weights are clipped after the update when
  `weight_clip` > 0.
  """
  d_loss_fn = losses.OBJECTIVES[config.loss][0]
  fake = lax.stop_gradient(fake)

  def loss_fn(p):
    if config.separate_batches:
      real_out, new_stats = _apply(discriminator, p, stats, real, labels)
      fake_out, new_stats = _apply(discriminator, p, new_stats, fake, labels)
    else:
      both_labels = None if labels is None else jnp.concatenate([labels, labels])
      both, new_stats = _apply(discriminator, p, stats, jnp.concatenate([real, fake]), both_labels)
      real_out, fake_out = jnp.split(both, 2)
    loss = d_loss_fn(real_out, fake_out, config.real_label)
    penalty = jnp.zeros(())
    if config.gp_weight > 0:
      penalty, _ = losses.gradient_penalty(
          lambda x: _apply(discriminator, p, {}, x, labels)[0], real, fake, key, config.gp_weight,
          axis_name=AXIS)
    return loss + penalty, (new_stats, real_out, fake_out, loss, penalty)

  (_, (stats, real_out, fake_out, loss, penalty)), grads = (
      jax.value_and_grad(loss_fn, has_aux=True)(params))
  grads = lax.pmean(grads, AXIS)
  updates, opt_state = tx.update(grads, opt_state, params)
  params = optax.apply_updates(params, updates)
  metrics = {"d_loss": loss, "d_grad_norm": optax.global_norm(grads)}
  if config.loss in ("wasserstein", "hinge"):  # the discriminator's estimate E[D(x)] - E[D(G(z))]
    metrics["wasserstein"] = jnp.mean(real_out) - jnp.mean(fake_out)
  if config.loss in ("non_saturating", "minimax"):
    metrics["d_real"] = jnp.mean(jax.nn.sigmoid(real_out))
    metrics["d_fake"] = jnp.mean(jax.nn.sigmoid(fake_out))
  if config.gp_weight > 0:
    metrics["gradient_penalty"] = penalty
  if config.weight_clip > 0:
    c = config.weight_clip
    leaves = jax.tree.leaves(params)
    clipped = sum(jnp.sum(jnp.abs(w) > c) for w in leaves)
    metrics["clipped_fraction"] = clipped / sum(w.size for w in leaves)
    params = jax.tree.map(lambda w: jnp.clip(w, -c, c), params)
  return params, stats, opt_state, lax.pmean(metrics, AXIS)


def feature_matching_loss(real_features, fake_features):
  """||E f(x) - E f(G(z))||^2 over the global batch, from this device's features [B, F].

  The device means are averaged over the mesh (pmean) for the value; the
  gradient reaches this device's fakes as the derivative of the global loss
  would (the global mean is this device's mean plus a constant), so that the
  pmean of the devices' gradients is the gradient of the global loss.
  """
  real_mean = lax.pmean(jnp.mean(lax.stop_gradient(real_features), axis=0), AXIS)
  local = jnp.mean(fake_features, axis=0)
  fake_mean = local + lax.stop_gradient(lax.pmean(local, AXIS) - local)
  return jnp.sum(jnp.square(real_mean - fake_mean))


def train_step(config, state: GANState, batch, networks=None,
               backend: Backend = STOCK_BACKEND):
  """`n` discriminator updates (n = batch["image"].shape[0]) then one generator update.

  `networks`: as in `init`. The discriminator updates are straight-line code where
  `backend.unroll_d_updates(n)`, else the body of a `lax.scan`, whose discriminator is
  built with `backend.loop_layers`. With `simultaneous_updates` the generator's
  gradient is taken against the discriminator the step started from, so that both
  networks step from the same point (simultaneous gradient descent, as the ALI and
  PacGAN code trains); otherwise against the updated one.
  """
  networks = networks or models
  generator, discriminator = networks(config, AXIS, backend.layers)
  unrolled = n_critic_of(batch) == 1 or backend.unroll_d_updates(n_critic_of(batch))
  # The networks of the discriminator updates: in a loop body, built with the loop's layers.
  update_generator, update_discriminator = (
      (generator, discriminator) if unrolled else networks(config, AXIS, backend.loop_layers))
  txs = optimizers(config)
  g_loss_fn = losses.OBJECTIVES[config.loss][1]
  reals = batch["image"]
  labels = batch["label"] if config.num_classes else None
  n_critic, local_batch = reals.shape[:2]  # local_batch: this device's samples, pack per input
  m = packing(config)
  key = jax.random.fold_in(state.rng, state.step)
  g_key, updates_key = jax.random.split(key)
  g_params = state.params["generator"]
  g_stats0 = state.batch_stats["generator"]
  g_labels = None if labels is None else labels[0]

  def generate(params, z, y, network=generator):
    return _apply(network, params, g_stats0, z, y)

  # The generator's pass for its own update; with one discriminator update it also
  # makes that update's fakes (the reference DCGAN loop).
  fake, generator_vjp, g_stats = jax.vjp(
      lambda p: generate(p, device_latent(config, g_key, local_batch), g_labels), g_params,
      has_aux=True)

  def one_discriminator_update(carry, xs):
    real, y, i = xs
    d_params, d_stats, d_opt = carry
    k_fake, k_gp = jax.random.split(jax.random.fold_in(updates_key, i))
    fakes = fake if n_critic == 1 else generate(
        g_params, device_latent(config, k_fake, local_batch), y, update_generator)[0]
    d_params, d_stats, d_opt, metrics = discriminator_update(
        config, update_discriminator, txs["discriminator"], d_params, d_stats, d_opt,
        pack(real, m), pack(fakes, m), k_gp, y)
    return (d_params, d_stats, d_opt), metrics

  carry = (state.params["discriminator"], state.batch_stats["discriminator"],
           state.opt_state["discriminator"])
  if n_critic == 1:
    carry, d_metrics = one_discriminator_update(carry, (reals[0], g_labels, 0))
  else:
    xs = (reals, labels, jnp.arange(n_critic))
    carry, d_metrics = lax.scan(one_discriminator_update, carry, xs, unroll=unrolled)
    d_metrics = jax.tree.map(jnp.mean, d_metrics)  # averaged over the discriminator updates
  d_params, d_stats, d_opt = carry

  # The generator is scored by the updated discriminator, in training mode; that
  # pass's BatchNorm statistics are not kept. With simultaneous updates, by the
  # discriminator the step started from, as its own update was.
  judge_params, judge_stats = (
      (state.params["discriminator"], state.batch_stats["discriminator"])
      if config.get("simultaneous_updates", False) else (d_params, d_stats))
  use_features = config.feature_matching > 0
  if use_features:
    (_, real_features), _ = _apply(discriminator, judge_params, judge_stats, pack(reals[0], m),
                                   g_labels, features=True)

  def g_loss_of_fake(images):
    out, _ = _apply(discriminator, judge_params, judge_stats, pack(images, m), g_labels,
                    features=use_features)
    parts = {}
    if use_features:
      out, fake_features = out
      parts["feature_matching"] = feature_matching_loss(real_features, fake_features)
    parts["g_adversarial"] = g_loss_fn(out)
    total = config.adversarial_weight * parts["g_adversarial"]
    if use_features:
      total = total + config.feature_matching * parts["feature_matching"]
    return total, parts

  (g_loss, g_parts), fake_cotangent = jax.value_and_grad(g_loss_of_fake, has_aux=True)(fake)
  (g_grads,) = generator_vjp(fake_cotangent)
  g_grads = lax.pmean(g_grads, AXIS)
  g_updates, g_opt = txs["generator"].update(g_grads, state.opt_state["generator"], g_params)
  g_params = optax.apply_updates(g_params, g_updates)

  metrics = {**d_metrics, "g_loss": lax.pmean(g_loss, AXIS),
             "g_grad_norm": optax.global_norm(g_grads)}
  if use_features:
    metrics.update(lax.pmean(g_parts, AXIS))
  new_state = state.replace(
      step=state.step + 1,
      params={"generator": g_params, "discriminator": d_params},
      batch_stats={"generator": g_stats, "discriminator": d_stats},
      opt_state={"generator": g_opt, "discriminator": d_opt},
      ema=ema_update(config.ema_decay, state.ema, g_params) if config.ema_decay else state.ema)
  return new_state, metrics


def n_critic_of(batch) -> int:
  """The discriminator updates a batch is for: its leading axis."""
  return batch["image"].shape[0]


def preview_inputs(config, examples=None):
  """Fixed inputs of the sample figures -> ((z, labels or None), grid columns or None).

  Conditional models get one row per class, with the same latents in every
  row: a column holds one latent vector drawn as each class.
  """
  del examples  # samples come from noise alone
  key = jax.random.PRNGKey(config.seed + 1)
  if not config.num_classes:
    return (np.asarray(latent(config, key, config.num_samples)), None), None
  per_class = max(1, config.num_samples // config.num_classes)
  z = np.tile(np.asarray(latent(config, key, per_class)), (config.num_classes, 1))
  return (z, np.repeat(np.arange(config.num_classes, dtype=np.int32), per_class)), per_class


def preview(config, state, inputs, backend: Backend = STOCK_BACKEND):
  return sample(config, state, *inputs, backend=backend)


STANDING_BATCHES = 16  # batches of noise averaged into the standing statistics (BigGAN's)
STANDING_SEED = 0x57A2  # their noise's fixed seed: the same weights get the same statistics


def standing_statistics(config, params, key=None, networks=None,
                        backend: Backend = STOCK_BACKEND):
  """The generator's BatchNorm statistics for the weights `params` ("standing
  statistics", Brock et al. 2019), for weights that were never trained with their
  own statistics: the EMA weights.

  The generator runs in training mode, as in a train step, on STANDING_BATCHES
  batches of `batch_size * pack` latents (a train step's) from `key` (default: the fixed
  PRNGKey(STANDING_SEED)), with labels cycling through the classes for a
  conditional model; each BatchNorm layer normalises by its batch's own
  statistics. A layer's mean and variance are the averages over the batches of
  the mean and the (biased) variance of its input over each batch, in float32.
  Returns a tree like the generator's `batch_stats` ({} without BatchNorm).
  `networks`, `backend`: as in `train_step`.
  """
  generator, _ = (networks or models)(config, None, backend.layers)
  key = jax.random.PRNGKey(STANDING_SEED) if key is None else key
  n = config.batch_size * packing(config)
  z = latent(config, key, STANDING_BATCHES * n).reshape(STANDING_BATCHES, n, -1)
  labels = None
  if config.num_classes:
    labels = (jnp.arange(STANDING_BATCHES * n, dtype=jnp.int32)
              % config.num_classes).reshape(STANDING_BATCHES, n)

  def one_batch(z, y):
    found = {}

    def record(next_fn, args, kwargs, context):
      module = context.module
      if isinstance(module, flax.linen.BatchNorm) and context.method_name == "__call__":
        x = jnp.asarray(args[0], jnp.float32)
        feature_axes = {a % x.ndim for a in np.atleast_1d(module.axis)}
        axes = tuple(a for a in range(x.ndim) if a not in feature_axes)
        mean = jnp.mean(x, axes, keepdims=True)
        found[module.path] = {"mean": mean.squeeze(axes),
                              "var": jnp.mean(jnp.square(x - mean), axes)}
      return next_fn(*args, **kwargs)

    with flax.linen.intercept_methods(record):
      _, updates = generator.apply({"params": params}, z, y, train=True,
                                   mutable=["batch_stats"])
    stats = {}
    for path, leaf in found.items():
      node = stats
      for name in path[:-1]:
        node = node.setdefault(name, {})
      node[path[-1]] = leaf
    if jax.tree.structure(stats) != jax.tree.structure(updates.get("batch_stats", {})):
      raise ValueError("the generator keeps batch_stats other than BatchNorm's; standing"
                       " statistics cover BatchNorm layers only")
    return stats

  return jax.tree.map(lambda s: jnp.mean(s, axis=0), jax.vmap(one_batch)(z, labels))


def sampling_variables(config, state: GANState, networks=None,
                       backend: Backend = STOCK_BACKEND) -> dict:
  """The generator's variables that `sample` uses: the trained weights with their
  running BatchNorm statistics or, with ema_decay > 0, the EMA weights with their own
  standing statistics (never the running statistics, which the trained weights
  accumulated). `networks`, `backend`: as in `train_step`."""
  if config.ema_decay:
    return {"params": state.ema,
            "batch_stats": standing_statistics(config, state.ema, None, networks, backend)}
  return {"params": state.params["generator"], "batch_stats": state.batch_stats["generator"]}


def sample(config, state: GANState, z, labels=None, variables=None, networks=None,
           backend: Backend = STOCK_BACKEND):
  """Samples from latents `z` (and int labels, conditional models) with the generator in
  inference mode, with `sampling_variables(config, state)`; pass them as `variables`
  to compute them once for many calls on one state. `networks`, `backend`: as in
  `train_step`."""
  generator, _ = (networks or models)(config, None, backend.layers)
  if variables is None:
    variables = sampling_variables(config, state, networks, backend)
  return generator.apply(variables, z, labels, train=False)
