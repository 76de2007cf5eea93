"""python -m ganjax evaluate and sample, and evaluation during training (evaluation/suite.py)."""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from PIL import Image

from ganjax import data, train
from ganjax.cli import evaluate_cmd as evaluate, sample_cmd as sample
from ganjax.errors import GanjaxError
from ganjax.evaluation import prdc, suite, toy
from tests.helpers import experiment_config, tiny_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_POINTS = dict(g_width=16, d_width=16, batch_size=16, num_samples=100, log_every=1,
                   sample_every=100, checkpoint_every=2)


def cli(module, *args):
  """One command run as a user types it (a subprocess: it starts JAX afresh)."""
  return subprocess.run([sys.executable, "-m", "ganjax", module, *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600,
                        env={**os.environ, "PYTHONPATH": ROOT})


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
  """A 4-step ring run evaluated every 2 steps."""
  workdir = str(tmp_path_factory.mktemp("toy") / "run")
  config = experiment_config("toy_ring")
  config.update({**TINY_POINTS, "num_train_steps": 4, "eval_every": 2})
  train.train_and_evaluate(config, workdir)
  return workdir


def test_main_metric_ranks_results():
  fid = suite.MainMetric(("fid",), (False,))
  assert fid.better({"fid": 3.0}, None)
  assert fid.better({"fid": 3.0}, {"fid": 4.0}) and not fid.better({"fid": 4.0}, {"fid": 3.0})
  assert not fid.better({"fid": float("nan")}, None)
  assert fid.better({"fid": 9.0}, {"fid": float("nan")})
  modes = suite.MainMetric(("modes_captured", "high_quality_fraction"), (True, True))
  assert modes.better({"modes_captured": 8, "high_quality_fraction": 0.1},
                      {"modes_captured": 7, "high_quality_fraction": 0.9})
  assert modes.better({"modes_captured": 7, "high_quality_fraction": 0.5},
                      {"modes_captured": 7, "high_quality_fraction": 0.4})
  assert not modes.better({"modes_captured": 7, "high_quality_fraction": 0.4},
                          {"modes_captured": 7, "high_quality_fraction": 0.4})


def test_to_uint8_rounds_like_the_sample_grids():
  x = np.array([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5, -3.0], np.float32)
  np.testing.assert_array_equal(suite.to_uint8(x), [0, 0, 128, 191, 255, 255, 0])


def test_training_logs_evaluations_and_keeps_the_best(toy_run):
  records = [json.loads(l) for l in open(os.path.join(toy_run, "metrics.jsonl"))]
  evals = [r for r in records if "eval/modes_captured" in r]
  assert [r["step"] for r in evals] == [2, 4]
  best = json.load(open(os.path.join(toy_run, "best.json")))
  assert best["main_metric"] == ["modes_captured", "high_quality_fraction"]
  scores = {r["step"]: (r["eval/modes_captured"], r["eval/high_quality_fraction"])
            for r in evals}
  assert best["step"] == max(scores, key=lambda s: (scores[s], -s))
  assert os.listdir(os.path.join(toy_run, "best")) == [str(best["step"])]

  # The best checkpoint evaluates to what training logged for it: same latents, same state.
  result = evaluate.evaluate(toy_run, checkpoint="best")
  assert result["step"] == best["step"] and result["checkpoint"] == "best"
  assert result["modes_captured"] == best["metrics"]["modes_captured"]
  assert result["high_quality_fraction"] == pytest.approx(
      best["metrics"]["high_quality_fraction"])


def test_evaluate_toy_matches_the_metric_on_sampled_points(toy_run, tmp_path, capsys):
  evaluate.main(["--workdir", toy_run, "--num_samples", "500", "--seed", "3"])
  printed = capsys.readouterr().out
  saved = json.load(open(os.path.join(toy_run, "eval.json")))
  assert saved["step"] == 4 and saved["num_samples"] == 500
  assert "modes_captured" in printed and "wrote" in printed
  # The same points through python -m ganjax sample, scored directly.
  out = tmp_path / "points.npz"
  sample.main(["--workdir", toy_run, "--num", "500", "--seed", "3", "--output", str(out)])
  points = np.load(out)["points"]
  assert points.shape == (500, 2) and points.dtype == np.float32
  want = toy.mode_metrics(points, "ring")
  assert saved["mode_counts"] == want["mode_counts"]
  assert saved["high_quality_fraction"] == pytest.approx(want["high_quality_fraction"])
  # Precision/recall and density/coverage against as many points of the ring, drawn
  # with the fixed seed.
  real, _ = toy.sample("ring", np.random.default_rng(suite.REAL_POINTS_SEED), 500)
  want = prdc.precision_recall_density_coverage(real, points)
  for key in ("precision", "recall", "density", "coverage"):
    assert saved[key] == pytest.approx(want[key]), key
    assert any(line.split()[:1] == [key] for line in printed.splitlines()), key
  assert (saved["n_fake"], saved["n_real"], saved["prdc_n"]) == (500, 500, 500)
  assert saved["protocol"] == "custom" and (saved["pr_k"], saved["dc_k"]) == (3, 5)


def test_checkpoint_sha256_names_the_weights(toy_run):
  shas = {step: evaluate.evaluate(toy_run, num_samples=50, checkpoint=step)["checkpoint_sha256"]
          for step in (2, 4)}
  assert shas[2] != shas[4]
  _, state, _ = train.load_run(toy_run, 2)
  assert suite.weights_sha256(state) == shas[2]
  changed = state.replace(params=jax.tree.map(lambda x: x * 1.0001, state.params))
  assert suite.weights_sha256(changed) != shas[2]
  # The optimiser's state is not the network's weights.
  assert suite.weights_sha256(state.replace(opt_state={})) == shas[2]


def test_evaluate_errors(toy_run, tmp_path):
  result = cli("evaluate", "--workdir", str(tmp_path))
  assert result.returncode == 1 and "has no config.json" in result.stderr
  assert result.stderr.startswith("ganjax: error:") and "Traceback" not in result.stderr
  with pytest.raises(SystemExit) as e:
    evaluate.main(["--workdir", toy_run, "--checkpoint", "7"])
  assert "no checkpoint at step 7" in e.value.code and "saved steps: [2, 4]" in e.value.code
  with pytest.raises(GanjaxError, match="metrics level 'some'"):
    evaluate.evaluate(toy_run, metrics="some")


@pytest.fixture(scope="module")
def image_runs(tmp_path_factory):
  root = tmp_path_factory.mktemp("images")
  runs = {}
  for name, overrides in [("gan", {}), ("cgan", {"num_classes": 10, "label_dim": 8})]:
    runs[name] = str(root / name)
    train.train_and_evaluate(tiny_config(num_train_steps=2, eval_every=0, **overrides),
                             runs[name])
  return runs


def test_sample_writes_npz_and_png(image_runs, tmp_path):
  out = tmp_path / "s.npz"
  message = sample.sample(image_runs["gan"], 5, str(out), seed=1)
  assert "5 samples" in message
  images = np.load(out)["images"]
  assert images.shape == (5, 32, 32, 1) and images.dtype == np.uint8
  assert "labels" not in np.load(out)
  # Directories of PNGs hold the same pixels.
  sample.sample(image_runs["gan"], 5, str(tmp_path / "png"), seed=1)
  files = sorted(os.listdir(tmp_path / "png"))
  assert files == [f"{i:06d}.png" for i in range(5)]
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" / files[3])),
                                images[3, ..., 0])
  # The same seed gives the same samples; another seed others.
  sample.sample(image_runs["gan"], 5, str(tmp_path / "again.npz"), seed=1)
  np.testing.assert_array_equal(np.load(tmp_path / "again.npz")["images"], images)
  sample.sample(image_runs["gan"], 5, str(tmp_path / "other.npz"), seed=2)
  assert not np.array_equal(np.load(tmp_path / "other.npz")["images"], images)


def test_sample_conditional_labels(image_runs, tmp_path):
  run = image_runs["cgan"]
  sample.sample(run, 12, str(tmp_path / "all.npz"))
  np.testing.assert_array_equal(np.load(tmp_path / "all.npz")["labels"],
                                np.arange(12) % 10)
  sample.sample(run, 5, str(tmp_path / "list.npz"), labels="3,7")
  np.testing.assert_array_equal(np.load(tmp_path / "list.npz")["labels"], [3, 7, 3, 7, 3])
  sample.sample(run, 3, str(tmp_path / "png"), labels="4")
  assert sorted(os.listdir(tmp_path / "png")) == [f"{i:06d}_label4.png" for i in range(3)]
  # The label reaches the generator: class 3 and class 7 images differ for the same z.
  sample.sample(run, 2, str(tmp_path / "three.npz"), labels="3")
  sample.sample(run, 2, str(tmp_path / "seven.npz"), labels="7")
  assert not np.array_equal(np.load(tmp_path / "three.npz")["images"],
                            np.load(tmp_path / "seven.npz")["images"])


@pytest.mark.parametrize("args,message", [
    (["--labels", "12"], "class 12 is outside 0..9"),
    (["--labels", "x"], "give all, a class, or classes separated by commas"),
    (["--num", "0"], "--num 0 must be at least 1"),
])
def test_sample_errors(image_runs, tmp_path, args, message):
  argv = ["--workdir", image_runs["cgan"], "--num", "2", "--output", str(tmp_path / "x.npz")]
  for i in range(0, len(args), 2):
    if args[i] in argv:
      argv[argv.index(args[i]) + 1] = args[i + 1]
    else:
      argv += args[i:i + 2]
  with pytest.raises(SystemExit) as e:
    sample.main(argv)
  assert message in str(e.value.code) and str(e.value.code).startswith("ganjax: error:")


def test_sample_refuses_labels_for_unconditional_and_points_as_png(image_runs, toy_run,
                                                                    tmp_path):
  with pytest.raises(GanjaxError, match="unconditional"):
    sample.sample(image_runs["gan"], 2, str(tmp_path / "x.npz"), labels="3")
  with pytest.raises(GanjaxError, match="2D points go to an .npz file"):
    sample.sample(toy_run, 2, str(tmp_path / "dir"))


def test_old_configs_load_with_defaults_and_foreign_checkpoints_are_refused(image_runs,
                                                                         tmp_path):
  # A config.json written before a key existed loads with that key's default.
  path = os.path.join(image_runs["gan"], "config.json")
  saved = json.load(open(path))
  old = {k: v for k, v in saved.items() if k not in ("eval_every", "minibatch_stddev")}
  json.dump(old, open(path, "w"))
  try:
    config, _, step = train.load_run(image_runs["gan"])
    assert step == 2 and config.minibatch_stddev == 0 and config.eval_every == 1000
  finally:
    json.dump(saved, open(path, "w"))
  # A checkpoint of another network does not restore into this one.
  wider = dict(saved, g_width=16)
  json.dump(wider, open(path, "w"))
  try:
    with pytest.raises(GanjaxError, match="does not fit this run's state"):
      train.load_run(image_runs["gan"])
  finally:
    json.dump(saved, open(path, "w"))


# --- the Inception metrics, with a small stand-in for the Inception network -------------


def _tiny_inception(images):
  """Per-image features (pool [N, 64], logits [N, 16]): the metrics take any width, and
  a 64-d Frechet distance is quick where a 2048-d one takes many seconds on a CPU."""
  x = jax.image.resize(images, (images.shape[0], 8, 8, images.shape[-1]), "linear")
  flat = x.reshape(x.shape[0], -1)
  w = jax.random.normal(jax.random.PRNGKey(0), (flat.shape[1], 64 + 16)) / 8
  out = jax.numpy.tanh(flat @ w)
  return {"pool": out[:, :64], "logits": 4 * out[:, 64:]}


@pytest.fixture
def tiny_inception(monkeypatch, tmp_path):
  from ganjax.evaluation import features, fid  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(fid, "load_inception",
                      lambda weights=None, batch_size=200, mesh=None:
                      features.Extractor(_tiny_inception, batch_size, mesh))
  weights = tmp_path / "tiny.pth"  # stands in for the weights file: it is only hashed
  weights.write_bytes(b"tiny stand-in weights")
  monkeypatch.setattr(fid, "resolve_weights", lambda path=None: str(weights))
  monkeypatch.setenv("GANJAX_CACHE", str(tmp_path / "cache"))
  monkeypatch.setattr(suite, "REAL_IMAGES", 300)
  return _tiny_inception


MOCK_EXAMPLES = 48  # examples per split of the mocked tfds:cifar10


@pytest.fixture(scope="module")
def cifar_run(tmp_path_factory):
  """A 2-step run on tfds:cifar10 as tensorflow-datasets mocks it (no download)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path_factory.mktemp("cifar") / "run")
  config = tiny_config(dataset="tfds:cifar10", channels=3, num_train_steps=2, eval_every=1)
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    train.train_and_evaluate(config, workdir)  # cheap metrics: the SWD
  return workdir


def _direct_inception_metrics(workdir, n, real_pool):
  """The Inception metrics of a run's first n samples, computed here step by step."""
  from ganjax.evaluation import fid, prdc  # pylint: disable=g-import-not-at-top
  config, state, _ = train.load_run(workdir)
  fake = suite.to_uint8(suite.generate(config, state, n, jax.random.PRNGKey(0)))
  out = jax.device_get(_tiny_inception(jax.numpy.asarray(fake, np.float32) / 127.5 - 1))
  want = {"fid": fid.frechet_distance(*fid.statistics(out["pool"]), *fid.statistics(real_pool)),
          "inception_score": fid.inception_score(out["logits"])[0]}
  want.update(prdc.precision_recall_density_coverage(*prdc.equal_sizes(real_pool, out["pool"])))
  return want, state


def test_image_run_scores_inception_metrics_against_the_training_data(cifar_run, tmp_path,
                                                                      tiny_inception):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from ganjax.evaluation import fid, reference  # pylint: disable=g-import-not-at-top
  with open(os.path.join(cifar_run, "best.json"), encoding="utf-8") as f:
    assert json.load(f)["main_metric"] == ["swd"]  # training's cheap metric
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    cheap = evaluate.evaluate(cifar_run, metrics="cheap")
    assert {"swd", "swd_32", "swd_16"} <= set(cheap) and "fid" not in cheap
    result = evaluate.evaluate(cifar_run, num_samples=40)
    cached = os.listdir(tmp_path / "cache" / "references")
    assert len(cached) == 1  # measured once; a second evaluation reads the cache
    again = evaluate.evaluate(cifar_run, num_samples=40)
  assert again["fid"] == result["fid"] and again["precision"] == result["precision"]

  # The cache file's name says what it holds; it holds the whole (mocked) training split.
  sha = fid.weights_sha256(fid.resolve_weights())
  name = cached[0]
  assert name.startswith("tfds-cifar10-") and f"_train_32x32x3_inception-{sha[:12]}_" in name
  assert name.endswith(f"_n{MOCK_EXAMPLES}.npz")
  ref = reference.read(str(tmp_path / "cache" / "references" / name))
  assert ref.features.shape == (MOCK_EXAMPLES, 64) and ref.whole_split
  want, state = _direct_inception_metrics(cifar_run, 40, ref.features)
  for key, value in want.items():
    assert result[key] == pytest.approx(value, rel=1e-5), key
  assert np.isfinite(result["kid"]) and result["kid_std"] >= 0
  assert 0 < result["precision"] <= 1 and 0 <= result["coverage"] <= 1

  # What the numbers were measured under.
  assert result["protocol"] == "custom"  # a number of samples of neither protocol
  assert (result["n_fake"], result["n_real"], result["prdc_n"]) == (40, MOCK_EXAMPLES, 40)
  assert (result["is_splits"], result["is_split_size"]) == (10, 4)
  assert (result["pr_k"], result["dc_k"]) == (3, 5)
  assert result["inception_weights_sha256"] == sha
  assert result["checkpoint_sha256"] == suite.weights_sha256(state)
  assert json.load(open(os.path.join(cifar_run, "eval.json")))["n_real"] == MOCK_EXAMPLES


def test_standard_protocol_on_tfds(cifar_run, tmp_path, tiny_inception, monkeypatch, capsys):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  config, _, _ = train.load_run(cifar_run)
  monkeypatch.setattr(suite, "REAL_IMAGES", 20)  # a quick reference smaller than the split
  with tfds.testing.mock_data(num_examples=MOCK_EXAMPLES):
    # --num_samples 50000 as set up (without generating 50,000 images): the whole
    # split, the Inception Score over 10 splits of 5,000.
    record = suite.Evaluator(config, num_samples=50_000).record()
    assert record["protocol"] == "standard" and record["n_fake"] == 50_000
    assert record["n_real"] == MOCK_EXAMPLES and record["reference_whole_split"]
    assert (record["is_splits"], record["is_split_size"]) == (10, 5000)
    assert record["reference"] == "tfds:cifar10" and record["reference_split"] == "train"
    # The quick protocol: the first REAL_IMAGES of the split.
    quick = suite.Evaluator(config).record()
    assert quick["protocol"] == "quick" and quick["n_fake"] == suite.IMAGE_SAMPLES
    assert quick["n_real"] == 20 and not quick["reference_whole_split"]
    assert (quick["is_splits"], quick["is_split_size"]) == (10, 1000)

    # End to end through the command line, 120 samples standing in for 50,000.
    monkeypatch.setattr(suite, "STANDARD_SAMPLES", 120)
    evaluate.main(["--workdir", cifar_run, "--num_samples", "120"])
  printed = capsys.readouterr().out
  saved = json.load(open(os.path.join(cifar_run, "eval.json")))
  assert saved["protocol"] == "standard" and saved["n_fake"] == saved["num_samples"] == 120
  assert saved["n_real"] == MOCK_EXAMPLES and saved["prdc_n"] == MOCK_EXAMPLES
  assert (saved["is_splits"], saved["is_split_size"]) == (10, 12)
  for key in ("fid", "kid", "precision", "recall", "density", "coverage", "protocol"):
    assert any(line.split()[:1] == [key] for line in printed.splitlines()), key
  assert "standard" in printed
  ref = os.path.join(tmp_path, "cache", "references")
  whole = [n for n in os.listdir(ref) if n.endswith(f"_n{MOCK_EXAMPLES}.npz")]
  from ganjax.evaluation import reference  # pylint: disable=g-import-not-at-top
  real = reference.read(os.path.join(ref, whole[0])).features
  want, _ = _direct_inception_metrics(cifar_run, 120, real)
  for key, value in want.items():
    assert saved[key] == pytest.approx(value, rel=1e-5), key


# --- MNIST classifier metrics and CycleGAN metrics (the shipped classifiers) ------------


def test_mnist_run_classifier_metrics_and_tstr(image_runs, tiny_inception, monkeypatch):
  import functools  # pylint: disable=g-import-not-at-top
  from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
  # TSTR trains two classifiers; a few steps are enough to see them reported.
  monkeypatch.setattr(classifier, "tstr", functools.partial(classifier.tstr, steps=30))
  run = image_runs["cgan"]
  cheap = evaluate.evaluate(run, num_samples=300, metrics="cheap")
  for key in ("classifier_fid", "classifier_is", "label_histogram", "classes_covered",
              "kl_from_uniform", "conditioning_accuracy"):
    assert key in cheap, key
  assert "tstr_accuracy" not in cheap and "fid" not in cheap

  # The same samples, scored directly.
  config, state, _ = train.load_run(run)
  labels = np.arange(300, dtype=np.int32) % 10
  fake = suite.to_uint8(suite.generate(config, state, 300, jax.random.PRNGKey(0), labels))
  want = classifier.mnist_metrics(fake)
  assert cheap["classifier_fid"] == pytest.approx(want["classifier_fid"], rel=1e-6)
  # Precision/recall of classifier features: 300 generated digits against 300 of the
  # 500 held-out ones (equal sizes).
  clf = classifier.load("mnist")
  real = clf.predict(data.bundled_mnist("test")[0])["features"]
  keep = np.sort(np.random.default_rng(prdc.SUBSET_SEED).choice(500, 300, replace=False))
  scores = prdc.precision_recall_density_coverage(real[keep], clf.predict(fake)["features"])
  for key, value in scores.items():
    assert cheap[f"classifier_{key}"] == pytest.approx(value), key
  assert (cheap["n_real_classifier"], cheap["classifier_prdc_n"]) == (500, 300)
  assert cheap["label_histogram"] == pytest.approx(want["label_histogram"])
  assert cheap["conditioning_accuracy"] == pytest.approx(
      classifier.conditioning_accuracy(fake, labels))

  full = evaluate.evaluate(run, num_samples=300)  # + TSTR and the (stand-in) Inception metrics
  assert full["classifier_fid"] == pytest.approx(cheap["classifier_fid"])
  assert 0 <= full["tstr_accuracy"] <= 1 and full["trtr_accuracy"] > 0.5
  assert full["tstr_steps"] == 30
  assert {"fid", "inception_score", "kid", "precision", "recall", "density",
          "coverage"} <= set(full)


def test_mnist_run_without_inception_weights_notes_why(image_runs, monkeypatch, tmp_path):
  monkeypatch.setenv("GANJAX_CACHE", str(tmp_path / "empty-cache"))
  monkeypatch.delenv("GANJAX_INCEPTION_WEIGHTS", raising=False)
  from ganjax.evaluation import fid  # pylint: disable=g-import-not-at-top

  def offline(*args, **kwargs):
    raise GanjaxError("no network (test)")
  monkeypatch.setattr(fid, "download", offline)
  evaluator = suite.Evaluator(json_config(image_runs["gan"]), level="all", num_samples=50)
  assert any("Inception metrics skipped" in note for note in evaluator.notes)
  assert evaluator.main.keys == ("classifier_fid",)


def test_reference_names_a_dataset_or_a_file(image_runs, tiny_inception, tmp_path):
  from ganjax.evaluation import fid, reference  # pylint: disable=g-import-not-at-top
  run = image_runs["gan"]
  default = evaluate.evaluate(run, num_samples=60)
  assert default["reference"] == "bundled:mnist" and default["n_real"] == 300  # REAL_IMAGES
  assert default["prdc_n"] == 60 and default["protocol"] == "custom"
  named = evaluate.evaluate(run, num_samples=60, reference="bundled:mnist")
  keys = ("fid", "kid", "precision", "recall", "density", "coverage")
  assert all(named[k] == default[k] for k in keys)
  # The cached file itself as the reference: the same numbers.
  from_file = evaluate.evaluate(run, num_samples=60, reference=named["reference_file"])
  assert all(from_file[k] == default[k] for k in keys)
  # pytorch-fid's statistics alone: the FID, no KID or precision/recall.
  ref = reference.read(named["reference_file"])
  fid.save_stats(str(tmp_path / "stats.npz"), ref.mu, ref.sigma)
  only = evaluate.evaluate(run, num_samples=60, reference=str(tmp_path / "stats.npz"))
  assert only["fid"] == pytest.approx(default["fid"], rel=1e-9)
  assert "kid" not in only and "precision" not in only and "classifier_precision" in only
  assert any("statistics only" in note for note in only["notes"])

  # Bad references: one clear error each, naming the value and the fix.
  np.savez(tmp_path / "narrow.npz", mu=np.zeros(3), sigma=np.eye(3))
  other = reference.Reference(ref.mu, ref.sigma, None, {"weights_sha256": "0" * 64})
  reference.save(str(tmp_path / "other_weights.npz"), other)
  cases = {
      str(tmp_path / "narrow.npz"): "holds 3-d statistics but the Inception features are 64-d",
      str(tmp_path / "other_weights.npz"): "measured with Inception weights of SHA-256 000000",
      str(tmp_path / "missing.npz"): "missing.npz does not exist; give a reference file",
      "imagenet": "--reference 'imagenet' is not a reference",
      "toy:ring": "the 2D mixtures have no image reference",
      "bundled:digit_pair": "unpaired two-domain data",
      f"folder:{tmp_path / 'nowhere'}": "nowhere does not exist",
  }
  for value, message in cases.items():
    with pytest.raises(SystemExit) as e:
      evaluate.main(["--workdir", run, "--num_samples", "20", "--reference", value])
    assert e.value.code.startswith("ganjax: error:") and message in e.value.code, e.value.code
    assert "\n" not in e.value.code


def json_config(workdir):
  config, _, _ = train.load_run(workdir)
  return config


def test_cyclegan_digit_pair_metrics(tmp_path):
  from ganjax import data  # pylint: disable=g-import-not-at-top
  from ganjax.evaluation import classifier  # pylint: disable=g-import-not-at-top
  config = experiment_config("cyclegan")
  config.update(dict(g_width=4, d_width=4, num_blocks=1, batch_size=8, num_train_steps=2,
                     log_every=1, sample_every=2, checkpoint_every=2, num_samples=3,
                     pool_size=5, eval_every=2))
  workdir = str(tmp_path / "cycle")
  train.train_and_evaluate(config, workdir)
  best = json.load(open(os.path.join(workdir, "best.json")))
  assert best["main_metric"] == ["class_preserved"] and best["step"] == 2
  full = evaluate.evaluate(workdir, metrics="cheap")  # the whole test split, as in training
  assert full["num_samples"] == 250
  assert full["class_preserved"] == pytest.approx(best["metrics"]["class_preserved"])
  result = evaluate.evaluate(workdir, metrics="cheap", num_samples=40)
  assert result["num_samples"] == 40

  # Direct computation on 40 test digits of each domain, evenly spaced (every class).
  config, state, _ = train.load_run(workdir)
  from ganjax.algorithms import cyclegan  # pylint: disable=g-import-not-at-top
  subset = np.linspace(0, 249, 40).round().astype(int)
  a = data.unpaired_images(config, "test", "a")[subset]
  _, labels_a, _, _ = data.digit_pair(config.load_size, "test")
  labels_a = labels_a[subset]
  assert len(set(labels_a)) == 10
  ab = np.asarray(cyclegan.translate(config, state, data.to_unit_range(a), "AtoB"))
  aba = np.asarray(cyclegan.translate(config, state, data.to_unit_range(suite.to_uint8(ab)),
                                      "BtoA"))
  assert result["cycle_l1_a"] == pytest.approx(
      float(np.mean(np.abs(aba - data.to_unit_range(a)))), rel=1e-4)
  assert result["class_preserved_AtoB"] == pytest.approx(
      classifier.class_preserved(suite.to_uint8(ab), labels_a))
  assert result["classifier_fid_AtoB"] > 0
