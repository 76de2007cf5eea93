"""Unpaired two-domain data for CycleGAN: bundled:digit_pair, folder:<path>, tfds:cycle_gan."""

import hashlib
import os

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from ganjax import data
from ganjax.errors import GanjaxError


def config(**overrides):
  c = ml_collections.ConfigDict(dict(
      algorithm="cyclegan", dataset="bundled:digit_pair", image_size=32, load_size=32,
      flip=False, channels=3, batch_size=8, seed=0, tfds_data_dir="", shuffle_buffer=10))
  c.update(overrides)
  return c


# bundled:digit_pair ----------------------------------------------------------


def _keys(images):
  return [hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest() for x in images]


def test_digit_pair_domains_look_different_and_keep_their_labels():
  a, a_labels, b, b_labels = data.digit_pair(32)
  assert a.shape == b.shape == (2250, 32, 32, 3) and a.dtype == b.dtype == np.uint8
  assert a_labels.dtype == np.int32 and np.bincount(a_labels).tolist() == [225] * 10
  assert np.bincount(b_labels).tolist() == [225] * 10
  # A: white digits on black, grey; B: amber strokes on dark blue, coloured.
  assert np.array_equal(a[..., 0], a[..., 2]) and a.min() == 0 and a.max() == 255
  assert np.all(b[:, 0, 0] == data.DIGIT_PAIR_BACKGROUND)
  assert (b.max(-1).astype(int) - b.min(-1)).mean() > 50  # saturated colours, not greys
  # B's strokes are thicker: more of the image is ink.
  a_ink, b_ink = (a[..., 0] > 127).mean(), (b[..., 0] > 127).mean()
  assert 1.5 * a_ink < b_ink
  # Each domain image is one of the bundled digits, rendered its way, with that digit's
  # label; A and B hold different digits, and the test split holds others still.
  digits, labels = data._load_bundled_mnist()  # pylint: disable=protected-access
  grey = data.fit_mnist(digits, 32)
  as_a = dict(zip(_keys(np.repeat(grey[..., None], 3, -1)), range(5000)))
  as_b = dict(zip(_keys(data.colourise(data.fit_mnist(data.thicken(digits), 32))), range(5000)))
  at, at_labels, bt, bt_labels = data.digit_pair(32, split="test")
  assert at.shape == bt.shape == (250, 32, 32, 3)
  assert np.bincount(at_labels).tolist() == np.bincount(bt_labels).tolist() == [25] * 10
  sources = {}
  for name, images, domain_labels, lookup in [("a", a, a_labels, as_a), ("b", b, b_labels, as_b),
                                              ("at", at, at_labels, as_a),
                                              ("bt", bt, bt_labels, as_b)]:
    index = np.array([lookup[k] for k in _keys(images)])
    np.testing.assert_array_equal(labels[index], domain_labels)
    sources[name] = set(index.tolist())
  assert len(sources["a"]) == len(sources["b"]) == 2250
  for x, y in [("a", "b"), ("a", "at"), ("a", "bt"), ("b", "at"), ("b", "bt"), ("at", "bt")]:
    assert not sources[x] & sources[y], (x, y)


def test_digit_pair_other_sizes_and_channels():
  a, _, b, _ = data.digit_pair(64)
  assert a.shape == b.shape == (2250, 64, 64, 3)
  with pytest.raises(ValueError, match="split"):
    data.digit_pair(32, split="val")
  with pytest.raises(GanjaxError, match="has 3 channels but channels=1; set --config.channels=3"):
    data.make_batches(config(channels=1))
  assert data.example_shape(config(image_size=64, load_size=72)) == (64, 64, 3)


def test_specs_and_the_unpaired_predicate(tmp_path):
  assert data.parse_spec("bundled:digit_pair") == data.Spec("bundled", "digit_pair")
  assert data.parse_spec("folder:/data/horse2zebra") == data.Spec("folder", "/data/horse2zebra")
  os.makedirs(tmp_path / "pair" / "trainA")  # a folder holding trainA/ (or trainB/) is a pair
  os.makedirs(tmp_path / "images" / "cats")  # any other folder is one set of images
  for spec in ["bundled:digit_pair", f"folder:{tmp_path / 'pair'}", "tfds:cycle_gan/horse2zebra",
               "tfds:cycle_gan"]:
    assert data.is_unpaired(spec)
  for spec in ["bundled:mnist", "tfds:cifar10", "toy:ring", f"folder:{tmp_path / 'images'}",
               f"folder:{tmp_path / 'missing'}"]:
    assert not data.is_unpaired(spec)
  with pytest.raises(GanjaxError, match="folder:<path>"):
    data.parse_spec("folder:")
  with pytest.raises(GanjaxError, match="unpaired two-domain data.*num_classes=0"):
    data.make_batches(config(num_classes=10))
  with pytest.raises(GanjaxError, match="load_size=28 is smaller than image_size=32"):
    data.make_batches(config(load_size=28))
  with pytest.raises(GanjaxError, match="not unpaired"):
    data.unpaired_images(config(dataset="bundled:mnist"), "test", "a")


# Step-indexed batches of the in-memory sources ------------------------------------


def test_unpaired_batches_are_a_pure_function_of_seed_and_step():
  c = config(load_size=36, flip=True)
  batches = data.make_batches(c)
  first = [next(batches) for _ in range(4)]
  assert set(first[0]) == {"image_a", "image_b"}
  for key in ("image_a", "image_b"):
    assert first[0][key].shape == (1, 8, 32, 32, 3) and first[0][key].dtype == np.float32
    assert first[0][key].min() == -1.0 and first[0][key].max() == 1.0
  resumed = next(data.make_batches(c, start_step=3))
  for key in resumed:
    np.testing.assert_array_equal(resumed[key], first[3][key])
  assert not np.array_equal(next(data.make_batches(config(load_size=36, flip=True, seed=1)))
                            ["image_a"], first[0]["image_a"])
  grouped = next(data.make_batches(c, start_step=1, per_step=lambda t: 2))  # after 2 batches
  np.testing.assert_array_equal(grouped["image_b"],
                                np.concatenate([first[2]["image_b"], first[3]["image_b"]]))


def test_hosts_slices_make_the_global_batch():
  c = config(load_size=40, flip=True)
  whole = next(data.make_batches(c, start_step=5))
  parts = [next(data.make_batches(c, start_step=5, process_index=p, process_count=4))
           for p in range(4)]
  for key in whole:
    assert parts[0][key].shape == (1, 2, 32, 32, 3)
    np.testing.assert_array_equal(np.concatenate([p[key] for p in parts], axis=1), whole[key])


def test_domains_are_shuffled_independently_and_each_epoch_visits_all():
  a, _, b, _ = data.digit_pair(32)
  source = data.UnpairedArraySource(a, b[:2000], global_batch_size=50, seed=3, crop_size=32,
                                    flip=False)
  assert not np.array_equal(source.indices("a", 0), source.indices("b", 0))
  seen_a = np.concatenate([source.indices("a", t) for t in range(45)])
  seen_b = np.concatenate([source.indices("b", t) for t in range(40)])
  assert sorted(seen_a.tolist()) == list(range(2250))
  assert sorted(seen_b.tolist()) == list(range(2000))
  assert not np.array_equal(source.indices("a", 45), source.indices("a", 0))  # a new order


def test_crops_are_windows_of_the_loaded_images_and_flips_are_drawn_per_example():
  rng = np.random.default_rng(0)
  a = rng.integers(0, 256, (10, 12, 12, 1), dtype=np.uint8)
  b = rng.integers(0, 256, (7, 12, 12, 1), dtype=np.uint8)
  source = data.UnpairedArraySource(a, b, global_batch_size=6, seed=0, crop_size=8, flip=True)
  flipped = 0
  for step in range(4):
    batch = source.batch(step)
    for domain, images in (("a", a), ("b", b)):
      tops, lefts, flips = source.augmentation(domain, step)
      for row, i in enumerate(source.indices(domain, step)):
        window = images[i, tops[row]:tops[row] + 8, lefts[row]:lefts[row] + 8]
        expected = window[:, ::-1] if flips[row] else window
        np.testing.assert_array_equal(batch[f"image_{domain}"][row],
                                      data.to_unit_range(expected))
      flipped += flips.sum()
  assert 0 < flipped < 48
  unflipped = data.UnpairedArraySource(a, b, 6, seed=0, crop_size=8, flip=False)
  assert not unflipped.augmentation("a", 0)[2].any()


# folder:<path> -----------------------------------------------------------------


def _half_red(width, height, red_on_left=True):
  """An RGB image, red on one half and black on the other."""
  pixels = np.zeros((height, width, 3), np.uint8)
  half = slice(0, width // 2) if red_on_left else slice(width // 2, None)
  pixels[:, half, 0] = 255
  return Image.fromarray(pixels)


def _make_folder(root, test=True):
  for split in ("train", "test") if test else ("train",):
    os.makedirs(root / f"{split}A")
    os.makedirs(root / f"{split}B")
    for i in range(5):
      _half_red(24 + 4 * i, 20).save(root / f"{split}A" / f"{i}.png")
    for i, ext in enumerate(["jpg", "JPEG", "bmp", "webp"]):
      Image.new("RGB", (30, 30), (0, 60 * i, 200)).save(root / f"{split}B" / f"b{i}.{ext}")
  (root / "trainA" / "notes.txt").write_text("not an image")
  return root


def _snapshot(root):
  out = {}
  for directory, _, files in os.walk(root):
    for name in files:
      path = os.path.join(directory, name)
      with open(path, "rb") as f:
        out[path] = (hashlib.sha1(f.read()).hexdigest(), os.stat(path).st_mtime_ns)
  return out


def test_folder_loads_resizes_crops_and_flips_without_touching_the_files(tmp_path):
  root = _make_folder(tmp_path / "pair")
  before = _snapshot(root)
  images = data.folder_images(data.parse_spec(f"folder:{root}"), "train", "a", 16, 3)
  assert images.shape == (5, 16, 16, 3) and images.dtype == np.uint8
  assert images[:, :, :6, 0].min() > 200 and images[:, :, 10:, 0].max() < 50  # red on the left
  c = config(dataset=f"folder:{root}", image_size=16, load_size=20, flip=True, batch_size=4)
  batch = next(data.make_batches(c))
  assert batch["image_a"].shape == batch["image_b"].shape == (1, 4, 16, 16, 3)
  assert -1.0 <= batch["image_a"].min() and batch["image_a"].max() <= 1.0
  # Uncropped (load_size = image_size), a flipped example has its red half on the right.
  def red_on_right(config_, steps=6):
    batches = data.make_batches(config_)
    a = np.concatenate([next(batches)["image_a"][0] for _ in range(steps)])
    return a[:, :, -4:, 0].mean(axis=(1, 2)) > 0.5
  flips = red_on_right(config(dataset=f"folder:{root}", image_size=16, load_size=16,
                              flip=True, batch_size=4))
  assert 0 < flips.sum() < len(flips)
  np.testing.assert_array_equal(flips, red_on_right(config(
      dataset=f"folder:{root}", image_size=16, load_size=16, flip=True, batch_size=4)))
  assert not red_on_right(config(dataset=f"folder:{root}", image_size=16, load_size=16,
                                 flip=False, batch_size=4)).any()
  test_b = data.unpaired_images(c, "test", "b")
  assert test_b.shape == (4, 16, 16, 3) and test_b.dtype == np.uint8
  preview = data.preview_examples(c, 3)
  assert preview["a"].shape == preview["b"].shape == (3, 16, 16, 3)
  assert _snapshot(root) == before and sorted(os.listdir(root)) == ["testA", "testB", "trainA",
                                                                     "trainB"]


def test_folder_greyscale_and_no_test_split(tmp_path):
  root = tmp_path / "grey"
  for domain in "AB":
    os.makedirs(root / f"train{domain}")
    for i in range(3):
      Image.new("L", (10, 14), 40 * i).save(root / f"train{domain}" / f"{i}.png")
  Image.new("RGB", (10, 10), (90, 90, 90)).save(root / "trainA" / "grey_rgb.png")
  c = config(dataset=f"folder:{root}", image_size=8, load_size=8, channels=1, batch_size=2)
  assert next(data.make_batches(c))["image_a"].shape == (1, 2, 8, 8, 1)
  assert data.preview_examples(c, 8)["a"].shape == (4, 8, 8, 1)  # from train: no testA/
  with pytest.raises(GanjaxError, match="has no testB/ folder"):
    data.unpaired_images(c, "test", "b")
  rgb = data.unpaired_images(config(dataset=f"folder:{root}", image_size=8, load_size=8), "train",
                             "a")
  assert rgb.shape == (4, 8, 8, 3) and np.array_equal(rgb[..., 0], rgb[..., 1])


def _missing_folder(root):
  return root / "nowhere", "does not exist; point folder:<path> at a directory holding trainA/"


def _missing_train_b(root):
  _make_folder(root, test=False)
  for name in os.listdir(root / "trainB"):
    os.remove(root / "trainB" / name)
  os.rmdir(root / "trainB")
  return root, f"has no trainB/ folder; put domain B's train images in {root / 'trainB'}"


def _empty_domain(root):
  _make_folder(root, test=False)
  for name in os.listdir(root / "trainA"):
    if name.endswith(".png"):
      os.remove(root / "trainA" / name)
  return root, f"{root / 'trainA'} holds no image files (.png, .jpg"


def _corrupt_file(root):
  _make_folder(root, test=False)
  (root / "trainB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
  return root, f"cannot read the image {root / 'trainB' / 'broken.png'} .*replace or remove"


def _truncated_jpeg(root):
  _make_folder(root, test=False)
  whole = (root / "trainB" / "b0.jpg").read_bytes()
  (root / "trainB" / "b0.jpg").write_bytes(whole[:len(whole) // 2])
  return root, f"cannot read the image {root / 'trainB' / 'b0.jpg'}"


def _colour_for_grey(root):
  _make_folder(root, test=False)
  return root, (f"{root / 'trainA' / '0.png'} is a colour image but channels=1;"
                " set --config.channels=3")


def _sixteen_bit(root):
  _make_folder(root, test=False)
  Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(root / "trainA" / "deep.png")
  return root, f"{root / 'trainA' / 'deep.png'} has 16-bit or float pixels"


@pytest.mark.parametrize("make, channels", [
    (_missing_folder, 3), (_missing_train_b, 3), (_empty_domain, 3), (_corrupt_file, 3),
    (_truncated_jpeg, 3), (_colour_for_grey, 1), (_sixteen_bit, 3)])
def test_folder_errors_name_the_path_and_the_fix(tmp_path, make, channels):
  root, message = make(tmp_path / "pair")
  before = _snapshot(tmp_path)
  with pytest.raises(GanjaxError, match=message.replace("(", r"\(").replace(")", r"\)")) as error:
    next(data.make_batches(config(dataset=f"folder:{root}", image_size=8, load_size=8,
                                  channels=channels)))
  assert "\n" not in str(error.value)
  assert _snapshot(tmp_path) == before


def test_folder_channels_other_than_grey_or_rgb_are_refused(tmp_path):
  root = _make_folder(tmp_path / "pair", test=False)
  with pytest.raises(GanjaxError, match="channels=4: .* set --config.channels=3"):
    next(data.make_batches(config(dataset=f"folder:{root}", channels=4)))


# tfds:cycle_gan/<pair> --------------------------------------------------------


def test_tfds_cycle_gan_under_mock_data():
  c = config(dataset="tfds:cycle_gan/horse2zebra", image_size=32, load_size=40, flip=True,
             batch_size=4)
  with tfds.testing.mock_data(num_examples=6):  # random images of random sizes, e.g. 28x17
    batches = data.make_batches(c, process_index=1, process_count=2)
    first = [next(batches) for _ in range(2)]
    again = next(data.make_batches(c, process_index=1, process_count=2))
    test_a = data.unpaired_images(c, "test", "a")
    preview = data.preview_examples(c, 4)
  for key in ("image_a", "image_b"):
    assert first[0][key].shape == (1, 2, 32, 32, 3) and first[0][key].dtype == np.float32
    assert -1.0 <= first[0][key].min() and first[0][key].max() <= 1.0
    np.testing.assert_array_equal(again[key], first[0][key])  # the same seed, the same batches
  assert test_a.shape == (6, 32, 32, 3) and test_a.dtype == np.uint8
  assert preview["a"].shape == preview["b"].shape == (4, 32, 32, 3)


def test_tfds_resize_and_crop_matches_the_reference_preprocessing():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  columns = np.tile(np.arange(0, 240, 10, dtype=np.uint8)[None, :, None], (24, 1, 3))
  image = tf.constant(columns)  # 24x24, brighter to the right
  same = dict(load_size=24, image_size=24, channels=3, flip=True)
  outputs = [data.tf_resize_and_crop(image, seed=tf.constant([7, k], tf.int64), **same).numpy()
             for k in range(12)]
  flipped = [np.array_equal(o, columns[:, ::-1]) for o in outputs]
  assert all(f or np.array_equal(o, columns) for f, o in zip(flipped, outputs))
  assert 0 < sum(flipped) < 12
  np.testing.assert_array_equal(
      data.tf_resize_and_crop(image, seed=tf.constant([7, 3], tf.int64), **same), outputs[3])
  # Resized to load_size, then an image_size window: random, or the centre one.
  crops = [data.tf_resize_and_crop(image, load_size=36, image_size=32, channels=3,
                                   seed=tf.constant([1, k], tf.int64)).numpy() for k in range(8)]
  assert all(c.shape == (32, 32, 3) and c.dtype == np.uint8 for c in crops)
  assert len({c[0, 0, 0] for c in crops}) > 1  # windows at different offsets
  centre = data.tf_resize_and_crop(image, load_size=36, image_size=32, channels=3).numpy()
  resized = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(
      image, (36, 36), method="bicubic", antialias=True)), 0, 255), tf.uint8).numpy()
  np.testing.assert_array_equal(centre, resized[2:34, 2:34])
  grey = data.tf_resize_and_crop(tf.constant(columns[..., :1]), load_size=24, image_size=24,
                                 channels=3)
  assert grey.shape == (24, 24, 3)


def test_tfds_cycle_gan_errors(tmp_path, monkeypatch):
  monkeypatch.setattr(data, "_network_reachable", lambda timeout=3.0: False)
  with pytest.raises(GanjaxError) as error:
    next(data.make_batches(config(dataset="tfds:cycle_gan/horse2zebra",
                                  tfds_data_dir=str(tmp_path))))
  message = str(error.value)
  assert "tfds:cycle_gan/horse2zebra is not prepared" in message and "\n" not in message
  assert "tfds build cycle_gan/horse2zebra" in message
  assert "--config.dataset=bundled:digit_pair" in message
  with pytest.raises(GanjaxError, match="cycle_gan has no config 'foo2bar'; use one of:.*horse2"):
    data.make_batches(config(dataset="tfds:cycle_gan/foo2bar"))
  with tfds.testing.mock_data(num_examples=4):
    with pytest.raises(GanjaxError, match="has 3 channels but channels=1"):
      data.make_batches(config(dataset="tfds:cycle_gan/horse2zebra", channels=1))


def test_digit_pair_preview_spreads_over_the_classes():
  c = config(dataset="bundled:digit_pair", image_size=32, load_size=32)
  preview = data.preview_examples(c, 10)
  _, a_labels, _, b_labels = data.digit_pair(32, "test")
  test_a = data.to_unit_range(data.unpaired_images(c, "test", "a"))
  picked = [int(np.flatnonzero((test_a == image).all(axis=(1, 2, 3)))[0])
            for image in preview["a"]]
  assert len(set(a_labels[picked])) == 10  # every digit, not ten zeros
  assert preview["b"].shape == (10, 32, 32, 3) and len(set(b_labels)) == 10
