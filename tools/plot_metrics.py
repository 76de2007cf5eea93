"""Draws curves of a run's logged metrics (<workdir>/metrics.jsonl) as a PNG, with PIL only.

  python tools/plot_metrics.py runs/gan --output gan_losses.png
  python tools/plot_metrics.py runs/wgan_gp/metrics.jsonl --keys wasserstein,gradient_penalty \
      --output wgan_gp.png

The first argument is a workdir or its metrics.jsonl. --keys names the metrics to
draw (default d_loss,g_loss; a CycleGAN run logs d_a, d_b, g_loss, cycle_a, ...);
each becomes one line against the step, on one shared y axis. Records without a
key (an evaluation's eval/<name> lines, say) are skipped for that key. A run of
several seeds (num_seeds) logs each metric's mean over seeds under its plain name,
so the curve is the mean; `<metric>/seed_<i>` draws one replica.

Only PIL is needed (a dependency of ganjax); no matplotlib.
"""

import argparse
import json
import math
import os
import sys

from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def read_series(path: str, keys: list[str]) -> dict[str, list[tuple[int, float]]]:
  """{key: [(step, value), ...]} from a metrics.jsonl file, in file order."""
  series = {key: [] for key in keys}
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if not line:
        continue
      record = json.loads(line)
      for key in keys:
        value = record.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
          series[key].append((int(record["step"]), float(value)))
  return series


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
  """About `count` round numbers from at most lo to at least hi."""
  if hi <= lo:
    hi = lo + 1.0
  raw = (hi - lo) / count
  magnitude = 10 ** math.floor(math.log10(raw))
  step = min((m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw),
             default=10 * magnitude)
  first, last = math.floor(lo / step) * step, math.ceil(hi / step) * step
  ticks, t = [], first
  while t <= last + 1e-9 * step:
    ticks.append(round(t, 10))
    t += step
  return ticks


def label(value: float) -> str:
  if value == int(value) and abs(value) < 1e6:
    return f"{int(value):,}"
  return f"{value:g}"


def draw(series: dict[str, list[tuple[int, float]]], title: str, width: int,
         height: int) -> Image.Image:
  font = ImageFont.load_default()
  image = Image.new("RGB", (width, height), "white")
  pen = ImageDraw.Draw(image)
  points = [p for values in series.values() for p in values]
  x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
  y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
  y_ticks = nice_ticks(y_lo, y_hi)
  x_ticks = nice_ticks(x_lo, x_hi)
  y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])
  x_hi = max(x_hi, x_lo + 1)
  left, right, top, bottom = 64, width - 16, 32, height - 40
  to_x = lambda s: left + (s - x_lo) / (x_hi - x_lo) * (right - left)
  to_y = lambda v: bottom - (v - y_lo) / ((y_hi - y_lo) or 1.0) * (bottom - top)

  for t in y_ticks:
    y = to_y(t)
    pen.line([(left, y), (right, y)], fill=(230, 230, 230))
    text = label(t)
    pen.text((left - 6 - pen.textlength(text, font=font), y - 6), text, fill="black", font=font)
  for t in x_ticks:
    if x_lo <= t <= x_hi:
      x = to_x(t)
      pen.line([(x, bottom), (x, bottom + 4)], fill="black")
      text = label(t)
      pen.text((x - pen.textlength(text, font=font) / 2, bottom + 6), text, fill="black",
               font=font)
  pen.rectangle([left, top, right, bottom], outline="black")
  pen.text(((left + right) / 2 - pen.textlength("step", font=font) / 2, bottom + 22), "step",
           fill="black", font=font)
  pen.text((left, 10), title, fill="black", font=font)

  legend_x = right - 8
  for i, (key, values) in enumerate(series.items()):
    colour = COLOURS[i % len(COLOURS)]
    if len(values) > 1:
      pen.line([(to_x(s), to_y(v)) for s, v in values], fill=colour, width=2)
    else:
      (s, v), = values
      pen.ellipse([to_x(s) - 2, to_y(v) - 2, to_x(s) + 2, to_y(v) + 2], fill=colour)
    legend_x -= pen.textlength(key, font=font) + 28
    pen.line([(legend_x, 16), (legend_x + 16, 16)], fill=colour, width=2)
    pen.text((legend_x + 20, 10), key, fill="black", font=font)
  return image


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      description="Draw metrics from a run's metrics.jsonl as a PNG (PIL only).")
  parser.add_argument("run", help="a workdir or its metrics.jsonl")
  parser.add_argument("--keys", default="d_loss,g_loss",
                      help="comma-separated metrics to draw (default d_loss,g_loss)")
  parser.add_argument("--output", required=True, help="the PNG to write")
  parser.add_argument("--title", default=None, help="default: the run and the keys")
  parser.add_argument("--width", type=int, default=640)
  parser.add_argument("--height", type=int, default=320)
  args = parser.parse_args(argv)

  path = os.path.join(args.run, "metrics.jsonl") if os.path.isdir(args.run) else args.run
  if not os.path.isfile(path):
    print(f"plot_metrics: error: {path} does not exist; give a workdir or its metrics.jsonl",
          file=sys.stderr)
    return 1
  keys = [k for k in args.keys.split(",") if k]
  series = read_series(path, keys)
  missing = [k for k, v in series.items() if not v]
  if missing:
    print(f"plot_metrics: error: {path} has no values of {', '.join(missing)}",
          file=sys.stderr)
    return 1
  run_name = os.path.basename(os.path.dirname(os.path.abspath(path)))
  title = args.title or f"{run_name}: {', '.join(keys)}"
  image = draw(series, title, args.width, args.height)
  os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
  image.save(args.output, format="PNG", optimize=True)
  counts = ", ".join(f"{k}: {len(v)} points" for k, v in series.items())
  print(f"plot_metrics: wrote {args.output} ({counts})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
