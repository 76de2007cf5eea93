"""toy:ring and toy:grid: samples of the 2D Gaussian mixtures (evaluation/toy.py), fresh every
step (ToySource) or from a training set drawn once (ToySetSource, config.toy_points)."""

import numpy as np

from ganjax.data.common import ArraySource

SET_STREAM = 0x5E7  # the training set of seed s is drawn from default_rng([s, SET_STREAM])


class ToySource:
  """Fresh samples of a 2D mixture; global batch t is drawn from the generator (seed, t)."""

  def __init__(self, name: str, global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    self.name, self.seed = name, seed
    self.global_batch_size = global_batch_size
    self.local = slice(process_index * global_batch_size // process_count,
                       (process_index + 1) * global_batch_size // process_count)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    points, labels = toy.sample(self.name, np.random.default_rng([self.seed, step]),
                                self.global_batch_size)
    return {"image": points[self.local], "label": labels[self.local]}

  iterate = ArraySource.iterate


class ToySetSource(ArraySource):
  """A training set of `points` samples of a 2D mixture, drawn once from the seed, read in
  epochs as ArraySource reads images (each epoch a new order; batch t a pure function of
  (seed, t)). PacGAN trains on such a set of 100,000 points."""

  def __init__(self, name: str, points: int, global_batch_size: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    from ganjax.evaluation import toy  # pylint: disable=g-import-not-at-top
    xy, labels = toy.sample(name, np.random.default_rng([seed, SET_STREAM]), points)
    super().__init__(xy.astype(np.float32), labels, global_batch_size, seed, process_index,
                     process_count)

  def batch(self, step: int) -> dict[str, np.ndarray]:
    idx = self.indices(step)
    return {"image": self.images[idx], "label": self.labels[idx]}
