"""folder:<path> of single images (flat or class subfolders), for the image GANs."""

import hashlib
import json
import os
import re
import subprocess
import sys

import ml_collections
import numpy as np
import pytest
from PIL import Image

from ganjax import data
from ganjax.data import folder as folder_source
from ganjax.errors import GanjaxError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLUE, RED, GREEN = (0, 0, 255), (255, 0, 0), (0, 255, 0)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
  """Every test decodes into its own cache, outside the image folders it makes."""
  path = tmp_path / "cache"
  monkeypatch.setenv("GANJAX_CACHE", str(path))
  folder_source._open_cache.cache_clear()  # pylint: disable=protected-access
  return path


def config(root, **overrides):
  c = ml_collections.ConfigDict(dict(
      algorithm="gan", dataset=f"folder:{root}", image_size=16, channels=3, batch_size=4,
      seed=0, num_classes=0, tfds_data_dir="", shuffle_buffer=10))
  c.update(overrides)
  return c


def framed(width, height, centre, frame=BLUE):
  """An RGB image: `centre` in its central square (the full shorter side), `frame` elsewhere."""
  pixels = np.zeros((height, width, 3), np.uint8)
  pixels[:] = frame
  side = min(width, height)
  top, left = (height - side) // 2, (width - side) // 2
  pixels[top:top + side, left:left + side] = centre
  return Image.fromarray(pixels)


def snapshot(root):
  out = {}
  for directory, folders, files in os.walk(root):
    out[directory] = sorted(folders)
    for name in files:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        out[path] = (hashlib.sha1(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
  return out


def make_flat(root):
  """Five RGB images of odd sizes, wide and tall, as PNG and JPEG, and a file that is no image."""
  os.makedirs(root)
  framed(37, 23, RED).save(root / "a_wide.png")
  framed(21, 50, RED).save(root / "b_tall.png")
  framed(64, 40, RED).save(root / "c_wide.jpg", quality=95)
  framed(30, 45, RED).save(root / "d_tall.JPEG", quality=95)
  framed(9, 9, RED).save(root / "e_small.png")  # smaller than image_size: enlarged
  (root / "notes.txt").write_text("not an image")
  (root / ".hidden.png").write_bytes(b"skipped")
  return root


def make_classes(root):
  """Class folders: cats (red centres) and dogs (green), with a grey image among the dogs."""
  for name, colour, count in (("cats", RED, 3), ("dogs", GREEN, 2)):
    os.makedirs(root / name)
    for i in range(count):
      framed(20 + 3 * i, 17, colour).save(root / name / f"{i}.png")
  Image.new("L", (18, 26), 90).save(root / "dogs" / "grey.png")
  return root


# Listing, decoding, cropping -----------------------------------------------------------


def test_a_flat_folder_is_centre_cropped_and_resized_and_has_no_labels(tmp_path):
  root = make_flat(tmp_path / "photos")
  before = snapshot(root)
  images, labels = data.image_folder(data.parse_spec(f"folder:{root}"), 16, 3)
  assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8
  assert labels.tolist() == [0] * 5 and labels.dtype == np.int32
  # Only each image's central square is kept: red, the blue frame cropped away.
  red, blue = images[..., 0].astype(int), images[..., 2].astype(int)
  assert red[:, 2:-2, 2:-2].min() > 200 and blue[:, 2:-2, 2:-2].max() < 40, (
      red.min(axis=(1, 2)), blue.max(axis=(1, 2)))
  assert data.num_classes(data.parse_spec(f"folder:{root}")) is None
  assert data.class_names(config(root)) is None
  assert snapshot(root) == before


def test_greyscale_from_colour_is_the_luminance_and_grey_files_keep_their_values(tmp_path):
  root = make_classes(tmp_path / "pets")
  images, labels = data.image_folder(data.parse_spec(f"folder:{root}"), 8, 1)
  assert images.shape == (6, 8, 8, 1)
  assert labels.tolist() == [0, 0, 0, 1, 1, 1]  # cats 0, 1, 2; dogs 0, 1, grey
  # PIL's luminance: 0.299 R + 0.587 G + 0.114 B.
  assert abs(int(images[0, 4, 4, 0]) - round(0.299 * 255)) <= 1
  assert abs(int(images[3, 4, 4, 0]) - round(0.587 * 255)) <= 1
  assert np.all(images[5] == 90)
  rgb, _ = data.image_folder(data.parse_spec(f"folder:{root}"), 8, 3)
  assert np.all(rgb[5] == 90) and rgb[0, 4, 4].tolist() == list(RED)


def test_class_subfolders_are_labels_and_their_names_are_kept(tmp_path):
  root = make_classes(tmp_path / "pets")
  spec = data.parse_spec(f"folder:{root}")
  images, labels = data.image_folder(spec, 16, 3)
  assert data.num_classes(spec) == 2
  assert data.class_names(config(root)) == ["cats", "dogs"]
  # Each label is its folder's: cats have red centres, dogs green ones (or grey).
  centre = images[:, 8, 8].astype(int)
  assert np.all(centre[labels == 0, 0] > 200) and np.all(centre[labels == 0, 1] < 40)
  assert np.all(centre[labels == 1, 1] > 80)
  workdir = tmp_path / "run"
  os.makedirs(workdir)
  path = data.save_class_names(config(root), str(workdir))
  assert path == str(workdir / "classes.json")
  assert json.loads((workdir / "classes.json").read_text()) == {
      "dataset": f"folder:{root}", "classes": ["cats", "dogs"]}
  assert data.load_class_names(str(workdir)) == ["cats", "dogs"]
  flat = make_flat(tmp_path / "flat")
  assert data.save_class_names(config(flat), str(tmp_path / "nowhere")) is None
  assert data.load_class_names(str(tmp_path)) is None


def test_conditional_models_need_the_folders_class_count(tmp_path):
  pets = make_classes(tmp_path / "pets")
  flat = make_flat(tmp_path / "flat")
  data.check_source(config(pets, algorithm="cgan", num_classes=2))
  batch = next(data.make_batches(config(pets, num_classes=2, batch_size=6)))
  assert sorted(batch["label"][0].tolist()) == [0, 0, 0, 1, 1, 1]  # one epoch: every image
  with pytest.raises(GanjaxError,
                     match=re.escape(f"folder:{pets}' has 2 classes; set --config.num_classes=2")):
    data.check_source(config(pets, algorithm="cgan", num_classes=10))
  with pytest.raises(GanjaxError, match="has no class labels; set --config.num_classes=0"):
    data.check_source(config(flat, algorithm="cgan", num_classes=10))


# Batches --------------------------------------------------------------------------------


def test_batches_are_a_pure_function_of_seed_and_step_and_split_over_hosts(tmp_path):
  root = make_flat(tmp_path / "photos")
  c = config(root, batch_size=4)
  batches = data.make_batches(c)
  first = [next(batches) for _ in range(4)]
  assert first[0]["image"].shape == (1, 4, 16, 16, 3) and first[0]["image"].dtype == np.float32
  assert first[0]["label"].shape == (1, 4)
  assert -1.0 <= first[0]["image"].min() and first[0]["image"].max() <= 1.0
  np.testing.assert_array_equal(next(data.make_batches(c, start_step=3))["image"],
                                first[3]["image"])
  parts = [next(data.make_batches(c, start_step=3, process_index=p, process_count=2))
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts], axis=1),
                                first[3]["image"])
  images, _ = data.image_folder(data.parse_spec(f"folder:{root}"), 16, 3)
  seen = np.concatenate([b["image"][0] for b in first])[:5]  # the first epoch's 5 images
  assert sorted(x.tobytes() for x in seen) == sorted(
      x.tobytes() for x in data.to_unit_range(np.asarray(images)))


def test_check_source_tells_image_folders_from_unpaired_ones(tmp_path):
  flat = make_flat(tmp_path / "photos")
  data.check_source(config(flat))
  with pytest.raises(GanjaxError, match=re.escape(f"{flat} has no trainA/ folder")):
    data.check_source(config(flat, algorithm="cyclegan", load_size=16))
  pair = tmp_path / "pair"
  for domain in ("trainA", "trainB"):
    os.makedirs(pair / domain)
    Image.new("RGB", (8, 8)).save(pair / domain / "0.png")
  with pytest.raises(GanjaxError, match="is unpaired two-domain data, for algorithm='cyclegan'"
                                        ".*folder:<path> of images"):
    data.check_source(config(pair))


# The cache ------------------------------------------------------------------------------


def test_decoded_once_into_a_cache_outside_the_folder_and_again_when_a_file_changes(
    tmp_path, cache, monkeypatch):
  root = make_flat(tmp_path / "photos")
  spec = data.parse_spec(f"folder:{root}")
  before = snapshot(root)
  images, _ = data.image_folder(spec, 16, 3)
  assert isinstance(images, np.memmap) and not images.flags.writeable  # read from disk
  cached = os.listdir(cache / "folders")
  assert len(cached) == 1 and cached[0].startswith("photos-")
  assert snapshot(root) == before

  # Read back, also by a new process (its own lru cache), without decoding any file.
  def no_decoding(*args):
    raise AssertionError(f"decoded again: {args}")

  monkeypatch.setattr(folder_source, "_square_image", no_decoding)
  folder_source._open_cache.cache_clear()  # pylint: disable=protected-access
  again, _ = data.image_folder(spec, 16, 3)
  np.testing.assert_array_equal(again, images)
  monkeypatch.undo()
  monkeypatch.setenv("GANJAX_CACHE", str(cache))

  # A changed file is decoded again, into a new cache that replaces the old one.
  framed(37, 23, GREEN).save(root / "a_wide.png")
  changed, _ = data.image_folder(spec, 16, 3)
  assert changed[0, 8, 8, 1] > 200 and changed[0, 8, 8, 0] < 40
  np.testing.assert_array_equal(changed[1:], images[1:])
  now = os.listdir(cache / "folders")
  assert len(now) == 1 and now != cached
  # Another size or channel count is another cache, beside it.
  assert data.image_folder(spec, 8, 1)[0].shape == (5, 8, 8, 1)
  assert len(os.listdir(cache / "folders")) == 2


def test_a_cache_inside_the_dataset_folder_is_refused(tmp_path, monkeypatch):
  root = make_flat(tmp_path / "photos")
  monkeypatch.setenv("GANJAX_CACHE", str(root / "cache"))
  before = snapshot(root)
  with pytest.raises(GanjaxError, match="is inside the dataset folder.*set GANJAX_CACHE"):
    data.image_folder(data.parse_spec(f"folder:{root}"), 16, 3)
  assert snapshot(root) == before


# One clear error for each bad folder, and the folder untouched --------------------------


def _missing(root):
  return root, re.escape(f"{root} does not exist; point folder:<path> at a directory of images")


def _not_a_directory(root):
  root.write_text("a file")
  return root, re.escape(f"{root} is not a directory")


def _empty(root):
  os.makedirs(root)
  (root / "readme.txt").write_text("no images here")
  return root, re.escape(f"{root} holds no image files (.png, .jpg, .jpeg, .bmp, .webp); put"
                         " your images there")


def _unreadable_format(root):
  os.makedirs(root)
  for i in range(2):
    Image.new("RGB", (8, 8)).save(root / f"scan{i}.tiff")
  return root, (re.escape(f"{root} holds no image files") + ".*"
                + re.escape("scan0.tiff is in a format ganjax does not read: convert"))


def _corrupt(root):
  make_flat(root)
  (root / "c_wide.jpg").write_bytes((root / "c_wide.jpg").read_bytes()[:200])  # cut short
  return root, (re.escape(f"cannot read the image {root / 'c_wide.jpg'} (") + ".*"
                + re.escape("); replace or remove that file"))


def _not_an_image(root):
  make_flat(root)
  (root / "f_fake.png").write_text("a text file named .png")
  return root, re.escape(f"cannot read the image {root / 'f_fake.png'} (")


def _empty_class(root):
  make_classes(root)
  os.makedirs(root / "birds")
  (root / "birds" / "list.txt").write_text("todo")
  return root, (re.escape(f"{root / 'birds'} holds no image files") + ".*"
                + re.escape("; put the images of class 'birds' there, or move that folder out"))


def _files_beside_classes(root):
  make_classes(root)
  Image.new("RGB", (8, 8)).save(root / "stray.png")
  return root, re.escape(f"{root} holds both image files (stray.png, ...) and subfolders"
                         " (cats/, ...)")


def _sixteen_bit(root):
  make_flat(root)
  Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / "deep.png")
  return root, re.escape(f"{root / 'deep.png'} has 16-bit or float pixels")


@pytest.mark.parametrize("make", [_missing, _not_a_directory, _empty, _unreadable_format,
                                  _corrupt, _not_an_image, _empty_class, _files_beside_classes,
                                  _sixteen_bit])
def test_bad_folders_are_one_line_naming_the_path_and_the_fix(tmp_path, cache, make):
  root, message = make(tmp_path / "photos")
  before = snapshot(tmp_path / "photos") if os.path.exists(tmp_path / "photos") else None
  with pytest.raises(GanjaxError, match=message) as error:
    data.check_source(config(root))
  assert "\n" not in str(error.value) and f"dataset='folder:{root}'" in str(error.value)
  with pytest.raises(GanjaxError, match=message):
    next(data.make_batches(config(root)))
  if before is not None:
    assert snapshot(tmp_path / "photos") == before
  # Nothing half-written is left in the cache.
  assert not os.path.isdir(cache / "folders") or not os.listdir(cache / "folders")


def test_channels_other_than_grey_or_rgb_are_refused(tmp_path):
  root = make_flat(tmp_path / "photos")
  with pytest.raises(GanjaxError, match="channels=4: .* set --config.channels=3"):
    data.check_source(config(root, channels=4))


# The command line ----------------------------------------------------------------------


TINY = ["--config.g_width=8", "--config.d_width=8", "--config.latent_dim=16",
        "--config.batch_size=16", "--config.log_every=1", "--config.sample_every=2",
        "--config.checkpoint_every=2", "--config.num_samples=4"]


def test_gan_trains_on_a_folder_of_pngs_from_the_command_line(tmp_path):
  root = tmp_path / "pngs"
  os.makedirs(root)
  rng = np.random.default_rng(0)
  for i in range(20):  # colour images of odd sizes, trained on at 32x32 in greyscale
    size = (int(rng.integers(30, 60)), int(rng.integers(30, 60)))
    Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(root / f"{i}.png")
  before = snapshot(root)
  workdir = tmp_path / "run"
  result = subprocess.run(
      [sys.executable, "-m", "ganjax.main", "--config", "experiments/gan.py",
       f"--config.dataset=folder:{root}", "--config.num_train_steps=2", *TINY,
       "--config.eval_every=2", "--workdir", str(workdir)],
      cwd=ROOT, capture_output=True, text=True, timeout=600,
      env={**os.environ, "PYTHONPATH": ROOT, "GANJAX_CACHE": str(tmp_path / "cache")})
  assert result.returncode == 0, result.stderr[-3000:]
  assert f"decoding the 20 images of folder:{root} at 32x32x1" in result.stdout
  assert "20 of the 20 images are in colour and are trained on in greyscale" in result.stdout
  assert (workdir / "checkpoints" / "2").is_dir()
  # Evaluated offline with the default cheap metrics: the sliced Wasserstein distance.
  assert "evaluation at step 2: swd" in result.stdout
  assert json.loads((workdir / "best.json").read_text())["metrics"]["swd"] > 0
  assert json.loads((workdir / "config.json").read_text())["dataset"] == f"folder:{root}"
  assert snapshot(root) == before
