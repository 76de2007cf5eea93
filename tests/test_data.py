"""Data: the bundled MNIST subset, step-indexed batches, host slices, and tfds."""

import sys

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from ganjax import data
from ganjax.errors import GanjaxError


def config(**overrides):
  c = ml_collections.ConfigDict(dict(
      dataset="bundled:mnist", image_size=32, channels=1, batch_size=32, seed=0,
      tfds_data_dir="", shuffle_buffer=100))
  c.update(overrides)
  return c


def test_bundled_mnist_trains_on_450_real_digits_per_class():
  images, labels = data.load_bundled("mnist", 32, 1)
  assert images.shape == (4500, 32, 32, 1) and images.dtype == np.uint8
  assert np.bincount(labels).tolist() == [450] * 10
  # Padded with background: the 2-pixel border is empty, the digit strokes are bright.
  assert images[:, :2].max() == 0 and images[:, :, -2:].max() == 0
  assert images.max() == 255 and 0.05 < (images > 127).mean() < 0.3
  # Real MNIST digits: ones are thin, zeros are wide.
  ink = (images > 127).mean(axis=(1, 2, 3))
  assert ink[labels == 1].mean() < ink[labels == 0].mean()


def test_bundled_resize_and_channels():
  images, _ = data.load_bundled("mnist", 64, 3)
  assert images.shape == (4500, 64, 64, 3)
  np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_batches_are_in_range_and_a_pure_function_of_seed_and_step():
  first = data.make_batches(config())
  batches = [next(first) for _ in range(5)]
  assert batches[0]["image"].shape == (1, 32, 32, 32, 1)  # [critic updates, batch, H, W, C]
  assert batches[0]["image"].dtype == np.float32 and batches[0]["label"].dtype == np.int32
  assert batches[0]["image"].min() == -1.0 and batches[0]["image"].max() == 1.0
  resumed = next(data.make_batches(config(), start_step=3))
  np.testing.assert_array_equal(resumed["image"], batches[3]["image"])
  other_seed = next(data.make_batches(config(seed=1)))
  assert not np.array_equal(other_seed["label"], batches[0]["label"])


def test_an_epoch_visits_every_example_once():
  images, labels = data.load_bundled("mnist", 32, 1)
  source = data.ArraySource(images, labels, global_batch_size=100, seed=3)
  seen = np.concatenate([source.indices(t) for t in range(45)])
  assert sorted(seen.tolist()) == list(range(4500))
  assert not np.array_equal(source.indices(45), source.indices(0))  # a new order next epoch


def test_hosts_read_disjoint_slices_of_the_same_global_batch():
  whole = next(data.make_batches(config(), start_step=7))
  parts = [next(data.make_batches(config(), start_step=7, process_index=p, process_count=4))
           for p in range(4)]
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts], axis=1),
                                whole["image"])


def test_steps_with_several_critic_updates_take_consecutive_batches():
  def per_step(t):
    return 3 if t % 2 else 1  # steps 1, 3, ... take 3 batches, the others 1

  plain = data.make_batches(config())
  singles = [next(plain)["image"][0] for _ in range(9)]
  grouped = data.make_batches(config(), per_step=per_step)
  shapes = [next(grouped)["image"] for _ in range(4)]
  assert [s.shape[0] for s in shapes] == [1, 3, 1, 3]
  np.testing.assert_array_equal(np.concatenate(shapes), np.stack(singles[:8]))
  # Resuming at step 3 starts at batch 1 + 3 + 1 = 5.
  resumed = next(data.make_batches(config(), start_step=3, per_step=per_step))["image"]
  np.testing.assert_array_equal(resumed, np.stack(singles[5:8]))


@pytest.mark.parametrize("spec", ["mnist", "bundled:cifar", "hub:x", "tfds:", "toy:moons"])
def test_bad_dataset_spec_is_one_clear_error(spec):
  with pytest.raises(GanjaxError, match="dataset="):
    data.parse_spec(spec)


def test_toy_batches_are_fresh_mixture_samples_split_over_hosts():
  ring = config(dataset="toy:ring", channels=2, batch_size=2000)
  batch = next(data.make_batches(ring, start_step=5))
  points, labels = batch["image"][0], batch["label"][0]
  assert points.shape == (2000, 2) and labels.shape == (2000,)
  angle = 2 * np.pi * labels / 8  # each point is its component's mean plus N(0, 0.01^2)
  offsets = points - np.stack([np.cos(angle), np.sin(angle)], -1)
  assert np.all(np.abs(offsets) < 0.06) and 0.009 < offsets.std() < 0.011
  again = next(data.make_batches(ring, start_step=5))["image"]
  np.testing.assert_array_equal(again, batch["image"])  # a pure function of (seed, step)
  assert not np.array_equal(next(data.make_batches(ring, start_step=6))["image"], again)
  parts = [next(data.make_batches(ring, start_step=5, process_index=p, process_count=2))
           for p in range(2)]
  np.testing.assert_array_equal(np.concatenate([p["image"] for p in parts], 1), again)
  with pytest.raises(GanjaxError, match="has 2D points but channels=1"):
    data.make_batches(config(dataset="toy:grid"))


def test_tfds_source_under_mock_data():
  with tfds.testing.mock_data(num_examples=40):
    batches = data.make_batches(config(dataset="tfds:cifar10", channels=3, batch_size=8))
    batch = next(batches)
  assert batch["image"].shape == (1, 8, 32, 32, 3) and batch["image"].dtype == np.float32
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0
  assert batch["label"].shape == (1, 8) and batch["label"].dtype == np.int32


def test_tfds_celeba_is_cropped_and_resized_for_each_host():
  with tfds.testing.mock_data(num_examples=40):
    batch = next(data.make_batches(config(dataset="tfds:celeb_a", image_size=64, channels=3,
                                          batch_size=8), process_index=1, process_count=2))
  assert batch["image"].shape == (1, 4, 64, 64, 3)


def test_tfds_dataset_not_prepared_offline_says_how_to_fix_it(tmp_path, monkeypatch):
  monkeypatch.setattr(data, "_network_reachable", lambda timeout=3.0: False)
  with pytest.raises(GanjaxError) as error:
    next(data.make_batches(config(dataset="tfds:cifar10", channels=3,
                                  tfds_data_dir=str(tmp_path))))
  message = str(error.value)
  assert "tfds:cifar10 is not prepared" in message and "\n" not in message
  assert "TFDS_DATA_DIR" in message and "bundled:mnist" in message


def test_tfds_channel_mismatch_is_refused():
  with tfds.testing.mock_data(num_examples=8):
    with pytest.raises(GanjaxError, match="channels=1"):
      data.make_batches(config(dataset="tfds:cifar10", channels=1))


def test_tfds_resume_reads_on_where_an_uninterrupted_run_is():
  c = config(dataset="tfds:cifar10", channels=3, batch_size=8, shuffle_buffer=16)

  def per_step(t):
    return 2 if t % 3 == 0 else 1  # as with critic updates: 2 batches every third step

  with tfds.testing.mock_data(num_examples=40):  # 5 batches an epoch
    straight = data.make_batches(c, per_step=per_step)
    steps = [next(straight) for _ in range(12)]  # 16 batches: over three epoch boundaries
    for start in (1, 4, 7):
      resumed = data.make_batches(c, start_step=start, per_step=per_step)
      for step in range(start, start + 4):
        batch = next(resumed)
        for key in ("image", "label"):
          np.testing.assert_array_equal(batch[key], steps[step][key], err_msg=f"{start} {step}")
    plain = data.make_batches(c)
    images = np.concatenate([next(plain)["image"][0] for _ in range(10)])  # two epochs
  # Each epoch holds every example once, in its own order.
  epochs = [[im.tobytes() for im in images[e * 40:(e + 1) * 40]] for e in range(2)]
  assert len(set(epochs[0])) == 40 and set(epochs[0]) == set(epochs[1])
  assert epochs[0] != epochs[1]


def test_tfds_cycle_gan_resume_reads_on_where_an_uninterrupted_run_is():
  c = config(dataset="tfds:cycle_gan/horse2zebra", image_size=16, channels=3, load_size=20,
             flip=True, batch_size=4)
  with tfds.testing.mock_data(num_examples=6):
    straight = data.make_batches(c)
    batches = [next(straight) for _ in range(6)]  # 24 examples of each domain: 4 epochs
    resumed = data.make_batches(c, start_step=4)
    for step in (4, 5):
      batch = next(resumed)
      for key in ("image_a", "image_b"):
        np.testing.assert_array_equal(batch[key], batches[step][key])


def test_check_source_raises_what_training_would_before_any_batch(tmp_path, monkeypatch):
  data.check_source(config(algorithm="gan"))  # the bundled digits: fine
  with pytest.raises(GanjaxError, match="unpaired two-domain data, for algorithm='cyclegan'"):
    data.check_source(config(algorithm="gan", dataset="bundled:digit_pair"))
  with pytest.raises(GanjaxError, match="CycleGAN trains on two unpaired domains"):
    data.check_source(config(algorithm="cyclegan", dataset="bundled:mnist"))
  with pytest.raises(GanjaxError, match="has 2D points but channels=1"):
    data.check_source(config(dataset="toy:ring"))
  with pytest.raises(GanjaxError, match="does not exist"):
    data.check_source(config(algorithm="cyclegan", dataset=f"folder:{tmp_path / 'none'}",
                             load_size=32, channels=3))
  with pytest.raises(GanjaxError, match="tensorflow-datasets has no dataset 'no_such_set'"):
    data.check_source(config(dataset="tfds:no_such_set"))
  with tfds.testing.mock_data(num_examples=8):
    data.check_source(config(dataset="tfds:cifar10", channels=3))
    with pytest.raises(GanjaxError, match="has 3 channels but channels=1"):
      data.check_source(config(dataset="tfds:cifar10", channels=1))
  monkeypatch.setattr(data, "_network_reachable", lambda timeout=3.0: False)
  with pytest.raises(GanjaxError, match="tfds:mnist is not prepared .* no network"):
    data.check_source(config(dataset="tfds:mnist", tfds_data_dir=str(tmp_path)))


def test_tfds_without_tensorflow_installed_names_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # what an import finds then
  for run in (lambda: data.check_source(config(dataset="tfds:cifar10", channels=3)),
              lambda: next(data.make_batches(config(dataset="tfds:cifar10", channels=3))),
              lambda: data.num_classes(data.parse_spec("tfds:cifar10"))):
    with pytest.raises(GanjaxError) as error:
      run()
    message = str(error.value)
    assert "tensorflow_datasets" in message and "pip install 'ganjax[tfds]'" in message
    assert "\n" not in message
