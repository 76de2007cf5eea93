"""The metrics that fit a run, picked from its data and algorithm.

One `Evaluator` serves `python -m ganjax evaluate` and evaluation during
training (`eval_every`). It is built once per run (it loads the feature
networks and measures the real data then) and called on a state.

| run | cheap metrics (training default) | added by level "all" |
|---|---|---|
| toy:ring, toy:grid | modes captured, high-quality fraction, reverse KL; precision, recall, density, coverage of the points (2,500 points) | - |
| bundled:mnist | MNIST-classifier FID, IS analogue, label histogram, classes covered, KL from uniform, classifier precision / recall / density / coverage; conditional: conditioning accuracy | Inception FID / IS / KID / precision / recall / density / coverage; conditional: TSTR and TRTR |
| bundled:digit_pair (CycleGAN) | class preserved by each translation, cycle L1, digit-classifier FID of translations | Inception FID of translations |
| other image data (16 x 16 or larger) | sliced Wasserstein distance of Laplacian-pyramid patches (swd, per level swd_<size>; 2,048 images) | Inception FID / IS / KID / precision / recall / density / coverage |
| other image data (CycleGAN) | cycle L1 | Inception FID of translations |

Protocols, chosen by the number of generated samples:

- quick (the default): 10,000 images (2,500 points for the mixtures); the
  Inception reference is the first REAL_IMAGES = 10,000 training images (the
  whole split where it is smaller), in `reference`'s fixed order.
- standard: STANDARD_SAMPLES = 50,000 generated samples against the whole
  training split, the protocol papers report FID, IS and precision/recall
  with.
- custom: any other number of samples (against the quick reference).

The Inception Score always takes 10 splits (5,000 images each under the
standard protocol). Precision and recall (k = 3), density and coverage
(k = 5) compare equal numbers of real and generated examples
(`prdc.compare`): the MNIST classifier's against the 500 held-out test
digits, the mixtures' against as many fresh points of the mixture as there
are generated ones (drawn with a fixed seed). `Evaluator.record` gives what
a score was measured under (protocol, counts, the weights' SHA-256), written
beside the scores in eval.json so that only like is compared with like.

The Inception reference of image runs is the run's dataset (or `reference`:
another dataset spec, or a reference .npz file), measured once per dataset,
split, image size, weights and count and cached (`reference.load`).

Generated images are quantised to uint8 before they are measured, as they
would be by saving them as PNG files, so a score here equals the score of the
same images written out and given to `python -m ganjax fid`. Each
evaluation draws its latents from a fixed key: the scores of two checkpoints
differ by the networks alone.

The sliced Wasserstein distance (evaluation/swd.py) needs no trained network,
so that any image run is scored offline: the first SWD_IMAGES generated images
against the first SWD_IMAGES training images (or of `reference`, a dataset
spec), in the reference's fixed order; fewer where the data has fewer.

Every evaluator has a main metric that decides which checkpoint is the best
(`better`): the classifier FID for MNIST, the Inception FID for other images
(the SWD at the cheap level),
the class-preserved fraction for the digit pair, and for the mixtures the
number of modes captured, ties broken by the high-quality fraction.
"""

import dataclasses
import hashlib
import os

import jax
import jax.numpy as jnp
import numpy as np

from ganjax import algorithms, backend, data
from ganjax.errors import GanjaxError

LEVELS = ("cheap", "all")
IMAGE_SAMPLES = 10_000      # default number of generated images for the image metrics
REAL_IMAGES = 10_000        # at most this many real images in the quick Inception reference
STANDARD_SAMPLES = 50_000   # generated samples of the standard protocol
REAL_POINTS_SEED = 0        # the mixtures' real points for precision/recall
SWD_IMAGES = 2_048          # images per set of the sliced Wasserstein distance


def to_uint8(images) -> np.ndarray:
  """[-1, 1] float images -> uint8, rounded as a PNG writer would."""
  images = np.asarray(images, np.float32)
  return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def host(x) -> np.ndarray:
  """A (replicated) jax array as a host NumPy array, on one host or many."""
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    return np.asarray(x.addressable_data(0))
  return np.asarray(x)


def weights_sha256(state) -> str:
  """The SHA-256 (hex) of a state's networks: every array of its params, batch_stats and
  ema (those it has), in the order of their tree paths, each hashed with its path,
  dtype and shape. Equal weights hash equal, whatever file or device count saved them;
  the optimiser's state and the step do not count."""
  digest = hashlib.sha256()
  networks = {name: getattr(state, name) for name in ("params", "batch_stats", "ema")
              if hasattr(state, name)}
  for path, leaf in jax.tree_util.tree_flatten_with_path(networks)[0]:
    array = np.ascontiguousarray(host(leaf))
    digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype.name}|{array.shape}|".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


@dataclasses.dataclass(frozen=True)
class MainMetric:
  """What ranks checkpoints: `keys` compared in order, each higher or lower is better."""
  keys: tuple[str, ...]
  higher_is_better: tuple[bool, ...]

  def score(self, result: dict) -> tuple | None:
    if not all(k in result and np.isfinite(result[k]) for k in self.keys):
      return None
    return tuple(result[k] if up else -result[k]
                 for k, up in zip(self.keys, self.higher_is_better))

  def better(self, result: dict, than: dict | None) -> bool:
    new = self.score(result)
    old = None if than is None else self.score(than)
    return new is not None and (old is None or new > old)


def run_kind(config) -> str:
  """toy, mnist, digit_pair, unpaired or images: which metrics apply to this run."""
  spec = data.parse_spec(config.dataset)
  if config.algorithm == "cyclegan":
    return "digit_pair" if config.dataset == "bundled:digit_pair" else "unpaired"
  if spec.kind == "toy":
    return "toy"
  if config.dataset == "bundled:mnist":
    return "mnist"
  return "images"


class Evaluator:
  """Scores states of one run: `evaluator(state) -> {metric: value}`.

  level: "cheap" (what training runs every `eval_every` steps) or "all".
  num_samples: generated examples scored (default: 2,500 points for the
  mixtures, 10,000 images otherwise; for translations the test split, or that
  many of its images, evenly spaced through it). STANDARD_SAMPLES selects the
  standard protocol (see the module docstring).
  inception_weights: the FID Inception file, else found as
  `ganjax.evaluation.fid.resolve_weights` finds it.
  reference: the real images of the Inception metrics: a dataset spec
  (bundled:mnist, tfds:<name>, folder:<path>) whose training split is
  measured and cached, or an .npz reference file; default the run's dataset.
  """

  def __init__(self, config, *, level: str = "all", num_samples: int | None = None,
               inception_weights: str | None = None, batch_size: int = 200, seed: int = 0,
               reference: str | None = None, log=print):
    if level not in LEVELS:
      raise GanjaxError(f"metrics level {level!r} is unknown; use {' or '.join(LEVELS)}")
    self.config = config
    self.level = level
    self.kind = run_kind(config)
    self.algorithm = algorithms.get(config.algorithm)
    self.batch_size = batch_size
    self.key = jax.random.PRNGKey(seed)
    self.log = log
    self.notes: list[str] = []
    self.inception_weights = inception_weights or config.get("inception_weights") or None
    self.reference_arg = reference or None
    self.reference = None  # the Inception reference (reference.Reference), once measured
    self._inception = None
    self._real_inception = None
    self.real_swd = None  # the real images of the sliced Wasserstein distance (image runs)
    self._record: dict = {}
    if num_samples is not None and num_samples < 2:
      raise GanjaxError(f"num_samples={num_samples} must be at least 2")
    if reference and self.kind in ("toy", "digit_pair", "unpaired"):
      raise GanjaxError(f"--reference {reference} applies to the Inception metrics of image"
                        f" runs; this run ({config.dataset}, {config.algorithm}) compares"
                        " against its own data: leave --reference out")
    setup = {"toy": self._setup_toy, "mnist": self._setup_mnist,
             "digit_pair": self._setup_translation, "unpaired": self._setup_translation,
             "images": self._setup_images}[self.kind]
    setup(num_samples)
    self._set_protocol(num_samples)

  # --- what is measured ------------------------------------------------------------------

  @property
  def empty(self) -> bool:
    """True when this level has no metric for this run (e.g. cheap metrics of CIFAR-10)."""
    return not self.main.keys

  @property
  def standard(self) -> bool:
    """Whether the number of samples asks for the standard protocol (the whole split)."""
    return self.num_samples == STANDARD_SAMPLES

  def record(self) -> dict:
    """What the scores were measured under: protocol ("standard", "quick" or "custom"),
    n_fake and n_real, the Inception Score's splits, precision/recall's k and set
    sizes, the reference and the Inception weights' SHA-256 (where they apply)."""
    return dict(self._record)

  def _set_protocol(self, num_samples) -> None:
    from ganjax.evaluation import fid, prdc  # pylint: disable=g-import-not-at-top
    whole = self.reference is None or self.reference.whole_split
    if self.standard and whole:
      protocol = "standard"
    else:
      protocol = "quick" if num_samples is None else "custom"
    record = {"protocol": protocol, "n_fake": self.num_samples}
    if self.reference is not None:
      ref = self.reference
      record.update({"n_real": ref.count, "reference": ref.meta.get("dataset", ref.path),
                     "reference_file": ref.path,
                     "reference_whole_split": ref.whole_split,
                     "inception_weights_sha256": self.inception_sha256})
      if ref.meta.get("split"):
        record["reference_split"] = ref.meta["split"]
    elif self.kind == "toy":
      record["n_real"] = self.num_samples
    elif self.kind in ("digit_pair", "unpaired"):
      record["n_real"] = min(len(x) for x in self.test.values())
      if self._inception is not None:
        record["inception_weights_sha256"] = self.inception_sha256
    if self.kind == "mnist":
      record["n_real_classifier"] = len(self.real_classifier)
      record["classifier_prdc_n"] = min(self.num_samples, len(self.real_classifier))
      record.setdefault("n_real", len(self.real_classifier))
    if self.reference is not None:
      splits = min(fid.IS_SPLITS, self.num_samples)
      sizes = sorted(set(fid.split_sizes(self.num_samples, splits)))
      record["is_splits"] = splits
      record["is_split_size"] = sizes[0] if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    if self.kind in ("toy", "mnist") or self._real_inception is not None:
      record["pr_k"], record["dc_k"] = prdc.K_PRECISION_RECALL, prdc.K_DENSITY_COVERAGE
    if self.real_swd is not None:
      from ganjax.evaluation import swd  # pylint: disable=g-import-not-at-top
      record["swd_images"] = len(self.real_swd)
      record["swd_patches_per_image"] = swd.PATCHES_PER_IMAGE
      record["swd_directions"] = swd.DIR_REPEATS * swd.DIRS_PER_REPEAT
    if self.reference is not None and self.reference.features is not None:
      record["prdc_n"] = min(self.num_samples, len(self.reference.features))
    elif self.kind == "toy":
      record["prdc_n"] = self.num_samples
    self._record = record

  def _setup_toy(self, num_samples):
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    self.num_samples = num_samples or toy.EVAL_SAMPLES
    name = data.parse_spec(self.config.dataset).name
    self.real_points, _ = toy.sample(name, np.random.default_rng(REAL_POINTS_SEED),
                                     self.num_samples)
    self.main = MainMetric(("modes_captured", "high_quality_fraction"), (True, True))

  def _setup_mnist(self, num_samples):
    from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
    self.num_samples = num_samples or IMAGE_SAMPLES
    if (self.config.image_size, self.config.channels) != (32, 1):
      raise GanjaxError(
          f"the MNIST classifier metrics take 32x32x1 images; this run makes"
          f" {self.config.image_size}x{self.config.image_size}x{self.config.channels}")
    self.classifier = classifier.load("mnist")
    self.real_classifier = classifier.real_features(self.classifier)
    self.main = MainMetric(("classifier_fid",), (False,))
    if self.level == "all" and self._try_inception():
      self._load_reference()
    elif self.reference_arg and self.level == "cheap":
      self.notes.append(f"--reference {self.reference_arg} is not used: it is the reference of"
                        " the Inception metrics, which need level 'all'")

  def _setup_images(self, num_samples):
    from ganjax.evaluation import reference, swd  # pylint: disable=g-import-not-at-top
    self.num_samples = num_samples or IMAGE_SAMPLES
    c = self.config
    if swd.resolutions(c.image_size):
      spec = self.reference_arg or c.dataset
      if spec.lower().endswith(".npz"):  # statistics only: the SWD reads the run's own data
        spec = c.dataset
      src = reference.source(spec, split="train", image_size=c.image_size,
                             channels=c.channels, limit=min(SWD_IMAGES, self.num_samples),
                             data_dir=c.get("tfds_data_dir") or None,
                             what="--reference" if self.reference_arg else "dataset")
      self.real_swd = np.concatenate(list(src.chunks()))[:src.count]
    if self.level == "all":
      self._load_inception()
      self._load_reference()
      self.main = MainMetric(("fid",), (False,))
    elif self.real_swd is not None:
      self.main = MainMetric(("swd",), (False,))
    else:
      self.main = MainMetric((), ())
      self.notes.append(f"no cheap metric for {c.image_size}x{c.image_size} images: the sliced"
                        f" Wasserstein distance needs {swd.MIN_RESOLUTION}x{swd.MIN_RESOLUTION}"
                        " or larger, and the Inception metrics level 'all'"
                        " (eval_metrics='all')")

  def _setup_translation(self, num_samples):
    split = self._split()
    self.test = {d: data.unpaired_images(self.config, split, d) for d in data.DOMAINS}
    self.num_samples = min([len(x) for x in self.test.values()] + [num_samples or np.inf])
    # An evenly spaced subset: the digit pair's splits are ordered by class.
    subset = {d: np.linspace(0, len(x) - 1, self.num_samples).round().astype(int)
              for d, x in self.test.items()}
    self.test = {d: x[subset[d]] for d, x in self.test.items()}
    if self.kind == "digit_pair":
      from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
      self.classifier = classifier.load("digit_pair")
      _, labels_a, _, labels_b = data.digit_pair(self.config.load_size, split)
      self.labels = {"a": np.asarray(labels_a)[subset["a"]],
                     "b": np.asarray(labels_b)[subset["b"]]}
      self.real_classifier = {d: self.classifier.predict(x)["features"]
                              for d, x in self.test.items()}
      self.main = MainMetric(("class_preserved",), (True,))
    else:
      self.main = MainMetric(("cycle_l1",), (False,))
    if self.level == "all":
      loaded = self._try_inception() if self.kind == "digit_pair" else self._load_inception()
      if loaded:
        from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
        self._real_inception = {d: fid.statistics(self._inception(x)["pool"])
                                for d, x in self.test.items()}
        if self.kind == "unpaired":
          self.main = MainMetric(("fid",), (False,))

  def _split(self) -> str:
    spec = data.parse_spec(self.config.dataset)
    if spec.kind == "folder":
      root = os.path.expanduser(spec.name)
      if not all(os.path.isdir(os.path.join(root, "test" + d.upper())) for d in data.DOMAINS):
        self.notes.append("no testA/testB folders: translations are scored on the train images")
        return "train"
    return "test"

  # --- Inception ---------------------------------------------------------------------------

  def _load_inception(self) -> bool:
    from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
    self._inception = fid.load_inception(self.inception_weights, batch_size=self.batch_size)
    self.inception_sha256 = fid.weights_sha256(fid.resolve_weights(self.inception_weights))
    return True

  def _try_inception(self) -> bool:
    """Loads the Inception network where its weights can be found; else notes why not."""
    try:
      return self._load_inception()
    except GanjaxError as e:
      self.notes.append(f"Inception metrics skipped: {e}")
      return False

  def _load_reference(self) -> None:
    """The Inception reference: the run's dataset (or `reference`), measured or cached.

    The standard protocol measures the whole training split, the others its first
    REAL_IMAGES images; a reference file is taken as it is.
    """
    from ganjax.evaluation import reference  # pylint: disable=g-import-not-at-top
    arg = self.reference_arg or self.config.dataset
    c = self.config
    if self.reference_arg and self.reference_arg.lower().endswith(".npz"):
      ref = reference.read(self.reference_arg)
      dim = self._inception(np.zeros((1, c.image_size, c.image_size, c.channels),
                                     np.uint8))["pool"].shape[1]
      if ref.dim != dim:
        raise GanjaxError(f"--reference {self.reference_arg} holds {ref.dim}-d statistics but"
                          f" the Inception features are {dim}-d: it was measured with another"
                          " network; measure it again with these weights (--reference"
                          " <dataset spec>, or python -m ganjax fid --save_stats)")
      if ref.features is None:
        self.notes.append(f"--reference {self.reference_arg} holds statistics only: FID, but"
                          " no KID or precision/recall (give a dataset spec to measure them)")
      self._check_weights(ref)
    else:
      src = reference.source(arg, split="train", image_size=c.image_size, channels=c.channels,
                             limit=None if self.standard else REAL_IMAGES,
                             data_dir=c.get("tfds_data_dir") or None,
                             what="--reference" if self.reference_arg else "dataset")
      ref = reference.load(src, self._inception, extractor_name="inception",
                           weights_sha256=self.inception_sha256, log=self.log)
    self.reference = ref
    self._real_inception = ref.features

  def _check_weights(self, ref) -> None:
    measured_with = ref.meta.get("weights_sha256")
    if measured_with and measured_with != self.inception_sha256:
      raise GanjaxError(f"--reference {ref.path} was measured with Inception weights of SHA-256"
                        f" {measured_with[:12]}..., these are {self.inception_sha256[:12]}...;"
                        " measure the reference again with the same weights")

  def _inception_metrics(self, fake: np.ndarray) -> dict:
    from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
    ref = self.reference
    return fid.image_metrics(self._inception, fake, real_stats=(ref.mu, ref.sigma),
                             real_pool=ref.features, prdc=True)

  # --- generation -------------------------------------------------------------------------

  def sample_labels(self, n: int) -> np.ndarray | None:
    classes = self.config.get("num_classes", 0)
    return np.arange(n, dtype=np.int32) % classes if classes else None

  def generate(self, state, n: int, labels=None) -> np.ndarray:
    """n samples from the state's generator (images in [-1, 1] or 2D points), in batches."""
    if not hasattr(self, "_sample"):
      self._sample = sampler(self.config)  # compiled once for every evaluation
    return generate(self.config, state, n, self.key, labels, self.batch_size, self._sample)

  # --- scoring ---------------------------------------------------------------------------

  def __call__(self, state) -> dict:
    if self.empty:
      return {}
    return getattr(self, f"_score_{self.kind}", self._score_translation)(state)

  def _score_toy(self, state) -> dict:
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    from ganjax.evaluation import prdc  # pylint: disable=g-import-not-at-top
    points = self.generate(state, self.num_samples)
    result = toy.mode_metrics(points, data.parse_spec(self.config.dataset).name)
    result.update(prdc.compare(self.real_points, points))
    return result

  def _score_mnist(self, state) -> dict:
    from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
    labels = self.sample_labels(self.num_samples)
    fake = to_uint8(self.generate(state, self.num_samples, labels))
    result = classifier.mnist_metrics(fake, classifier=self.classifier,
                                      prdc_real=self.real_classifier)
    if labels is not None:
      result["conditioning_accuracy"] = classifier.conditioning_accuracy(
          fake, labels, classifier=self.classifier)
      if self.level == "all":
        result.update(classifier.tstr(fake, labels))
    if self._inception is not None:
      result.update(self._inception_metrics(fake))
    return result

  def _score_images(self, state) -> dict:
    from ganjax.evaluation import swd  # pylint: disable=g-import-not-at-top
    fake = to_uint8(self.generate(state, self.num_samples, self.sample_labels(self.num_samples)))
    result = {}
    if self.real_swd is not None:
      result.update(swd.swd(self.real_swd, fake[:len(self.real_swd)]))
    if self.level == "all":
      result.update(self._inception_metrics(fake))
    return result

  def _score_translation(self, state) -> dict:
    from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
    if not hasattr(self, "_translate"):  # compiled once for every evaluation
      run_backend = backend.resolve(algorithm=self.config.algorithm)
      self._translate = jax.jit(lambda s, x, direction: self.algorithm.translate(
          self.config, s, x, direction, run_backend), static_argnums=2)
    translate = self._translate

    def run(images, direction):
      out = []
      for start in range(0, len(images), self.batch_size):
        x = jnp.asarray(data.to_unit_range(images[start:start + self.batch_size]))
        out.append(host(translate(state, x, direction)))
      return np.concatenate(out)

    result = {}
    per_direction = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}
    for direction, (source, target) in per_direction.items():
      fake = run(self.test[source], direction)
      back = run(to_uint8(fake), "BtoA" if direction == "AtoB" else "AtoB")
      result[f"cycle_l1_{source}"] = float(np.mean(np.abs(
          back - data.to_unit_range(self.test[source]))))
      fake = to_uint8(fake)
      if self.kind == "digit_pair":
        from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
        result[f"class_preserved_{direction}"] = classifier.class_preserved(
            fake, self.labels[source], classifier=self.classifier)
        result[f"classifier_fid_{direction}"] = fid.frechet_distance(
            *fid.statistics(self.classifier.predict(fake)["features"]),
            *fid.statistics(self.real_classifier[target]))
      if self._real_inception is not None:
        result[f"fid_{direction}"] = fid.frechet_distance(
            *fid.statistics(self._inception(fake)["pool"]), *self._real_inception[target])
    result["cycle_l1"] = (result["cycle_l1_a"] + result["cycle_l1_b"]) / 2
    if self.kind == "digit_pair":
      result["class_preserved"] = (result["class_preserved_AtoB"]
                                   + result["class_preserved_BtoA"]) / 2
    if "fid_AtoB" in result:
      result["fid"] = (result["fid_AtoB"] + result["fid_BtoA"]) / 2
    return result


def sampler(config):
  """A GAN-family config's jitted (variables(state), sample(state, z, labels, variables)):
  the generator's sampling variables (algorithm.sampling_variables: with an EMA, its
  weights and their standing statistics), computed once per state, and the samples."""
  algorithm = algorithms.get(config.algorithm)
  if not hasattr(algorithm, "sample"):
    raise GanjaxError(f"algorithm={config.algorithm!r} does not sample from noise; it"
                      " translates images (python -m ganjax translate)")
  run_backend = backend.resolve(algorithm=config.algorithm)  # the layers of this platform
  return (jax.jit(lambda s: algorithm.sampling_variables(config, s)),
          jax.jit(lambda s, z, y, v: algorithm.sample(config, s, z, y, variables=v,
                                                      backend=run_backend)))


def generate(config, state, n: int, key, labels=None, batch_size: int = 200,
             sample=None) -> np.ndarray:
  """n samples of a GAN-family state, drawn in batches from latents of `key`, through
  algorithm.sample (`sample`: a `sampler(config)` to reuse)."""
  algorithm = algorithms.get(config.algorithm)
  variables_of, sample = sample or sampler(config)
  variables = variables_of(state)
  z = algorithm.latent(config, key, n)
  out = []
  for start in range(0, n, batch_size):
    y = None if labels is None else jnp.asarray(labels[start:start + batch_size])
    out.append(host(sample(state, z[start:start + batch_size], y, variables)))
  return np.concatenate(out)
