"""FID between two sets of images, as pytorch-fid's command line computes it.

  python -m ganjax fid PATH_A PATH_B [--kid] [--inception_score] [--prdc]
  python -m ganjax fid --save_stats IMAGES OUT.npz

pytorch-fid's own spellings of its flags work too: --batch-size, --save-stats,
--num-workers, --dims (2048, the pool features, is the one this command
computes) and --device (cpu, cuda, gpu, tpu, optionally with :INDEX; default
every device of JAX's default platform).

Each PATH is one of
- a folder of images: every file directly inside it (subfolders are not
  searched) ending in .bmp, .jpg, .jpeg, .pgm, .png, .ppm, .tif, .tiff or
  .webp, in any case; each is read with PIL and converted to RGB. Images may
  differ in size: each goes through the network's own resize to 299x299, as
  in pytorch-fid, so the features do not depend on which images share a batch;
- an .npz of images: the array `images` (or the file's only array), shaped
  [N, H, W, C] with C = 1 or 3, either uint8 in [0, 255] or float in [-1, 1];
- an .npz of FID statistics, the arrays `mu` and `sigma` (pytorch-fid's and
  ganjax's files are the same format);
- a reference file of `python -m ganjax evaluate --reference <dataset>` (in
  $GANJAX_CACHE/references/, see ganjax/evaluation/reference.py): statistics
  with the features they came from, and the SHA-256 of the Inception weights
  that measured them (images measured with other weights are refused).

Prints "FID: <value>". --save_stats writes the statistics of IMAGES to the
new file OUT.npz instead, with the SHA-256 of the weights that measured them
(statistics only: the cached reference files hold features too). --kid adds
the Kernel Inception Distance, --prdc precision and recall (k = 3), density
and coverage (k = 5) of PATH_A (the generated set) against PATH_B (the real
one), on sets of equal size; both need images or features in both PATHs.
--inception_score adds the Inception Score of each PATH that holds images.

The network is pytorch-fid's FID Inception, read from
pt_inception-2015-12-05-6726825d.pth: --inception_weights FILE, else the file
named by $GANJAX_INCEPTION_WEIGHTS, else $GANJAX_CACHE (default
~/.cache/ganjax), else downloaded there from pytorch-fid's release (SHA-256
checked). No PyTorch is needed.
"""

import os
import sys
from concurrent import futures

import numpy as np

from ganjax import backend
from ganjax.cli import shared
from ganjax.data import decode_image
from ganjax.errors import GanjaxError
from ganjax.evaluation import fid, reference
from ganjax.evaluation import prdc as prdc_lib

EXAMPLES = [
    "python -m ganjax fid real_images/ fake.npz --kid --inception_score",
    "python -m ganjax fid --save_stats real_images/ real_stats.npz",
    "python -m ganjax fid fake_images/ real_stats.npz --batch-size 50 --device cuda:0"
    "   # pytorch-fid's spellings",
]
# pytorch-fid's --device names, as JAX's platforms.
PLATFORMS = {"cpu": "cpu", "cuda": "gpu", "gpu": "gpu", "tpu": "tpu"}

# pytorch-fid's image extensions (it matches them in lower case; here in any case).
IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")
# Fewer images than feature dimensions leave the covariance rank-deficient.
FEW_IMAGES = fid.POOL_DIM


def list_images(folder: str, what: str) -> list[str]:
  """The image files directly inside `folder`, sorted by name (hidden files skipped)."""
  names = sorted(n for n in os.listdir(folder)
                 if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")
                 and os.path.isfile(os.path.join(folder, n)))
  if not names:
    raise GanjaxError(f"{what} {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)});"
                      " subfolders are not searched")
  return [os.path.join(folder, n) for n in names]


def load_npz(path: str, what: str):
  """("stats", reference.Reference) or ("images", [N, H, W, C] array) from an .npz file."""
  try:
    with np.load(path, allow_pickle=False) as f:
      names = list(f.files)
      if "mu" in names and "sigma" in names:
        return "stats", reference.read(path, what)
      if "images" in names:
        images = f["images"]
      elif len(names) == 1:
        images = f[names[0]]
      else:
        raise GanjaxError(f"{what} {path} holds {sorted(names)}: name the image array"
                          " 'images', or save statistics as 'mu' and 'sigma'")
  except GanjaxError:
    raise
  except Exception as e:  # not an npz, damaged, or object arrays
    raise GanjaxError(f"{what} {path} is not a readable .npz file ({e})") from e
  if images.ndim != 4 or images.shape[-1] not in (1, 3) or len(images) < 2:
    raise GanjaxError(f"{what} {path}: images have shape {images.shape}; give [N, H, W, C]"
                      " with C = 1 or 3 and N >= 2")
  if images.dtype == np.uint8:
    return "images", images
  if not np.issubdtype(images.dtype, np.floating):
    raise GanjaxError(f"{what} {path}: images are {images.dtype}; give uint8 in [0, 255] or"
                      " float in [-1, 1]")
  low, high = float(images.min()), float(images.max())
  if low < -1.001 or high > 1.001:
    raise GanjaxError(f"{what} {path}: float images range over [{low:g}, {high:g}], not"
                      " [-1, 1]; rescale them (x / 127.5 - 1 for [0, 255]) or save uint8")
  return "images", images


def open_source(path: str, what: str):
  """("stats", (mu, sigma)), ("images", array) or ("files", [paths]) for a PATH argument."""
  if os.path.isdir(path):
    return "files", list_images(path, what)
  if os.path.isfile(path) and path.lower().endswith(".npz"):
    return load_npz(path, what)
  if os.path.exists(path):
    raise GanjaxError(f"{what} {path} is neither a folder of images nor an .npz file")
  raise GanjaxError(f"{what} {path} does not exist; give a folder of images, an .npz of"
                    " images or an .npz of FID statistics")


def file_features(extractor, files: list[str], what: str, chunk: int,
                  num_workers: int | None = None) -> dict:
  """Features of image files, read `chunk` at a time (the next chunk is read meanwhile)
  by `num_workers` threads (default: the CPU count, at most 8).

  Images of one size go through the extractor together; sizes may differ.
  """
  out = None
  with futures.ThreadPoolExecutor(num_workers or min(8, os.cpu_count() or 1)) as pool:
    def read(start):
      return [pool.submit(decode_image, what, f, 3) for f in files[start:start + chunk]]
    pending = read(0)
    for start in range(0, len(files), chunk):
      images = [p.result() for p in pending]
      pending = read(start + chunk)
      by_size = {}
      for i, image in enumerate(images):
        by_size.setdefault(image.shape, []).append(i)
      for indices in by_size.values():
        got = extractor(np.stack([images[i] for i in indices]))
        if out is None:
          out = {k: np.empty((len(files),) + v.shape[1:], v.dtype) for k, v in got.items()}
        for k, v in got.items():
          out[k][[start + i for i in indices]] = v
  return out


def _check_weights(measured: list[dict], paths) -> None:
  """Refuses to compare features measured with different Inception weights (where known)."""
  known = [(p, m["weights_sha256"]) for p, m in zip(paths, measured) if m.get("weights_sha256")]
  if len({sha for _, sha in known}) > 1:
    (path_a, sha_a), (path_b, sha_b) = known[0], known[1]
    raise GanjaxError(f"{path_a} was measured with Inception weights of SHA-256 {sha_a[:12]}...,"
                      f" {path_b} with {sha_b[:12]}...; measure both with the same weights"
                      " (--inception_weights FILE)")


def devices_of(device: str | None) -> list | None:
  """The JAX devices of a --device value (cpu, cuda, gpu, tpu, with an optional :INDEX);
  None: every device of JAX's default platform."""
  if device is None:
    return None
  import jax  # pylint: disable=import-outside-toplevel
  name, _, index = device.lower().partition(":")
  if name not in PLATFORMS or (index and not index.isdigit()):
    raise GanjaxError(f"--device {device}: give cpu, cuda, gpu or tpu, optionally with"
                      " :INDEX (e.g. cuda:0)")
  try:
    devices = jax.devices(PLATFORMS[name])
  except RuntimeError:
    raise GanjaxError(f"--device {device}: JAX finds no {PLATFORMS[name]} here (its devices:"
                      f" {', '.join(sorted({d.platform for d in jax.devices()}))}); choose one"
                      " of those or leave --device out") from None
  if index and int(index) >= len(devices):
    raise GanjaxError(f"--device {device}: there are {len(devices)} {PLATFORMS[name]}"
                      f" device(s), numbered from 0")
  return [devices[int(index)]] if index else devices


def compute(path_a: str, path_b: str, *, weights: str | None = None, batch_size: int = 200,
            save_stats: bool = False, kid: bool = False, inception_score: bool = False,
            prdc: bool = False, devices: list | None = None, num_workers: int | None = None,
            log=print) -> dict:
  """What the command prints, as a dict: fid (or, with save_stats, the file written).

  `devices`: where the network runs (default every device); `num_workers`: the threads
  that read image files."""
  sources = [open_source(path_a, "PATH_A")]
  if save_stats:
    if sources[0][0] == "stats":
      raise GanjaxError(f"--save_stats: {path_a} already holds statistics; give images")
    if os.path.exists(path_b):
      raise GanjaxError(f"--save_stats: {path_b} exists; choose a new output file")
  else:
    sources.append(open_source(path_b, "PATH_B"))
    for flag, wanted in (("--kid", kid), ("--prdc", prdc)):
      bare = [p for p, (kind, value) in zip((path_a, path_b), sources)
              if kind == "stats" and value.features is None]
      if wanted and bare:
        raise GanjaxError(f"{flag} needs images (or a reference file with features) in both"
                          f" PATHs; {bare[0]} holds statistics only")

  extractor = weights_sha256 = None
  if any(kind != "stats" for kind, _ in sources):
    from ganjax import parallel  # pylint: disable=import-outside-toplevel
    mesh = None if devices is None else parallel.make_mesh(devices)
    extractor = fid.load_inception(weights, batch_size=batch_size, mesh=mesh)
    weights_sha256 = fid.weights_sha256(fid.resolve_weights(weights))
  measured = []
  for path, (kind, value) in zip((path_a, path_b), sources):
    if kind == "stats":
      measured.append({"stats": (value.mu, value.sigma), "count": value.count,
                       "weights_sha256": value.meta.get("weights_sha256")})
      if value.features is not None:
        measured[-1]["features"] = {"pool": value.features}
      continue
    if kind == "files":
      if len(value) < 2:
        raise GanjaxError(f"{path} holds {len(value)} image; FID needs at least 2")
      feats = file_features(extractor, value, path, extractor.batch_size, num_workers)
    else:
      feats = extractor(value)
    count = len(feats["pool"])
    if count < FEW_IMAGES:
      print(f"ganjax: note: {path} has {count} images, fewer than the {fid.POOL_DIM} feature"
            " dimensions: the FID is biased upwards and comparable only at equal counts",
            file=sys.stderr)
    measured.append({"features": feats, "stats": fid.statistics(feats["pool"]),
                     "count": count, "weights_sha256": weights_sha256, "images": True})
  _check_weights(measured, (path_a, path_b))

  if save_stats:
    meta = {"images": os.path.abspath(path_a), "count": measured[0]["count"],
            "extractor": "inception", "weights_sha256": weights_sha256}
    reference.save(path_b, reference.Reference(*measured[0]["stats"], None, meta))
    log(f"ganjax: wrote the FID statistics of {measured[0]['count']} images of {path_a} to"
        f" {path_b}")
    return {"saved": path_b}

  (mu_a, sigma_a), (mu_b, sigma_b) = (m["stats"] for m in measured)
  if mu_a.shape != mu_b.shape:
    raise GanjaxError(f"the statistics have {mu_a.size} and {mu_b.size} dimensions; both"
                      f" must be the {fid.POOL_DIM}-d pool features")
  result = {"fid": fid.frechet_distance(mu_a, sigma_a, mu_b, sigma_b)}
  log(f"FID: {result['fid']}")
  if kid:
    result["kid"], result["kid_std"] = fid.kernel_inception_distance(
        measured[0]["features"]["pool"], measured[1]["features"]["pool"])
    log(f"KID: {result['kid']} +/- {result['kid_std']}")
  if prdc:
    scores = prdc_lib.compare(measured[1]["features"]["pool"], measured[0]["features"]["pool"])
    result.update(scores)
    n = min(measured[0]["count"], measured[1]["count"])
    log(f"precision: {scores['precision']}  recall: {scores['recall']}  (k ="
        f" {prdc_lib.K_PRECISION_RECALL})  density: {scores['density']}  coverage:"
        f" {scores['coverage']}  (k = {prdc_lib.K_DENSITY_COVERAGE}); {n} of each set")
  if inception_score:
    for name, path, m in zip(("a", "b"), (path_a, path_b), measured):
      if m.get("images"):
        logits = m["features"]["logits"]
        score = fid.inception_score(logits, splits=min(fid.IS_SPLITS, len(logits)))
        result[f"inception_score_{name}"], result[f"inception_score_std_{name}"] = score
        log(f"Inception Score ({path}): {score[0]} +/- {score[1]}")
  return result


def make_parser() -> shared.Parser:
  """The fid command's flags."""
  parser = shared.Parser("fid", __doc__, EXAMPLES)
  parser.add_argument("path", nargs=2, metavar="PATH",
                      help="a folder of images, an .npz of images, an .npz of statistics or a"
                           " reference file")
  parser.add_argument("--inception_weights", default=None, metavar="FILE",
                      help=shared.INCEPTION_WEIGHTS_HELP)
  parser.add_argument("--batch_size", "--batch-size", dest="batch_size",
                      type=shared.integer(1), default=200, metavar="N",
                      help="images per step over all devices (the result does not depend on"
                           " it; pytorch-fid's default is 50); default 200")
  parser.add_argument("--save_stats", "--save-stats", dest="save_stats", action="store_true",
                      help="write the statistics of the first PATH's images to the second")
  parser.add_argument("--dims", type=int, default=fid.POOL_DIM, metavar="N",
                      help=f"feature dimensions; {fid.POOL_DIM}, the pool features (the only"
                           " ones FID is computed from here)")
  parser.add_argument("--device", default=None, metavar="DEVICE",
                      help="cpu, cuda, gpu or tpu, with an optional :INDEX (cuda:0); default"
                           " every device of JAX's default platform")
  parser.add_argument("--num_workers", "--num-workers", dest="num_workers",
                      type=shared.integer(1), default=None, metavar="N",
                      help="threads that read image files; default the CPU count, at most 8")
  parser.add_argument("--kid", action="store_true", help="also the Kernel Inception Distance")
  parser.add_argument("--inception_score", action="store_true",
                      help="also the Inception Score of each PATH's images")
  parser.add_argument("--prdc", action="store_true",
                      help="also precision, recall, density and coverage of PATH_A (generated)"
                           " against PATH_B (real)")
  return parser


def main(argv=None) -> None:
  """The fid command; `argv`: its flags (default sys.argv[1:])."""
  parser = make_parser()
  args = parser.parse_args(argv)
  if args.dims != fid.POOL_DIM:
    parser.error(f"--dims {args.dims}: this command computes FID from the {fid.POOL_DIM}-d"
                 f" pool features only; leave --dims out or give {fid.POOL_DIM}")
  try:
    devices = devices_of(args.device)
    backend.tune_host_if_cpu(devices)
    compute(args.path[0], args.path[1], weights=args.inception_weights,
            batch_size=args.batch_size, save_stats=args.save_stats, kid=args.kid,
            inception_score=args.inception_score, prdc=args.prdc, devices=devices,
            num_workers=args.num_workers)
  except GanjaxError as e:
    shared.fail(e)


if __name__ == "__main__":
  main()
