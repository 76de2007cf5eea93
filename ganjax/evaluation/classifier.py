"""Digit classifiers trained by ganjax, and the metrics they give for MNIST-like models.

Two small CNNs are shipped in ganjax/assets/ (float32 .npz files, ~0.4 MB each):

  mnist         trained on the bundled MNIST train split (data.bundled_mnist, 4,500
                digits), 1 channel; scored on the 500 held-out test digits
  digit_pair    trained on both domains of the digit pair's train split
                (data.digit_pair), 3 channels; scored on each domain's test split

`python -m ganjax.evaluation.classifier --retrain [--out DIR]` trains both again
from the recipe below and prints their held-out accuracies (shipped: mnist 97.6%;
digit_pair 98.0% on domain A, 98.0% on B; a few minutes each on a 2-core AMD EPYC,
JAX 0.10.2, where the retrained mnist file came out bit-identical to the shipped one). Each file
stores its accuracies and a hash of its recipe, which `load` reports.

Network (`DigitNet`), on 32x32 images in [-1, 1] (28x28 digits padded by 2, as
data.fit_mnist does): 5x5 conv 32 stride 2 -> 3x3 conv 64 stride 2 -> 3x3 conv 32
stride 2 (4x4x32) -> dense 128 (the feature layer, after ReLU) -> dropout 0.5 ->
dense 10. ReLU after every hidden layer; no normalisation layers, so an example's
outputs never depend on the rest of its batch. Strided convolutions instead of
pooling keep a training step cheap on a CPU.

Training recipe (`train_classifier`): Adam, learning rate 2e-3 with cosine decay to
0, batch 128, batches drawn epoch by epoch from the seed (data.ArraySource), each
image shifted by a random offset of up to 2 pixels in each direction (edges
repeated, so any background colour is kept). Given the seed it is deterministic.
The shipped classifiers train for 2,000 steps (57 epochs of MNIST); `tstr` trains
for 400 by default, to stay cheap on a CPU.

Metrics (`label_metrics` and the helpers it uses take logits or labels alone, so
they can be checked without a network):

  mnist_metrics           classifier FID, Inception-Score analogue, label histogram,
                          classes covered, KL(histogram || uniform), confidence
  tstr                    train on synthetic, test on real, beside train on real (TRTR)
  conditioning_accuracy   how often samples are classified as their conditioning label
  class_preserved         how often a translation keeps the digit class (digit pair)
"""

import argparse
import dataclasses
import functools
import hashlib
import importlib.resources
import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ganjax import data
from ganjax.errors import GanjaxError
from ganjax.evaluation import features as features_lib

NUM_CLASSES = 10
IMAGE_SIZE = 32
FEATURES = 128
NAMES = ("mnist", "digit_pair")

# The shipped classifiers train for STEPS; tstr, by default, for the cheaper TSTR_STEPS
# (its TRTR accuracy at those settings is stored in the mnist file).
STEPS = 2000
TSTR_STEPS = 400
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
MAX_SHIFT = 2
DROPOUT = 0.5

# A class is covered when it holds at least this fraction of the samples: a tenth
# of its share under a uniform label distribution (see `classes_covered`).
COVERED_FRACTION = 0.1 / NUM_CLASSES


class DigitNet(nn.Module):
  """images [B, 32, 32, C] in [-1, 1] -> (features [B, 128], logits [B, 10])."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Conv(32, (5, 5), strides=2)(x))  # 16x16
    x = nn.relu(nn.Conv(64, (3, 3), strides=2)(x))  # 8x8
    x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))  # 4x4
    feats = nn.relu(nn.Dense(FEATURES)(x.reshape(x.shape[0], -1)))
    h = nn.Dropout(DROPOUT, deterministic=not train)(feats)
    return feats, nn.Dense(NUM_CLASSES)(h)


def recipe(*, steps: int, batch_size: int, seed: int, channels: int,
           trained_on: str = "bundled_mnist train") -> dict:
  """The training recipe as plain data: what `recipe_hash` identifies."""
  return {"network": "DigitNet conv5s2-32 conv3s2-64 conv3s2-32 dense128 drop0.5 dense10",
          "channels": channels, "steps": steps, "batch_size": batch_size, "seed": seed,
          "optimizer": f"adam lr {LEARNING_RATE} cosine to 0", "shift": MAX_SHIFT,
          "trained_on": trained_on}


def recipe_hash(r: dict) -> str:
  return hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------
# Training.


def _as_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1] on the host; float images are kept (as float32)."""
  images = np.asarray(images)
  if images.dtype == np.uint8:
    return data.to_unit_range(images)
  return images.astype(np.float32)


def _check_images(images, channels: int, what: str) -> None:
  shape = tuple(np.shape(images))
  if len(shape) != 4 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, channels):
    raise GanjaxError(f"{what}: images of shape {shape}; the digit classifier takes"
                      f" [N, {IMAGE_SIZE}, {IMAGE_SIZE}, {channels}] (image_size=32,"
                      f" channels={channels})")


def _shift(key, images):
  """Each image moved by its own random offset in [-MAX_SHIFT, MAX_SHIFT]^2, edges repeated."""
  m = MAX_SHIFT
  padded = jnp.pad(images, ((0, 0), (m, m), (m, m), (0, 0)), mode="edge")
  offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * m + 1)
  h, w, c = images.shape[1:]
  return jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(
      padded, offsets)


@functools.cache
def _train_step(steps: int):
  net = DigitNet()
  tx = optax.adam(optax.cosine_decay_schedule(LEARNING_RATE, steps))

  def step(params, opt_state, images, labels, key):
    shift_key, dropout_key = jax.random.split(key)
    images = _shift(shift_key, images)

    def loss_fn(p):
      _, logits = net.apply(p, images, train=True, rngs={"dropout": dropout_key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return tx, jax.jit(step, donate_argnums=(0, 1))


def train_classifier(images, labels, *, steps: int = STEPS, batch_size: int = BATCH_SIZE,
                     seed: int = 0, channels: int = 1, log_every: int = 0):
  """Trains a DigitNet on labelled images: params (a pytree of arrays).

  images [N, 32, 32, channels], uint8 or float in [-1, 1]; labels int [N] in 0..9.
  The result is a function of (images, labels, steps, batch_size, seed).
  """
  _check_images(images, channels, "train_classifier")
  labels = np.asarray(labels, np.int32)
  if labels.shape != (len(images),) or labels.min() < 0 or labels.max() >= NUM_CLASSES:
    raise GanjaxError(f"train_classifier: labels must be int [N={len(images)}] in 0..9")
  images = _as_float(images)
  key = jax.random.PRNGKey(seed)
  params = DigitNet().init(jax.random.fold_in(key, 0),
                           jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, channels)))
  tx, step = _train_step(steps)
  opt_state = tx.init(params)
  source = data.ArraySource(images, labels, batch_size, seed)
  for t in range(steps):
    idx = source.indices(t)
    params, opt_state, loss = step(params, opt_state, images[idx], labels[idx],
                                   jax.random.fold_in(jax.random.fold_in(key, 1), t))
    if log_every and (t + 1) % log_every == 0:
      print(f"  step {t + 1}/{steps}: loss {float(loss):.4f}", flush=True)
  return jax.device_get(params)


# ----------------------------------------------------------------------------
# Classifiers and their predictions.


@dataclasses.dataclass(eq=False)
class Classifier:
  """A trained DigitNet: `predict` runs it, batched and sharded over the devices."""
  params: dict
  channels: int
  name: str = ""
  test_accuracy: dict = dataclasses.field(default_factory=dict)  # held-out accuracies
  recipe: dict = dataclasses.field(default_factory=dict)
  recipe_hash: str = ""
  trtr: dict = dataclasses.field(default_factory=dict)  # mnist: TRTR of the tstr recipe

  @functools.cached_property
  def _extractor(self):
    def fn(params, x):
      feats, logits = DigitNet().apply(params, x)
      return {"features": feats, "logits": logits}

    return features_lib.Extractor(fn, batch_size=500, params=self.params)

  def predict(self, images) -> dict[str, np.ndarray]:
    """{"features": float32 [N, 128], "logits": float32 [N, 10]} of images [N, 32, 32, C].

    Images are uint8, or float in [-1, 1]; features are the ReLU outputs of the
    dense 128 layer.
    """
    _check_images(images, self.channels, f"classifier {self.name or '(unnamed)'}")
    return self._extractor(np.asarray(images))

  def accuracy(self, images, labels) -> float:
    """The fraction of images whose predicted class is their label."""
    predicted = self.predict(images)["logits"].argmax(-1)
    return float(np.mean(predicted == np.asarray(labels)))


def flatten(params) -> dict[str, np.ndarray]:
  """A params pytree of nested dicts -> {"a/b/c": float32 array}."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {"/".join(k.key for k in path): np.asarray(v, np.float32) for path, v in flat}


def unflatten(arrays: dict[str, np.ndarray]) -> dict:
  tree: dict = {}
  for name, value in arrays.items():
    *parents, leaf = name.split("/")
    node = tree
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return tree


def save(path: str, classifier: Classifier) -> None:
  """Writes params (float32, under "params/...") and the metadata (JSON, "meta") to .npz."""
  meta = {"name": classifier.name, "channels": classifier.channels,
          "test_accuracy": classifier.test_accuracy, "recipe": classifier.recipe,
          "recipe_hash": classifier.recipe_hash, "trtr": classifier.trtr}
  arrays = {"params/" + k: v for k, v in flatten(classifier.params).items()}
  with open(path, "wb") as f:
    np.savez(f, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)


def read(path_or_file) -> Classifier:
  with np.load(path_or_file) as z:
    meta = json.loads(str(z["meta"]))
    params = unflatten({k[len("params/"):]: z[k] for k in z.files if k.startswith("params/")})
  return Classifier(params=params, channels=meta["channels"], name=meta["name"],
                    test_accuracy=meta["test_accuracy"], recipe=meta["recipe"],
                    recipe_hash=meta["recipe_hash"], trtr=meta["trtr"])


@functools.cache
def load(name: str = "mnist") -> Classifier:
  """A shipped classifier ("mnist" or "digit_pair"), with its stored test accuracy."""
  if name not in NAMES:
    raise GanjaxError(f"no shipped classifier {name!r}; use one of {', '.join(NAMES)}")
  asset = importlib.resources.files("ganjax.assets").joinpath(f"{name}_classifier.npz")
  with asset.open("rb") as f:
    return read(f)


# ----------------------------------------------------------------------------
# Metrics of softmax outputs.


def softmax(logits) -> np.ndarray:
  logits = np.asarray(logits, np.float64)
  e = np.exp(logits - logits.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def label_histogram(labels, num_classes: int = NUM_CLASSES) -> np.ndarray:
  """The fraction of samples given to each class, float64 [K]."""
  labels = np.asarray(labels)
  return np.bincount(labels, minlength=num_classes)[:num_classes] / max(len(labels), 1)


def classes_covered(labels, num_classes: int = NUM_CLASSES,
                    min_fraction: float = COVERED_FRACTION) -> int:
  """How many classes hold at least `min_fraction` of the samples (default 1%).

  The default is a tenth of a class's uniform share. A class the generator never
  draws still collects some samples through the classifier's own mistakes (a few
  tenths of a percent for a 98% classifier, spread over the other classes); 1% is
  above that, while a class at a tenth of its fair share is still plainly made.
  """
  return int(np.sum(label_histogram(labels, num_classes) >= min_fraction))


def kl_from_uniform(histogram) -> float:
  """KL(histogram || uniform) in nats: 0 for equal classes, log K for one class."""
  p = np.asarray(histogram, np.float64)
  nonzero = p > 0
  return float(np.sum(p[nonzero] * np.log(p[nonzero] * len(p))))


def label_metrics(logits) -> dict:
  """The metrics of classifier logits [N, 10] that need no real data.

  classifier_is is the Inception-Score analogue over the 10-way softmax, over one
  split of all N samples (fid.inception_score with splits=1; at most 10);
  label_histogram the fraction of samples per argmax class; classes_covered the
  classes holding at least 1% of them (see `classes_covered`), classes_with_any
  those holding one or more; kl_from_uniform KL(label_histogram || uniform) in
  nats (0 to log 10); confidence the mean of the largest softmax probability.
  """
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  probs = softmax(logits)
  predicted = probs.argmax(-1)
  histogram = label_histogram(predicted)
  score, _ = fid.inception_score(logits, splits=1)
  return {"classifier_is": score,
          "label_histogram": histogram.tolist(),
          "classes_covered": classes_covered(predicted),
          "classes_with_any": int(np.sum(histogram > 0)),
          "kl_from_uniform": kl_from_uniform(histogram),
          "confidence": float(probs.max(-1).mean())}


# ----------------------------------------------------------------------------
# Metrics of images.


def _statistics(feats):
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  return fid.statistics(feats)


@functools.cache
def real_features(classifier: Classifier) -> np.ndarray:
  """The classifier's features of the 500 held-out MNIST test digits, float32 [500, 128]
  (read-only), in the order of data.bundled_mnist("test")."""
  images, _ = data.bundled_mnist("test")
  out = classifier.predict(images)["features"]
  out.setflags(write=False)
  return out


@functools.cache
def _real_statistics(classifier: Classifier):
  return _statistics(real_features(classifier))


def mnist_metrics(images, classifier: Classifier | None = None, real_images=None,
                  prdc_real=None) -> dict:
  """Classifier metrics of generated MNIST digits images [N, 32, 32, 1].

  classifier_fid is the Frechet distance between the classifier's 128-d features
  of `images` and of `real_images`, by default the 500 held-out test digits
  (data.bundled_mnist("test")): like generated digits, and unlike the train split,
  the classifier never saw them, so its features of them are not tighter than
  those of any new digit; the GANs never trained on them either. With only 500
  real digits the distance has a floor above 0 that shrinks as more samples are
  compared; compare runs at the same number of samples. With the shipped
  classifier, real train digits score 16.6 (500 of them) and 13.1 (all 4,500),
  one digit repeated 500 times about 1,150. The other entries are those of
  `label_metrics`. With `prdc_real`, real classifier features (`real_features`),
  also classifier_precision, classifier_recall, classifier_density and
  classifier_coverage of the features (`prdc`, on sets of equal size).
  """
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top
  classifier = classifier or load("mnist")
  out = classifier.predict(images)
  if real_images is None:
    real = _real_statistics(classifier)
  else:
    real = _statistics(classifier.predict(real_images)["features"])
  mu, sigma = _statistics(out["features"])
  result = {"classifier_fid": float(fid.frechet_distance(mu, sigma, *real)),
            **label_metrics(out["logits"]), "num_samples": len(out["logits"])}
  if prdc_real is not None:
    from ganjax.evaluation import prdc  # pylint: disable=g-import-not-at-top
    scores = prdc.compare(prdc_real, out["features"])
    result.update({f"classifier_{k}": v for k, v in scores.items()})
  return result


def conditioning_accuracy(images, labels, classifier: Classifier | None = None) -> float:
  """The fraction of generated images [N, 32, 32, 1] classified as their conditioning label."""
  return (classifier or load("mnist")).accuracy(images, labels)


def class_preserved(images, labels, classifier: Classifier | None = None) -> float:
  """The fraction of digit-pair translations [N, 32, 32, 3] whose class is their source's.

  `labels` are the digit classes of the images that were translated; the default
  classifier is the digit-pair one, which reads both domains.
  """
  return (classifier or load("digit_pair")).accuracy(images, labels)


@functools.cache
def trtr_accuracy(*, steps: int = TSTR_STEPS, batch_size: int = BATCH_SIZE, seed: int = 0) -> float:
  """The recipe's accuracy on the MNIST test split when trained on the real train split.

  The mnist file stores it for the default TSTR recipe (`retrain`); other recipes
  train once per process.
  """
  r = recipe(steps=steps, batch_size=batch_size, seed=seed, channels=1)
  shipped = load("mnist")
  if shipped.trtr.get("recipe_hash") == recipe_hash(r):
    return shipped.trtr["accuracy"]
  images, labels = data.bundled_mnist("train")
  params = train_classifier(images, labels, steps=steps, batch_size=batch_size, seed=seed)
  return Classifier(params, 1).accuracy(*data.bundled_mnist("test"))


def tstr(images, labels, *, steps: int = TSTR_STEPS, seed: int = 0,
         batch_size: int = BATCH_SIZE) -> dict:
  """Train on synthetic, test on real (Esteban et al. 2017; Ravuri and Vinyals 2019).

  Trains the classifier recipe on generated labelled images [N, 32, 32, 1] and
  scores it on the real MNIST test split; beside it the same recipe trained on the
  real train split (TRTR). ratio = tstr / trtr.
  """
  params = train_classifier(images, labels, steps=steps, batch_size=batch_size, seed=seed)
  test = data.bundled_mnist("test")
  synthetic = Classifier(params, 1).accuracy(*test)
  real = trtr_accuracy(steps=steps, batch_size=batch_size, seed=seed)
  return {"tstr_accuracy": synthetic, "trtr_accuracy": real,
          "tstr_trtr_ratio": synthetic / real, "tstr_steps": steps}


# ----------------------------------------------------------------------------
# Reproducing the shipped classifiers.


def retrain(name: str, *, steps: int = STEPS, seed: int = 0, trtr_steps: int = TSTR_STEPS,
            log_every: int = 200) -> Classifier:
  """Trains a shipped classifier again from its recipe and scores it on held-out data.

  For mnist it also trains the TSTR recipe (trtr_steps) on the real train split and
  stores its test accuracy, the TRTR of `tstr` at its defaults.
  """
  r = recipe(steps=steps, batch_size=BATCH_SIZE, seed=seed,
             channels=1 if name == "mnist" else 3,
             trained_on="bundled_mnist train" if name == "mnist" else "digit_pair train a+b")
  if name == "mnist":
    images, labels = data.bundled_mnist("train")
  else:
    a, a_labels, b, b_labels = data.digit_pair(IMAGE_SIZE, "train")
    images, labels = np.concatenate([a, b]), np.concatenate([a_labels, b_labels])
  params = train_classifier(images, labels, steps=steps, batch_size=BATCH_SIZE, seed=seed,
                            channels=r["channels"], log_every=log_every)
  c = Classifier(params, r["channels"], name=name, recipe=r, recipe_hash=recipe_hash(r))
  if name == "mnist":
    c.test_accuracy = {"test": c.accuracy(*data.bundled_mnist("test"))}
    if trtr_steps:
      t = recipe(steps=trtr_steps, batch_size=BATCH_SIZE, seed=seed, channels=1)
      params = train_classifier(images, labels, steps=trtr_steps, seed=seed)
      c.trtr = {"recipe_hash": recipe_hash(t), "recipe": t,
                "accuracy": Classifier(params, 1).accuracy(*data.bundled_mnist("test"))}
  else:
    a, a_labels, b, b_labels = data.digit_pair(IMAGE_SIZE, "test")
    c.test_accuracy = {"test_a": c.accuracy(a, a_labels), "test_b": c.accuracy(b, b_labels)}
  return c


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(prog="python -m ganjax.evaluation.classifier",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--retrain", action="store_true",
                      help="train the shipped classifiers again and write their .npz files")
  parser.add_argument("--out", default=None,
                      help="directory for the .npz files (default: ganjax/assets)")
  parser.add_argument("--steps", type=int, default=STEPS)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--only", choices=NAMES, default=None)
  args = parser.parse_args(argv)
  if not args.retrain:
    for name in NAMES:
      c = load(name)
      print(f"{name}: held-out accuracy {c.test_accuracy}, recipe {c.recipe_hash}")
    return
  out = args.out or str(importlib.resources.files("ganjax.assets"))
  os.makedirs(out, exist_ok=True)
  for name in [args.only] if args.only else NAMES:
    start = time.time()
    print(f"training {name} ...", flush=True)
    c = retrain(name, steps=args.steps, seed=args.seed)
    path = os.path.join(out, f"{name}_classifier.npz")
    save(path, c)
    accuracies = ", ".join(f"{k} {v:.4f}" for k, v in c.test_accuracy.items())
    if c.trtr:
      accuracies += f"; TRTR at {c.trtr['recipe']['steps']} steps {c.trtr['accuracy']:.4f}"
    print(f"{name}: held-out accuracy {accuracies} ({time.time() - start:.0f} s, recipe"
          f" {c.recipe_hash}) -> {path} ({os.path.getsize(path) / 1024:.0f} KB)", flush=True)


if __name__ == "__main__":
  main()
