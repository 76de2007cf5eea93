"""toy:ring and toy:grid: fresh samples of the 2D Gaussian mixtures (evaluation/toy.py)."""

import numpy as np

from ganjax.data.common import ArraySource


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
