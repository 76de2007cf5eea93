"""num_seeds: N replicas in one program, each the run of its own seed."""

import json
import os

import jax
import numpy as np
import pytest
from PIL import Image

from ganjax import seeds, train
from ganjax.algorithms import gan
from ganjax.cli import evaluate_cmd as evaluate, sample_cmd as sample
from tests.helpers import experiment_config, tiny_config


def read_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def leaves(state):
  return jax.tree_util.tree_leaves_with_path(jax.device_get(state))


def assert_replica_matches(multi_dir, multi, single_dir, single, i, atol):
  """Replica i of a multi-seed run against the one-seed run of its seed.

  Every logged metric of every step agrees closely: they are computed from the
  replica's own initialisation, noise and data. Parameters agree up to `atol`:
  vmap sums some convolutions in another order, and Adam's first steps turn
  such float rounding in gradients that are about zero (biases ahead of a
  BatchNorm) into steps of about the learning rate; a wrong seed, noise or
  data order moves weights by far more than that.
  """
  multi_records, single_records = read_metrics(multi_dir), read_metrics(single_dir)
  assert [r["step"] for r in multi_records] == [r["step"] for r in single_records]
  for m, s in zip(multi_records, single_records):
    for key, value in s.items():
      if key in ("step", "steps_per_sec"):
        continue
      np.testing.assert_allclose(m[f"{key}/seed_{i}"], value, rtol=2e-3, atol=1e-5,
                                 err_msg=f"step {s['step']} {key}")
  replica = seeds.replica(jax.device_get(multi), i)
  for (path, a), (_, b) in zip(leaves(replica), leaves(single)):
    name = jax.tree_util.keystr(path)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if name.startswith(".opt_state"):
      # Adam's moments hold raw gradients. From the same state and batch, one vmapped
      # DCGAN step already gives a critic first-layer kernel gradient 0.35% (of its largest
      # entry) away from the one-seed step's on XLA:CPU, and the GAN's later steps amplify
      # such differences in single entries of later layers.
      # Biases ahead of a norm have gradients of float noise (1e-7): the 1e-5.
      assert np.abs(a - b).max() <= 5e-2 * np.abs(b).max() + 1e-5, name
    else:
      np.testing.assert_allclose(a, b, atol=atol, rtol=1e-3, err_msg=name)


@pytest.fixture(scope="module")
def gan_runs(tmp_path_factory):
  """A 3-seed DCGAN run of 3 steps and the one-seed runs of seeds 5, 6 and 7."""
  root = tmp_path_factory.mktemp("seeds")
  config = lambda **kw: tiny_config(num_train_steps=3, log_every=1, eval_every=0, **kw)  # noqa: E731
  multi = train.train_and_evaluate(config(seed=5, num_seeds=3), str(root / "multi"))
  singles = [train.train_and_evaluate(config(seed=5 + i), str(root / f"seed{i}"))
             for i in range(3)]
  return root, multi, singles


def test_each_replica_is_the_run_of_its_seed(gan_runs):
  root, multi, singles = gan_runs
  assert jax.tree.leaves(multi)[0].shape[0] == 3
  for i, single in enumerate(singles):
    assert_replica_matches(str(root / "multi"), multi, str(root / f"seed{i}"), single, i,
                           atol=2e-3)
  # The replicas are different GANs: their own initialisation (and so their own samples).
  g = [seeds.replica(jax.device_get(multi), i).params["generator"] for i in range(3)]
  assert not np.allclose(jax.tree.leaves(g[0])[0], jax.tree.leaves(g[1])[0])


def test_logs_the_mean_and_spread_over_seeds_and_tiles_the_samples(gan_runs):
  root, _, _ = gan_runs
  for record in read_metrics(str(root / "multi")):
    per_seed = [record[f"d_loss/seed_{i}"] for i in range(3)]
    np.testing.assert_allclose(record["d_loss"], np.mean(per_seed), rtol=1e-6)
    np.testing.assert_allclose(record["d_loss/std"], np.std(per_seed), rtol=1e-5)
  summary = json.load(open(root / "multi" / "summary.json", encoding="utf-8"))
  single = json.load(open(root / "seed0" / "summary.json", encoding="utf-8"))
  assert summary["num_seeds"] == 3 and summary["params"] == single["params"]
  # The sample figure tiles the three seeds' grids (2 x 2 tiles, one left white).
  one = np.asarray(Image.open(root / "seed0" / "samples" / "step_2.png"))
  tiled = np.asarray(Image.open(root / "multi" / "samples" / "step_2.png"))
  h, w = one.shape[:2]
  assert tiled.shape[:2] == (2 * h + 6, 2 * w + 6)
  np.testing.assert_allclose(tiled[:h, :w].astype(float), one.astype(float), atol=2)
  assert (tiled[h + 6:, w + 6:] == 255).all()


def test_resume_of_a_multi_seed_run_is_exact(gan_runs, tmp_path):
  _, multi, _ = gan_runs
  config = lambda steps: tiny_config(seed=5, num_seeds=3, log_every=1, eval_every=0,  # noqa: E731
                                     num_train_steps=steps)
  train.train_and_evaluate(config(2), str(tmp_path / "run"))
  resumed = train.train_and_evaluate(config(3), str(tmp_path / "run"))
  for (path, a), (_, b) in zip(leaves(resumed), leaves(multi)):
    np.testing.assert_array_equal(a, b, err_msg=jax.tree_util.keystr(path))


def test_sample_picks_a_replica(gan_runs, tmp_path):
  root, _, _ = gan_runs
  out = lambda name: str(tmp_path / f"{name}.npz")  # noqa: E731
  sample.sample(str(root / "multi"), 8, out("r2"), replica=2)
  sample.sample(str(root / "seed2"), 8, out("s2"))
  sample.sample(str(root / "multi"), 8, out("r0"))
  r2, s2, r0 = (np.load(out(n))["images"].astype(int) for n in ("r2", "s2", "r0"))
  assert np.abs(r2 - s2).max() <= 1 and (r2 != r0).any()
  # In float: the replica's samples are its seed's, not another replica's.
  from ganjax.evaluation import suite  # pylint: disable=g-import-not-at-top
  config, state, _ = train.load_run(str(root / "multi"))
  z_key = jax.random.PRNGKey(0)
  draw = lambda c, s: suite.generate(c, s, 8, z_key)  # noqa: E731
  r2, r0 = draw(*seeds.select(config, state, 2)), draw(*seeds.select(config, state, 0))
  s2 = draw(*train.load_run(str(root / "seed2"))[:2])
  np.testing.assert_allclose(r2, s2, atol=1e-3)
  assert np.abs(r2 - r0).max() > 100 * np.abs(r2 - s2).max()
  with pytest.raises(Exception, match="--replica 3 is not a replica of this run"):
    sample.sample(str(root / "multi"), 8, out("bad"), replica=3)


def test_wgan_gp_replicas_match_their_seeds(tmp_path):
  """n_critic 5 in a lax.scan, the gradient penalty, LayerNorm: under vmap."""
  def config(**kw):
    c = experiment_config("wgan_gp")
    c.update(dict(g_width=8, d_width=8, latent_dim=16, batch_size=16, num_train_steps=2,
                  log_every=1, sample_every=2, checkpoint_every=2, num_samples=16,
                  eval_every=0, **kw))
    return c
  multi = train.train_and_evaluate(config(num_seeds=2), str(tmp_path / "multi"))
  single = train.train_and_evaluate(config(seed=1), str(tmp_path / "single"))
  assert_replica_matches(str(tmp_path / "multi"), multi, str(tmp_path / "single"), single, 1,
                         atol=1e-3)


def test_cyclegan_replicas_match_their_seeds(tmp_path):
  """Two generators, two critics, the image pools: all per replica."""
  def config(**kw):
    c = experiment_config("cyclegan")
    c.update(dict(g_width=4, d_width=4, num_blocks=1, batch_size=8, num_train_steps=2,
                  log_every=1, sample_every=2, checkpoint_every=2, num_samples=3,
                  pool_size=5, eval_every=0, **kw))
    return c
  multi = train.train_and_evaluate(config(num_seeds=2), str(tmp_path / "multi"))
  single = train.train_and_evaluate(config(seed=1), str(tmp_path / "single"))
  assert_replica_matches(str(tmp_path / "multi"), multi, str(tmp_path / "single"), single, 1,
                         atol=1e-3)


def test_toy_run_evaluates_every_seed(tmp_path, capsys):
  """Evaluation during training and python -m ganjax evaluate report the mean and std over
  seeds."""
  config = experiment_config("toy_ring")
  config.update(dict(g_width=16, d_width=16, batch_size=16, num_samples=100, log_every=2,
                     sample_every=4, checkpoint_every=2, num_train_steps=4, eval_every=2,
                     num_seeds=2))
  workdir = str(tmp_path / "toy")
  multi = train.train_and_evaluate(config, workdir)
  logged = [r for r in read_metrics(workdir) if "eval/modes_captured" in r]
  assert [r["step"] for r in logged] == [2, 4]
  best = json.load(open(os.path.join(workdir, "best.json"), encoding="utf-8"))
  assert len(best["metrics"]["modes_captured_per_seed"]) == 2

  result = evaluate.evaluate(workdir, num_samples=500)
  assert result["num_seeds"] == 2 and result["seeds"] == [0, 1]
  per_seed = result["high_quality_fraction_per_seed"]
  np.testing.assert_allclose(result["high_quality_fraction"], np.mean(per_seed))
  np.testing.assert_allclose(result["high_quality_fraction_std"], np.std(per_seed))
  # Each seed's numbers are those of its replica alone.
  from ganjax.evaluation import suite  # pylint: disable=g-import-not-at-top
  evaluator = suite.Evaluator(config, level="all", num_samples=500)
  alone = evaluator(seeds.replica(jax.device_get(multi), 1))
  assert per_seed[1] == pytest.approx(alone["high_quality_fraction"])
  evaluate.main(["--workdir", workdir, "--num_samples", "500"])
  assert "+-" in capsys.readouterr().out


def test_summaries_against_numpy():
  values = {"a": np.array([1.0, 2.0, 4.0])}
  out = seeds.summarize(values, 3)
  assert out["a"] == pytest.approx(7 / 3) and out["a/std"] == pytest.approx(np.std([1, 2, 4]))
  assert out["a/seed_2"] == 4.0
  assert seeds.summarize({"a": np.float32(3.0)}, 1) == {"a": 3.0}
  agg = seeds.aggregate([{"fid": 1.0, "hist": [1, 0], "x": float("nan"), "name": "a"},
                         {"fid": 3.0, "hist": [0, 1], "x": 2.0, "name": "b"}])
  assert agg["fid"] == 2.0 and agg["fid_std"] == 1.0 and agg["fid_per_seed"] == [1.0, 3.0]
  assert agg["hist"] == [0.5, 0.5] and agg["x"] == 2.0 and agg["name"] == "a"  # a failed seed does not poison the mean


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_num_seeds_is_one_clear_error(bad):
  config = tiny_config()
  with pytest.raises(Exception, match="num_seeds=.* must be a whole number"):
    config.num_seeds = bad
    gan.validate(config)
