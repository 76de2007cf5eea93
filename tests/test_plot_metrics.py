"""tools/plot_metrics.py: the curves of metrics.jsonl, read and drawn with PIL."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

import plot_metrics  # noqa: E402  pylint: disable=wrong-import-position


def _write_metrics(path):
  records = [{"step": s, "d_loss": 1.0 + 0.01 * s, "g_loss": 2.0 - 0.01 * s} for s in (10, 20, 30)]
  records.append({"step": 30, "eval/classifier_fid": 12.0})  # an evaluation's record
  with open(path, "w", encoding="utf-8") as f:
    for record in records:
      f.write(json.dumps(record) + "\n")


def test_reads_each_key_in_step_order_and_skips_records_without_it(tmp_path):
  path = tmp_path / "metrics.jsonl"
  _write_metrics(path)
  series = plot_metrics.read_series(str(path), ["d_loss", "g_loss"])
  assert series["d_loss"] == [(10, 1.1), (20, 1.2), (30, 1.3)]
  assert [s for s, _ in series["g_loss"]] == [10, 20, 30]


def test_draws_a_png_of_the_given_size_with_one_colour_per_curve(tmp_path):
  _write_metrics(tmp_path / "metrics.jsonl")
  out = tmp_path / "curves.png"
  subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plot_metrics.py"), str(tmp_path),
                  "--output", str(out), "--width", "400", "--height", "200"], check=True,
                 capture_output=True, text=True, timeout=120)
  image = np.asarray(Image.open(out).convert("RGB"))
  assert image.shape == (200, 400, 3)
  colours = {tuple(c) for c in image.reshape(-1, 3)}
  for colour in plot_metrics.COLOURS[:2]:  # both curves were drawn
    assert colour in colours
