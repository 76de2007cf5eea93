"""The keys every adversarial (GAN-family) experiment has, with neutral defaults.

Experiment files start from `adversarial()` and change what their paper
says; the config is then locked, so every key a user can set is listed here.
"""

import ml_collections


def adversarial() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.algorithm = "gan"
  c.dataset = "bundled:mnist"
  c.image_size = 32
  c.channels = 1
  c.seed = 0

  # Networks: "dcgan" (models/dcgan.py) for images, "mlp" (models/mlp.py) for 2D points,
  # where `channels` is the dimension of a point.
  c.architecture = "dcgan"
  c.latent_dim = 100
  c.g_width = 64             # generator channels before the last layer (mlp: hidden units)
  c.d_width = 64             # discriminator channels after the first layer (mlp: hidden units)
  c.g_depth = 4              # mlp only: hidden layers of the generator
  c.d_depth = 3              # mlp only: hidden layers of the discriminator
  c.g_norm = "batch"         # mlp only: "batch" or "none" (the DCGAN generator uses BatchNorm)
  c.d_norm = "batch"         # discriminator normalisation: "batch", "layer" or "none"
  c.leaky_relu_slope = 0.2
  c.maxout_pieces = 0        # mlp only: > 0 makes D's hidden units maxout with this many pieces
  c.init_std = 0.0           # mlp only: > 0 draws weights from N(0, init_std), biases 0
  #                            (PacGAN: 0.02); 0 = Flax's defaults
  c.g_hidden_bias = True     # mlp only: biases in G's hidden layers (PacGAN: none before BatchNorm)
  c.bn_momentum = 0.9        # mlp only: weight of the old BatchNorm running statistics
  c.noise = "normal"         # latent distribution: "normal" N(0, 1) or "uniform" U(-1, 1)
  c.minibatch_stddev = 0     # > 0: D gets the minibatch stddev over groups of this size
  c.ema_decay = 0.0          # > 0: samples come from an EMA of G's weights (0.999 is common)

  # Class conditioning (cGAN); 0 classes = unconditional.
  c.num_classes = 0
  c.conditioning = "concat"  # how D sees the label: "concat" (one-hot channels) or "projection"
  c.label_dim = 10           # size of G's label embedding, concatenated to z (see experiments/cgan.py)

  # Objective.
  c.loss = "non_saturating"  # non_saturating, minimax, wasserstein, hinge, least_squares
  c.real_label = 1.0         # < 1 is one-sided label smoothing (0.9 is common)
  c.separate_batches = True  # D sees real and fake batches in separate BatchNorm passes
  c.gp_weight = 0.0          # gradient penalty lambda (WGAN-GP: 10); 0 = off
  c.weight_clip = 0.0        # clip D's weights to [-c, c] after each update (WGAN: 0.01); 0 = off
  c.adversarial_weight = 1.0  # weight of the adversarial term in G's loss
  c.feature_matching = 0.0   # weight of ||E f(x) - E f(G(z))||^2 in G's loss, f = D's last hidden layer
  c.pack = 1                 # PacGAN packing (Lin et al. 2018): D sees `pack` samples, all real or
  #                            all generated, concatenated on the channel (mlp: feature) axis as one
  #                            input; a step draws batch_size * pack real and fake samples

  # Optimisation.
  c.batch_size = 128         # global, over all devices and hosts: inputs of D (see pack)
  c.num_train_steps = 10_000  # generator iterations
  c.n_critic = 1             # discriminator updates per generator update (the name is WGAN's,
  #                            whose papers call the discriminator a critic)
  c.critic_warmup = False    # WGAN's 100 D updates for the first 25 and every 500th G step
  c.optimizer = "adam"       # "adam" or "rmsprop" (PyTorch's: decay 0.99, eps outside the root)
  c.g_lr = 2e-4
  c.d_lr = 2e-4              # a different d_lr than g_lr is TTUR (Heusel et al. 2017)
  c.beta1 = 0.5
  c.beta2 = 0.999
  c.lr_decay_start = 1.0     # both learning rates are constant until this fraction of the
  #                            run, then fall linearly to 0 at its end (1.0: constant)
  c.simultaneous_updates = False  # G's gradient against D before D's update of the same step
  #                                 (both step from one point, as ALI/PacGAN train); n_critic 1

  # Data.
  c.toy_points = 0           # toy: mixtures only: 0 = fresh points every step; N = a training
  #                            set of N points drawn once per run (PacGAN: 100,000)
  c.tfds_data_dir = ""       # "" = TFDS default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.shuffle_buffer = 10_000

  # Reporting and checkpoints.
  c.log_every = 50
  c.sample_every = 250
  c.num_samples = 64
  c.checkpoint_every = 500
  c.keep_checkpoints = 3
  evaluation(c)
  run_options(c)
  return c


def evaluation(c: ml_collections.ConfigDict) -> None:
  """Evaluation during training (ganjax/evaluation/suite.py picks the metrics)."""
  c.eval_every = 1000        # evaluate every this many steps and keep the best checkpoint; 0 = off
  c.eval_metrics = "cheap"   # "cheap" (classifier and mixture metrics) or "all" (+ Inception)
  c.eval_samples = 0         # samples per evaluation; 0 = the metric's default
  c.inception_weights = ""   # pt_inception-2015-12-05-6726825d.pth; "" = look it up


def run_options(c: ml_collections.ConfigDict) -> None:
  """Keys of every experiment that change how it runs, not what it learns."""
  c.num_seeds = 1            # > 1: train this many independent replicas (seeds seed, seed+1, ...)
  #                            in one program, vmapped over a leading seed axis of the state
  c.dtype = "float32"        # compute dtype: "float32" or "bfloat16" (GPU/TPU); parameters and
  #                            optimizer state stay float32
  c.on_nonfinite = "stop"    # a NaN/inf loss or parameter: "stop" the run (the last good
  #                            checkpoint is kept), or "rollback" to that checkpoint once and go on
  c.rollback_lr_factor = 0.5  # learning rates are multiplied by this after a rollback


def cpu_sized(c: ml_collections.ConfigDict) -> None:
  """Half the DCGAN paper's width (32) and batch (64): the bundled-MNIST defaults,
  which train in minutes on a laptop CPU."""
  c.g_width = c.d_width = 32
  c.batch_size = 64


def tfds_preset(c: ml_collections.ConfigDict, dataset: str, image_size: int,
                num_train_steps: int) -> None:
  """A 3-channel tfds dataset at the paper's width (64) and a long schedule."""
  c.dataset, c.image_size, c.channels = dataset, image_size, 3
  c.g_width = c.d_width = 64
  c.num_train_steps = num_train_steps
  c.sample_every = 1000
  c.checkpoint_every = 5000


def wgan_gp_objective(c: ml_collections.ConfigDict) -> None:
  """WGAN-GP's objective and optimiser (Gulrajani et al. 2017, Algorithm 1): the
  Wasserstein loss with a gradient penalty of weight 10, a discriminator without BatchNorm
  (LayerNorm), Adam lr 1e-4 with betas (0, 0.9), 5 discriminator updates per generator update."""
  c.algorithm = "wgan_gp"
  c.loss = "wasserstein"
  c.gp_weight = 10.0
  c.d_norm = "layer"
  c.optimizer = "adam"
  c.g_lr = c.d_lr = 1e-4
  c.beta1, c.beta2 = 0.0, 0.9
  c.n_critic = 5


PRESETS_2D = (None, "", "wgan_gp", "wgan_gp_pack2", "pacgan_paper")


def toy_mixture(mixture: str, preset: str | None) -> ml_collections.ConfigDict:
  """experiments/toy_<mixture>.py: a 2D mixture (toy:ring or toy:grid) with MLP
  networks, as in PacGAN's 2D experiments: 2-d latent noise, a generator of 4 x 400
  ReLU units with BatchNorm, a discriminator of 3 x 200 units, batch 256; the
  non-saturating loss at Adam lr 1e-3 whose last half decays linearly to 0
  (lr_decay_start 0.5), 3,000 steps on the ring and 2,500 on the grid; sample figures
  are scatter plots of 2,500 points. Preset `wgan_gp`: WGAN-GP as in its authors'
  toy script (no BatchNorm, 5 discriminator updates, penalty 0.1) but with penalty 1.0 on
  the grid, where at 0.1 the discriminator's outputs drifted and fewer modes were found;
  the same lr and decay, 500 generator steps on the ring and 1,500 on the grid.
  Preset `wgan_gp_pack2`: that WGAN-GP with PacGAN packing 2, networks of 128
  units and batch 128, 20,000 steps (a twentieth of PacGAN's 400,000). Preset
  `pacgan_paper`: PacGAN's own protocol (configs.pacgan_paper).
  docs/toy_mixtures.md has the tuning runs and the 10-seed results."""
  if preset not in PRESETS_2D:
    raise ValueError(f"experiments/toy_{mixture}.py has no preset {preset!r}; presets:"
                     f" {', '.join(p for p in PRESETS_2D if p)}")
  if preset == "pacgan_paper":
    return pacgan_paper(mixture)
  c = adversarial()
  c.algorithm = "gan"
  c.loss = "non_saturating"
  c.dataset = f"toy:{mixture}"
  c.architecture = "mlp"
  c.channels = 2             # a sample is a 2D point
  c.latent_dim = 2
  c.g_width, c.g_depth, c.g_norm = 400, 4, "batch"
  c.d_width, c.d_depth, c.d_norm = 200, 3, "none"
  c.batch_size = 256
  c.num_samples = 2500       # the points VEEGAN and PacGAN score
  c.log_every = 100
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.num_train_steps = {"ring": 3000, "grid": 2500}[mixture]
  if preset in ("wgan_gp", "wgan_gp_pack2"):
    wgan_gp_objective(c)
    c.d_norm = c.g_norm = "none"
    c.gp_weight = {"ring": 0.1, "grid": 1.0}[mixture]
    c.num_train_steps = {"ring": 500, "grid": 1500}[mixture]
  if preset == "wgan_gp_pack2":
    c.pack = 2
    c.g_width = c.d_width = 128
    c.batch_size = 128
    c.num_train_steps = 20_000
    c.sample_every = c.checkpoint_every = 2_500
  c.g_lr = c.d_lr = 1e-3
  c.lr_decay_start = 0.5     # the second half falls linearly to 0: it makes the points precise
  return c


def pacgan_paper(mixture: str) -> ml_collections.ConfigDict:
  """The 2D protocol of PacGAN (Lin et al. 2018, Table 1), from its authors' released
  configuration of the 2DRing and 2DGrid experiments; `pack` 1 is the GAN row, 2-4
  PacGAN2-4. Ten seeds in one program (num_seeds), as the paper's ten trials.

  - data: 100,000 points drawn once per run, read in epochs of 100,000 packed
    inputs at batch 100: 400 epochs are 400,000 steps whatever the packing;
  - one discriminator and one generator step per batch, both gradients taken at
    the same point (the released code's simultaneous update); the non-saturating
    loss;
  - Adam at lr 1e-4, beta1 0.2, beta2 0.999 (the released code passes beta1=0.8
    to Blocks' Adam, whose beta1 is one minus the usual beta1), no decay;
  - generator: 4 x 400 ReLU units, each after a bias-free linear map and BatchNorm
    (running statistics updated with momentum 0.95), linear output; latent 2-d N(0, 1);
  - discriminator: 3 x 200 maxout units of 5 pieces, one linear output;
  - weights N(0, 0.02), biases 0.
  """
  c = toy_mixture(mixture, None)
  c.g_width, c.g_depth, c.g_norm, c.g_hidden_bias = 400, 4, "batch", False
  c.bn_momentum = 0.95
  c.d_width, c.d_depth, c.d_norm, c.maxout_pieces = 200, 3, "none", 5
  c.init_std = 0.02
  c.latent_dim, c.noise = 2, "normal"
  c.loss = "non_saturating"
  c.simultaneous_updates = True
  c.optimizer, c.g_lr, c.d_lr, c.beta1, c.beta2 = "adam", 1e-4, 1e-4, 0.2, 0.999
  c.lr_decay_start = 1.0
  c.batch_size = 100
  c.toy_points = 100_000
  c.num_train_steps = 400_000
  c.num_seeds = 10
  c.num_samples = 2500
  c.log_every = 1000
  c.sample_every = 50_000
  c.checkpoint_every = 10_000
  c.eval_every = 50_000
  return c


def cyclegan() -> ml_collections.ConfigDict:
  """The keys of a CycleGAN experiment, with the paper's values (Zhu et al. 2017)."""
  c = ml_collections.ConfigDict()
  c.algorithm = "cyclegan"
  c.dataset = "bundled:digit_pair"  # unpaired domains: bundled:digit_pair, folder:<path>,
  #                                   tfds:cycle_gan/<pair>
  c.image_size = 256         # the training crop
  c.load_size = 286          # images are resized to load_size, then randomly cropped
  c.flip = True              # random horizontal flips
  c.channels = 3
  c.seed = 0

  # Networks (models/cyclegan.py).
  c.g_width = 64
  c.num_blocks = 9           # residual blocks of the generators (6 for small images)
  c.d_width = 64
  c.d_layers = 3             # 3: the 70x70 PatchGAN

  # Objective.
  c.loss = "least_squares"   # or "non_saturating"
  c.cycle_weight = 10.0      # lambda of the cycle-consistency L1 terms
  c.identity_weight = 0.5    # identity L1 weight, times cycle_weight; 0 = off
  c.pool_size = 50           # history of generated images per direction; 0 = off

  # Optimisation.
  c.batch_size = 1           # global
  c.num_train_steps = 200_000
  c.lr = 2e-4
  c.beta1 = 0.5
  c.beta2 = 0.999
  c.lr_decay_start = 0.5     # fraction of the run after which lr falls linearly to 0
  c.ema_decay = 0.0          # > 0: translate and sample with an EMA of the generators

  # Data.
  c.toy_points = 0           # toy: mixtures only: 0 = fresh points every step; N = a training
  #                            set of N points drawn once per run (PacGAN: 100,000)
  c.tfds_data_dir = ""
  c.shuffle_buffer = 1_000

  # Reporting and checkpoints.
  c.log_every = 100
  c.sample_every = 1000
  c.num_samples = 8          # images per domain in the sample grids
  c.checkpoint_every = 5000
  c.keep_checkpoints = 3
  evaluation(c)
  run_options(c)
  return c


def upgrade(saved: dict) -> dict:
  """The config.json of a run saved by an older ganjax, in the current keys: `lr_decay` (the
  final fraction of the run over which the rates fell, 0 = constant) is lr_decay_start =
  1 - lr_decay (1.0 = constant)."""
  saved = dict(saved)
  if "lr_decay" in saved:
    fraction = saved.pop("lr_decay")
    saved.setdefault("lr_decay_start", 1.0 - fraction if fraction else 1.0)
  return saved


def defaults(algorithm: str) -> ml_collections.ConfigDict:
  """Every key of an `algorithm` config with its default value (unlocked)."""
  return cyclegan() if algorithm == "cyclegan" else adversarial()
