"""The Inception-v3 network that FID is computed with, as pytorch-fid defines it.

FID (Heusel et al. 2017) compares the statistics of the 2048-d final pooled
features of a particular Inception-v3: the TensorFlow graph
`inception-2015-12-05`, 1008 classes. pytorch-fid (mseitzer/pytorch-fid,
`inception.py`) ports its weights to PyTorch as torchvision's Inception3 with
four kinds of patched blocks; this module is that network, block for block,
in Flax (NHWC), so that the ported weights (`pt_inception-2015-12-05-*.pth`,
read with `torch_weights.load_state_dict` and `params_from_state_dict`) give
the same features:

- every convolution is a "BasicConv": convolution without bias, BatchNorm
  (eps 1e-3, running statistics: inference only) and ReLU;
- the stem: 3x3/2, 3x3, 3x3 pad 1, max pool 3x3/2, 1x1, 3x3, max pool 3x3/2;
- Mixed_5b-d are InceptionA, Mixed_6a InceptionB, Mixed_6b-e InceptionC,
  Mixed_7a InceptionD, Mixed_7b-c InceptionE. Where torchvision averages over
  a padded 3x3 window, the FID network (like TensorFlow) divides by the
  number of real pixels in the window (`count_include_pad=False`), and the
  last block (Mixed_7c) max-pools there instead;
- the global average pool gives the 2048-d "pool" features, and the 1008-way
  fully connected layer the "logits" (for the Inception Score).

Input handling follows pytorch-fid's `InceptionV3(resize_input=True,
normalize_input=True)`: images in [0, 1] are resized to 299x299 with
PyTorch's bilinear interpolation (`align_corners=False`, no antialiasing),
then mapped to [-1, 1] by 2x - 1. ganjax images are already in [-1, 1], i.e.
2x - 1 of pytorch-fid's input; because bilinear weights sum to one,
resize(2x - 1) = 2 resize(x) - 1, so they are resized directly.

Module and parameter names are PyTorch's (`Mixed_6b/branch7x7_2/conv/kernel`,
`.../bn/scale`; running statistics in the `batch_stats` collection), which
keeps the weight conversion a renaming. With 1008 classes the network has
23,850,960 trainable parameters (the PyTorch model's `parameters()`).
"""

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ganjax.errors import GanjaxError

INPUT_SIZE = 299
NUM_CLASSES = 1008
NUM_PARAMS = 23_850_960  # trainable parameters of pytorch-fid's fid_inception_v3()
BN_EPSILON = 1e-3


def bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] weights of PyTorch's 1-D bilinear resize with align_corners=False.

  Output pixel i samples the input at (i + 0.5) * in / out - 0.5, clamped
  below at 0; it mixes the two neighbouring input pixels (the last pixel
  repeats at the border). There is no antialiasing: downsampling skips
  pixels, unlike `jax.image.resize`. The weights are PyTorch's to the bit:
  the scale in / out is a float32, the sample position is that product
  rounded once to float32 (PyTorch's kernels compile it to a fused
  multiply-add), and both weights are float32.
  """
  if in_size == out_size:
    return np.eye(out_size, dtype=np.float32)
  scale = np.float32(in_size) / np.float32(out_size)
  # Exact in float64 (a 24-bit scale times a short half-integer), then one rounding.
  src = (np.float64(scale) * (np.arange(out_size) + 0.5) - 0.5).astype(np.float32)
  src = np.maximum(src, np.float32(0))
  lo = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
  frac = np.clip(src - lo.astype(np.float32), 0, 1).astype(np.float32)
  hi = np.minimum(lo + 1, in_size - 1)
  weights = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  np.add.at(weights, (rows, lo), np.float32(1) - frac)
  np.add.at(weights, (rows, hi), frac)
  return weights


def resize_bilinear(images, size: Sequence[int] = (INPUT_SIZE, INPUT_SIZE)):
  """`F.interpolate(mode='bilinear', align_corners=False)` of NHWC images to `size`."""
  rows = jnp.asarray(bilinear_matrix(images.shape[1], size[0]))
  cols = jnp.asarray(bilinear_matrix(images.shape[2], size[1]))
  return jnp.einsum("oh,bhwc,pw->bopc", rows, images.astype(jnp.float32), cols,
                    precision=lax.Precision.HIGHEST)


def _pairs(padding):
  """PyTorch's symmetric padding (one int or (h, w)) as lax's ((lo, hi), (lo, hi))."""
  if isinstance(padding, int):
    padding = (padding, padding)
  return tuple((p, p) for p in padding)


def avg_pool_3x3_exclude_pad(x):
  """3x3 stride-1 average with padding 1 that divides by the real pixels in each window."""
  window, pads = (1, 3, 3, 1), ((0, 0), (1, 1), (1, 1), (0, 0))
  total = lax.reduce_window(x, 0.0, lax.add, window, (1, 1, 1, 1), pads)
  ones = jnp.ones((1, x.shape[1], x.shape[2], 1), x.dtype)
  count = lax.reduce_window(ones, 0.0, lax.add, window, (1, 1, 1, 1), pads)
  return total / count


def max_pool(x, stride: int, padding: int = 0):
  """3x3 max pool (padding never wins: it is -inf)."""
  pads = ((0, 0), (padding, padding), (padding, padding), (0, 0))
  return lax.reduce_window(x, -jnp.inf, lax.max, (1, 3, 3, 1), (1, stride, stride, 1), pads)


class BasicConv(nn.Module):
  """Convolution without bias, inference BatchNorm (eps 1e-3), ReLU: torchvision's BasicConv2d."""
  features: int
  kernel_size: tuple[int, int] = (1, 1)
  strides: int = 1
  padding: int | tuple[int, int] = 0
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel_size, (self.strides, self.strides),
                padding=_pairs(self.padding), use_bias=False, precision=self.precision,
                name="conv")(x)
    x = nn.BatchNorm(use_running_average=True, epsilon=BN_EPSILON, name="bn")(x)
    return nn.relu(x)


class InceptionA(nn.Module):
  """Mixed_5b-d: 1x1, 1x1 -> 5x5, 1x1 -> 3x3 -> 3x3, and avg pool -> 1x1 branches."""
  pool_features: int
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(64, name="branch1x1")(x)
    b5 = conv(48, name="branch5x5_1")(x)
    b5 = conv(64, (5, 5), padding=2, name="branch5x5_2")(b5)
    b3 = conv(64, name="branch3x3dbl_1")(x)
    b3 = conv(96, (3, 3), padding=1, name="branch3x3dbl_2")(b3)
    b3 = conv(96, (3, 3), padding=1, name="branch3x3dbl_3")(b3)
    bp = conv(self.pool_features, name="branch_pool")(avg_pool_3x3_exclude_pad(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):
  """Mixed_6a (grid 35 -> 17): 3x3/2, 1x1 -> 3x3 -> 3x3/2, and max pool 3x3/2."""
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(384, (3, 3), strides=2, name="branch3x3")(x)
    bd = conv(64, name="branch3x3dbl_1")(x)
    bd = conv(96, (3, 3), padding=1, name="branch3x3dbl_2")(bd)
    bd = conv(96, (3, 3), strides=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, max_pool(x, 2)], axis=-1)


class InceptionC(nn.Module):
  """Mixed_6b-e: 1x1, factorised 7x7, double factorised 7x7, and avg pool -> 1x1."""
  channels_7x7: int
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    c7 = self.channels_7x7
    b1 = conv(192, name="branch1x1")(x)
    b7 = conv(c7, name="branch7x7_1")(x)
    b7 = conv(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = conv(c7, name="branch7x7dbl_1")(x)
    bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = conv(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = conv(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = conv(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = conv(192, name="branch_pool")(avg_pool_3x3_exclude_pad(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):
  """Mixed_7a (grid 17 -> 8): 1x1 -> 3x3/2, 1x1 -> 1x7 -> 7x1 -> 3x3/2, max pool 3x3/2."""
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b3 = conv(192, name="branch3x3_1")(x)
    b3 = conv(320, (3, 3), strides=2, name="branch3x3_2")(b3)
    b7 = conv(192, name="branch7x7x3_1")(x)
    b7 = conv(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = conv(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = conv(192, (3, 3), strides=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, max_pool(x, 2)], axis=-1)


class InceptionE(nn.Module):
  """Mixed_7b-c: 1x1, 1x1 -> (1x3, 3x1), 1x1 -> 3x3 -> (1x3, 3x1), and a pool -> 1x1.

  The pool is the padding-excluding 3x3 average in Mixed_7b and a 3x3 max
  pool in Mixed_7c (pytorch-fid's FIDInceptionE_1 and FIDInceptionE_2).
  """
  pool: str  # "avg" or "max"
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, x):
    conv = functools.partial(BasicConv, precision=self.precision)
    b1 = conv(320, name="branch1x1")(x)
    b3 = conv(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          conv(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], -1)
    bd = conv(448, name="branch3x3dbl_1")(x)
    bd = conv(384, (3, 3), padding=1, name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([conv(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          conv(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], -1)
    pooled = avg_pool_3x3_exclude_pad(x) if self.pool == "avg" else max_pool(x, 1, padding=1)
    bp = conv(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInception(nn.Module):
  """images [B, H, W, 1 or 3] in [-1, 1], any size -> {"pool": [B, 2048], "logits": [B, 1008]}.

  Variables: {"params", "batch_stats"}, e.g. from `params_from_state_dict`.
  `precision` is that of the convolutions; HIGHEST keeps float32 accuracy on
  accelerators that would otherwise use TF32 or bfloat16 passes.
  """
  num_classes: int = NUM_CLASSES
  precision: lax.Precision | None = lax.Precision.HIGHEST

  @nn.compact
  def __call__(self, images):
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
      raise ValueError(f"FIDInception takes NHWC images with 1 or 3 channels, got shape"
                       f" {images.shape}")
    x = resize_bilinear(images)
    if x.shape[-1] == 1:
      x = jnp.repeat(x, 3, axis=-1)
    kw = dict(precision=self.precision)
    x = BasicConv(32, (3, 3), strides=2, name="Conv2d_1a_3x3", **kw)(x)
    x = BasicConv(32, (3, 3), name="Conv2d_2a_3x3", **kw)(x)
    x = BasicConv(64, (3, 3), padding=1, name="Conv2d_2b_3x3", **kw)(x)
    x = max_pool(x, 2)
    x = BasicConv(80, name="Conv2d_3b_1x1", **kw)(x)
    x = BasicConv(192, (3, 3), name="Conv2d_4a_3x3", **kw)(x)
    x = max_pool(x, 2)
    x = InceptionA(32, name="Mixed_5b", **kw)(x)
    x = InceptionA(64, name="Mixed_5c", **kw)(x)
    x = InceptionA(64, name="Mixed_5d", **kw)(x)
    x = InceptionB(name="Mixed_6a", **kw)(x)
    x = InceptionC(128, name="Mixed_6b", **kw)(x)
    x = InceptionC(160, name="Mixed_6c", **kw)(x)
    x = InceptionC(160, name="Mixed_6d", **kw)(x)
    x = InceptionC(192, name="Mixed_6e", **kw)(x)
    x = InceptionD(name="Mixed_7a", **kw)(x)
    x = InceptionE("avg", name="Mixed_7b", **kw)(x)
    x = InceptionE("max", name="Mixed_7c", **kw)(x)
    pool = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(self.num_classes, precision=self.precision, name="fc")(pool)
    return {"pool": pool, "logits": logits}


def variable_shapes(num_classes: int = NUM_CLASSES):
  """The {"params", "batch_stats"} tree of FIDInception as ShapeDtypeStructs (no compute)."""
  model = FIDInception(num_classes)
  images = jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), images)


# PyTorch's last name component -> (collection, Flax leaf name).
_LEAVES = {
    ("conv", "weight"): ("params", "kernel"),
    ("bn", "weight"): ("params", "scale"),
    ("bn", "bias"): ("params", "bias"),
    ("bn", "running_mean"): ("batch_stats", "mean"),
    ("bn", "running_var"): ("batch_stats", "var"),
    ("fc", "weight"): ("params", "kernel"),
    ("fc", "bias"): ("params", "bias"),
}


def params_from_state_dict(state_dict, num_classes: int = NUM_CLASSES):
  """FIDInception variables {"params", "batch_stats"} from pytorch-fid's state_dict.

  Convolution weights go from OIHW to HWIO and the fc weight from [out, in]
  to [in, out]; BatchNorm's `num_batches_tracked` counters are ignored. Every
  other tensor must be used and every variable filled, with matching shapes;
  otherwise a GanjaxError names the offending key.
  """
  expected = variable_shapes(num_classes)
  flat_expected = {tuple(k.key for k in path): leaf
                   for path, leaf in jax.tree_util.tree_flatten_with_path(expected)[0]}
  filled = {}
  for key, value in state_dict.items():
    parts = key.split(".")
    if parts[-1] == "num_batches_tracked":
      continue
    leaf = _LEAVES.get(tuple(parts[-2:]))
    if leaf is None:
      raise GanjaxError(f"state_dict key {key!r} is not part of pytorch-fid's FID Inception;"
                        " load the FID weights (pt_inception-2015-12-05-*.pth)")
    collection, name = leaf
    target = (collection, *parts[:-1], name)
    if target not in flat_expected:
      raise GanjaxError(f"state_dict key {key!r} has no counterpart in FIDInception;"
                        " load the FID weights (pt_inception-2015-12-05-*.pth)")
    value = np.asarray(value, np.float32)
    if value.ndim == 4:
      value = value.transpose(2, 3, 1, 0)  # OIHW -> HWIO
    elif value.ndim == 2:
      value = value.T  # [out, in] -> [in, out]
    if value.shape != flat_expected[target].shape:
      raise GanjaxError(f"state_dict key {key!r} has shape {np.shape(state_dict[key])},"
                        f" which does not fit FIDInception's {flat_expected[target].shape}"
                        f" ({'/'.join(target)})")
    filled[target] = value
  missing = [k for k in flat_expected if k not in filled]
  if missing:
    collection, *modules, name = missing[0]
    torch_name = {(m, c, n): t for (m, t), (c, n) in _LEAVES.items()}[
        (modules[-1], collection, name)]
    raise GanjaxError(f"the state_dict lacks {len(missing)} of FIDInception's tensors, e.g."
                      f" {'.'.join(modules)}.{torch_name}; load the complete FID weights"
                      " (pt_inception-2015-12-05-*.pth)")
  variables = {}
  for path, value in filled.items():
    node = variables
    for part in path[:-1]:
      node = node.setdefault(part, {})
    node[path[-1]] = jnp.asarray(value)
  return variables
