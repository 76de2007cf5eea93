"""Tests for ganjax.evaluation.reference: named reference sets, measured once and cached.

A NumPy stand-in for the feature network keeps these quick: it records the
images it is given, so the tests can check which images a reference holds.
"""

import json
import os

import numpy as np
import pytest
from PIL import Image

from ganjax import data
from ganjax.errors import GanjaxError
from ganjax.evaluation import fid, reference

SHA = "ab" * 32  # the stand-in's "weights" hash


class Recorder:
  """images -> {"pool": per-image means over 2x2 pixel blocks}, remembering the images."""

  def __init__(self):
    self.calls, self.images = 0, []

  def __call__(self, chunks):
    self.calls += 1
    images = np.concatenate(list(chunks))
    self.images.append(images)
    x = images.astype(np.float32)
    n, h, w, c = x.shape
    pool = x.reshape(n, 2, h // 2, 2, w // 2, c).mean(axis=(2, 4)).reshape(n, -1)
    return {"pool": pool}


@pytest.fixture
def cache(tmp_path, monkeypatch):
  monkeypatch.setenv(fid.CACHE_ENV, str(tmp_path / "cache"))
  return tmp_path / "cache" / reference.REFERENCES_DIR


def _load(src, recorder):
  return reference.load(src, recorder, extractor_name="stand-in", weights_sha256=SHA,
                        log=lambda message: None)


def test_bundled_reference_is_measured_once_and_cached(cache):
  src = reference.source("bundled:mnist", image_size=32, channels=1)
  assert (src.count, src.whole_split, src.split) == (4500, True, "train")
  recorder = Recorder()
  ref = _load(src, recorder)
  # The whole split, each image once, in the fixed order.
  images, _ = data.bundled_mnist("train", 32, 1)
  order = np.random.default_rng(reference.REFERENCE_SEED).permutation(4500)
  np.testing.assert_array_equal(recorder.images[0], images[order])
  assert ref.features.shape == (4500, 4) and ref.features.dtype == np.float32
  mu, sigma = fid.statistics(ref.features)
  np.testing.assert_array_equal(ref.mu, mu)
  np.testing.assert_array_equal(ref.sigma, sigma)
  # The name says what the file holds.
  name = "bundled-mnist_train_32x32x1_stand-in-abababababab_n4500.npz"
  assert os.listdir(cache) == [name] and ref.path == str(cache / name)
  assert ref.meta == {"dataset": "bundled:mnist", "split": "train", "image_size": 32,
                      "channels": 1, "count": 4500, "whole_split": True,
                      "extractor": "stand-in", "weights_sha256": SHA}
  # A second load reads the file; the network is not run again.
  again = _load(reference.source("bundled:mnist", image_size=32, channels=1), recorder)
  assert recorder.calls == 1
  np.testing.assert_array_equal(again.features, ref.features)
  # pytorch-fid's reader: the statistics, as arrays mu and sigma.
  with np.load(ref.path) as f:
    np.testing.assert_array_equal(f["mu"][:], mu)
    assert json.loads(str(f["meta"]))["count"] == 4500

  # A limited reference is the first `limit` images of the same order, in its own file.
  part = _load(reference.source("bundled:mnist", image_size=32, channels=1, limit=300),
               recorder)
  assert recorder.calls == 2 and not part.whole_split
  np.testing.assert_array_equal(part.features, ref.features[:300])
  assert sorted(os.listdir(cache))[0].endswith("_n300.npz")
  # Other weights, sizes or splits are other files.
  names = {reference.file_name(reference.source("bundled:mnist", split=split,
                                                image_size=size, channels=1), "inception", sha)
           for split in ("train", "test") for size in (32, 28) for sha in (SHA, "cd" * 32)}
  assert len(names) == 8


def test_a_damaged_cache_file_is_measured_again(cache):
  src = reference.source("bundled:mnist", split="test", image_size=32, channels=1)
  recorder = Recorder()
  ref = _load(src, recorder)
  with open(ref.path, "wb") as f:
    f.write(b"not an npz")
  messages = []
  again = reference.load(src, recorder, extractor_name="stand-in", weights_sha256=SHA,
                         log=messages.append)
  assert recorder.calls == 2 and "measuring it again" in messages[0]
  np.testing.assert_array_equal(again.features, ref.features)


def test_tfds_reference_reads_the_whole_split_once(cache):
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=30):
    src = reference.source("tfds:cifar10", image_size=32, channels=3)
    assert (src.count, src.whole_split) == (30, True)
    recorder = Recorder()
    ref = _load(src, recorder)
    direct = np.stack([x["image"] for x in tfds.as_numpy(
        tfds.builder("cifar10").as_dataset(split="train", shuffle_files=False))])
    first = _load(reference.source("tfds:cifar10", image_size=32, channels=3, limit=12),
                  recorder)
  # Every example of the split exactly once (CIFAR-10 at 32x32 is not resized).
  got = recorder.images[0]
  assert sorted(x.tobytes() for x in got) == sorted(x.tobytes() for x in direct)
  assert ref.features.shape == (30, 12)
  assert os.path.basename(ref.path).startswith("tfds-cifar10-")
  np.testing.assert_array_equal(first.features, ref.features[:12])


def _write_pngs(folder, images):
  folder.mkdir(parents=True, exist_ok=True)
  for i, image in enumerate(images):
    Image.fromarray(image).save(folder / f"{i:03d}.png")


def test_folder_reference(cache, tmp_path):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)
  _write_pngs(tmp_path / "mine", images)
  src = reference.source(f"folder:{tmp_path / 'mine'}", image_size=16, channels=3)
  assert (src.count, src.split) == (7, "all")
  recorder = Recorder()
  _load(src, recorder)
  order = np.random.default_rng(reference.REFERENCE_SEED).permutation(7)
  # The images as training reads them (data.image_folder), in the reference order.
  decoded, _ = data.image_folder(data.parse_spec(f"folder:{tmp_path / 'mine'}"), 16, 3)
  np.testing.assert_array_equal(recorder.images[0], np.asarray(decoded)[order])
  np.testing.assert_array_equal(recorder.images[0], images[order])  # 16x16: no resize
  name = reference.file_name(src, "inception", SHA)
  assert name.startswith("folder-mine-") and "_all_16x16x3_" in name
  # Another image: another file name, so the reference is measured again.
  Image.fromarray(images[0]).save(tmp_path / "mine" / "zz.png")
  src2 = reference.source(f"folder:{tmp_path / 'mine'}", image_size=16, channels=3)
  assert src2.count == 8 and reference.file_name(src2, "inception", SHA) != name
  # Class subfolders are one set; a CycleGAN folder must name one domain.
  _write_pngs(tmp_path / "classes" / "a", images[:3])
  _write_pngs(tmp_path / "classes" / "b", images[3:])
  assert reference.source(f"folder:{tmp_path / 'classes'}", image_size=8, channels=3).count == 7
  _write_pngs(tmp_path / "pair" / "trainA", images[:2])
  with pytest.raises(GanjaxError, match="name one domain's folder, e.g. folder:.*pair/trainB"):
    reference.source(f"folder:{tmp_path / 'pair'}", image_size=8, channels=3)


@pytest.mark.parametrize("spec, message", [
    ("cifar10", "--reference 'cifar10' is not a reference: dataset='cifar10' is not a dataset"),
    ("toy:grid", "the 2D mixtures have no image reference"),
    ("bundled:digit_pair", "folder:<path>/trainB"),
    ("folder:/nonexistent/refs", "/nonexistent/refs does not exist"),
])
def test_bad_specs(spec, message):
  with pytest.raises(GanjaxError) as e:
    reference.source(spec, image_size=32, channels=3)
  assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_files(tmp_path):
  with pytest.raises(GanjaxError, match="nope.npz does not exist; give a reference file"):
    reference.read(str(tmp_path / "nope.npz"))
  np.savez(tmp_path / "bad.npz", mu=np.zeros(3), sigma=np.eye(3), features=np.zeros((4, 5)))
  with pytest.raises(GanjaxError, match=r"features have shape \(4, 5\) but the statistics 3"):
    reference.read(str(tmp_path / "bad.npz"))
  with pytest.raises(GanjaxError, match="bundled:mnist has no split 'validation'"):
    reference.source("bundled:mnist", split="validation", image_size=32, channels=1)
