"""The digit classifiers: held-out splits, shipped weights, and the metrics they give."""

import numpy as np
import pytest

from ganjax import data
from ganjax.evaluation import classifier


@pytest.fixture(scope="module")
def mnist():
  return classifier.load("mnist")


def test_mnist_splits_hold_out_the_last_tenth_of_each_class():
  train_images, train_labels = data.bundled_mnist("train")
  test_images, test_labels = data.bundled_mnist("test")
  assert train_images.shape == (4500, 32, 32, 1) and test_images.shape == (500, 32, 32, 1)
  assert np.bincount(train_labels).tolist() == [450] * 10
  assert np.bincount(test_labels).tolist() == [50] * 10
  digits, labels = data._load_bundled_mnist()  # pylint: disable=protected-access
  for c in range(10):  # the test digits of a class are its last 50, in order
    ours = digits[labels == c]
    np.testing.assert_array_equal(test_images[test_labels == c][:, 2:-2, 2:-2, 0], ours[-50:])
    np.testing.assert_array_equal(train_images[train_labels == c][:, 2:-2, 2:-2, 0], ours[:-50])
  keys = lambda images: {im.tobytes() for im in images}  # noqa: E731
  assert not keys(train_images) & keys(test_images)
  # The digit pair's test split is the same held-out digits, split over its two domains.
  a, a_labels, _, b_labels = data.digit_pair(32, "test")
  assert keys(a[..., :1]) <= keys(test_images) and len(a_labels) + len(b_labels) == 500


def test_shipped_classifiers_reach_their_stored_accuracy(mnist):
  images, labels = data.bundled_mnist("test")
  assert mnist.test_accuracy["test"] >= 0.97
  assert mnist.accuracy(images, labels) == pytest.approx(mnist.test_accuracy["test"], abs=0.0021)
  pair = classifier.load("digit_pair")
  a, a_labels, b, b_labels = data.digit_pair(32, "test")
  for domain, x, y in (("a", a, a_labels), ("b", b, b_labels)):
    stored = pair.test_accuracy[f"test_{domain}"]
    assert stored >= 0.95
    assert pair.accuracy(x, y) == pytest.approx(stored, abs=0.0041)
  for c in (mnist, pair):
    assert c.recipe_hash == classifier.recipe_hash(c.recipe)
  out = mnist.predict(images[:7])
  assert out["features"].shape == (7, 128) and out["logits"].shape == (7, 10)


def test_inception_score_analogue_and_kl_match_numpy():
  rng = np.random.default_rng(0)
  probs = rng.dirichlet(np.full(10, 0.3), size=200)
  marginal = probs.mean(0)
  kl = np.sum(probs * np.log(probs / marginal), axis=1)
  metrics = classifier.label_metrics(np.log(probs))
  assert metrics["classifier_is"] == pytest.approx(np.exp(kl.mean()), rel=1e-9)
  histogram = np.bincount(probs.argmax(1), minlength=10) / 200
  np.testing.assert_allclose(metrics["label_histogram"], histogram)
  assert metrics["kl_from_uniform"] == pytest.approx(
      np.sum([p * np.log(10 * p) for p in histogram if p > 0]), rel=1e-12)
  assert metrics["confidence"] == pytest.approx(probs.max(1).mean())
  # Confident and balanced: IS = 10, KL = 0; all one class: IS = 1, KL = log 10.
  balanced = classifier.label_metrics(np.eye(10)[np.arange(100) % 10] * 50)
  assert balanced["classifier_is"] == pytest.approx(10, rel=1e-6)
  assert balanced["kl_from_uniform"] == pytest.approx(0, abs=1e-12)
  single = classifier.label_metrics(np.eye(10)[np.zeros(100, int)] * 50)
  assert single["classifier_is"] == pytest.approx(1, rel=1e-6)
  assert single["kl_from_uniform"] == pytest.approx(np.log(10))


def test_classes_covered_needs_one_percent_of_the_samples():
  labels = np.concatenate([np.repeat(np.arange(8), 120), [8] * 10, [9] * 9])  # 979 samples
  assert classifier.classes_covered(labels) == 9  # class 9 holds 0.92% < 1%
  assert classifier.label_metrics(np.eye(10)[labels])["classes_with_any"] == 10
  assert classifier.classes_covered(np.arange(1000) % 10) == 10
  assert classifier.classes_covered(np.full(50, 3)) == 1
  assert classifier.classes_covered([0] * 99 + [1]) == 2  # exactly 1% counts


def test_mnist_metrics_of_real_and_collapsed_digits(mnist):
  test_images, _ = data.bundled_mnist("test")
  train_images, train_labels = data.bundled_mnist("train")
  itself = classifier.mnist_metrics(test_images, mnist)  # against the test split by default
  assert itself["classifier_fid"] == pytest.approx(0, abs=1e-4)
  assert itself["classes_covered"] == 10 and itself["kl_from_uniform"] < 0.01
  assert itself["classifier_is"] > 9
  # Two halves of the real test digits (each 25 per class) are close.
  real = classifier.mnist_metrics(test_images[::2], mnist, real_images=test_images[1::2])
  sevens = np.repeat(train_images[train_labels == 7][:1], 500, axis=0)
  collapsed = classifier.mnist_metrics(sevens, mnist)
  assert collapsed["classes_covered"] == 1 and collapsed["classes_with_any"] == 1
  assert collapsed["kl_from_uniform"] == pytest.approx(np.log(10))
  assert collapsed["classifier_is"] == pytest.approx(1.0)
  assert collapsed["classifier_fid"] > 20 * real["classifier_fid"]


def test_tstr_on_real_data_gives_trtr():
  images, labels = data.bundled_mnist("train")
  result = classifier.tstr(images, labels, steps=40, seed=3)
  assert result["tstr_accuracy"] == result["trtr_accuracy"] and result["tstr_trtr_ratio"] == 1
  assert result["tstr_accuracy"] > 0.5  # 40 steps already learn something
  # Wrong labels teach the wrong classes.
  shuffled = np.random.default_rng(0).permutation(labels)
  assert classifier.tstr(images, shuffled, steps=40, seed=3)["tstr_accuracy"] < 0.3


def test_conditioning_accuracy_is_the_classifier_accuracy(mnist):
  images, labels = data.bundled_mnist("test")
  assert classifier.conditioning_accuracy(images, labels, mnist) == mnist.accuracy(images, labels)
  shuffled = np.random.default_rng(0).permutation(labels)
  assert 0.05 < classifier.conditioning_accuracy(images, shuffled, mnist) < 0.16
  a, a_labels, b, b_labels = data.digit_pair(32, "test")
  pair = classifier.load("digit_pair")
  assert classifier.class_preserved(b, b_labels) == pair.accuracy(b, b_labels) > 0.9
  assert classifier.class_preserved(b, (b_labels + 1) % 10) < 0.05


def test_images_of_the_wrong_shape_are_one_clear_error(mnist):
  from ganjax.errors import GanjaxError  # pylint: disable=g-import-not-at-top
  with pytest.raises(GanjaxError, match=r"\[N, 32, 32, 1\]"):
    mnist.predict(np.zeros((4, 64, 64, 1), np.uint8))
