"""What a run reports: console lines and progress bar, metrics.jsonl, TensorBoard, PNG grids.

Only the lead process (process 0) writes; every process may call.
"""

import json
import math
import os
import sys
import time

import numpy as np


def info(message: str, lead: bool = True) -> None:
  if lead:
    Progress.clear_line()
    print(f"ganjax: {message}", flush=True)


def image_grid(images: np.ndarray, columns: int | None = None) -> np.ndarray:
  """float [N, H, W, C] in [-1, 1] -> uint8 grid [rows*(H+2)+2, cols*(W+2)+2, C].

  A 2-pixel border separates the images; the grid is square unless `columns`
  is given (one row per class in a conditional sample, say).
  """
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  pixels = np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)
  grid = np.zeros((rows * (h + 2) + 2, columns * (w + 2) + 2, c), np.uint8)
  for i in range(n):
    r, col = divmod(i, columns)
    grid[2 + r * (h + 2):2 + r * (h + 2) + h, 2 + col * (w + 2):2 + col * (w + 2) + w] = pixels[i]
  return grid


def save_png(path: str, grid: np.ndarray) -> None:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  tmp = path + ".tmp"
  image.save(tmp, format="PNG")
  os.replace(tmp, path)


class MetricWriter:
  """Scalars to <workdir>/metrics.jsonl and TensorBoard; sample grids to samples/ and TensorBoard."""

  def __init__(self, workdir: str, lead: bool = True):
    self.lead = lead
    self.samples_dir = os.path.join(workdir, "samples")
    if not lead:
      return
    os.makedirs(self.samples_dir, exist_ok=True)
    self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
    from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    self._tb = SummaryWriter(logdir=workdir, flush_secs=30)

  def scalars(self, step: int, values: dict[str, float]) -> None:
    if not self.lead:
      return
    record = {"step": int(step), **{k: float(v) for k, v in values.items()}}
    self._jsonl.write(json.dumps(record) + "\n")
    self._jsonl.flush()
    for name, value in values.items():
      self._tb.add_scalar(name, float(value), int(step))

  def images(self, step: int, name: str, grid: np.ndarray) -> str | None:
    if not self.lead:
      return None
    path = os.path.join(self.samples_dir, f"step_{step}.png")
    save_png(path, grid)
    self._tb.add_image(name, grid, int(step), dataformats="HWC")
    return path

  def close(self) -> None:
    if self.lead:
      self._jsonl.close()
      self._tb.close()


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rest = divmod(seconds, 3600)
  m, s = divmod(rest, 60)
  return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
  """A live one-line bar on a terminal; a plain line per log interval otherwise."""

  SHOWN = ("d_loss", "g_loss")

  def __init__(self, total: int, start: int, lead: bool = True, stream=None):
    self.total, self.lead = total, lead
    self.stream = stream or sys.stderr
    self.tty = lead and self.stream.isatty()
    self._mark_step, self._mark_time = start, time.perf_counter()
    self.rate = float("nan")
    self.values: dict[str, float] = {}

  @staticmethod
  def clear_line() -> None:
    if sys.stderr.isatty():
      sys.stderr.write("\r\033[K")

  def restart_clock(self, step: int) -> None:
    """Measure speed from here (after compilation, say)."""
    self._mark_step, self._mark_time = step, time.perf_counter()

  def _line(self, step: int) -> str:
    eta = (self.total - step) / self.rate if self.rate > 0 else float("nan")
    shown = "  ".join(f"{k} {self.values[k]:.4f}" for k in self.SHOWN if k in self.values)
    rate = f"{self.rate:.2f}" if math.isfinite(self.rate) else "?"
    return (f"step {step}/{self.total}  {rate} steps/s  ETA {_duration(eta)}"
            + (f"  {shown}" if shown else ""))

  def log(self, step: int, values: dict[str, float]) -> float:
    """Called after the metrics up to `step` were read back; returns steps/s."""
    now = time.perf_counter()
    if step > self._mark_step:
      self.rate = (step - self._mark_step) / (now - self._mark_time)
    self._mark_step, self._mark_time = step, now
    self.values = values
    if self.lead and not self.tty:
      print(self._line(step), file=self.stream, flush=True)
    return self.rate

  def tick(self, step: int) -> None:
    """Redraws the bar (terminal only); reads nothing from the devices."""
    if not self.tty:
      return
    width = 24
    filled = int(width * step / max(self.total, 1))
    bar = "#" * filled + "-" * (width - filled)
    self.stream.write(f"\r\033[K[{bar}] {self._line(step)}")
    self.stream.flush()

  def close(self) -> None:
    if self.tty:
      self.stream.write("\n")
      self.stream.flush()
