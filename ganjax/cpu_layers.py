"""Convolutions in the forms XLA:CPU runs fast: the CPU side of ganjax/backend.py.

`Conv` and `ConvTranspose` are drop-ins for `flax.linen.Conv` and
`flax.linen.ConvTranspose` (NHWC, no dilation, no groups): the same parameter
names, shapes, dtypes and initialisers, and the same outputs and gradients, so a
model built with them restores the checkpoints of one built with the stock
layers and vice versa. ganjax/backend.py gives them to the models on the CPU;
on GPU and TPU the models get the stock layers. Which form a layer takes is
decided by a `Rules` value that the backend resolves once per run and hands to
every layer as a field: nothing here reads the platform or a context.

The forms of an ordinary convolution (`conv2d`):

  "patches"      im2col: the kh*kw shifted (strided) views of the padded input,
                 side by side on the channel axis, times the kernel as one
                 [kh*kw*in, out] matrix.
  "shifted_sum"  the mirror image, stride 1 only: every input pixel times the
                 kernel as one [in, kh*kw*out] matrix, then the kh*kw shifted
                 [out]-channel slices of that product summed. Its gradient
                 (`shifted_sum`'s custom VJP) is patches of the output gradient,
                 so it too is two matrix products.
  "native"       `lax.conv_general_dilated`; strided, its input gradient is
                 computed by phases (`_strided_conv`), because lax writes it as a
                 convolution of the s-dilated output gradient and XLA:CPU
                 multiplies the dilation's zeros (3/4 of the work at stride 2).

`Rules.form` picks one from the kernel's shape, the strides and the input's
shape; the rules and the measurements behind them are in `Rules`' docstring
and benchmarks/conv_forms.py.

`conv_transpose` computes a strided transposed convolution as ordinary
stride-1 convolutions, one per output phase, interleaved by a depth-to-space
shuffle. XLA:CPU computes the weight gradient of an input-dilated
convolution (what `lax.conv_transpose` lowers to) far more slowly than that of
an ordinary convolution; the phase form does no extra arithmetic.

The derivation: a transposed convolution with stride s and padding (lo, hi)
of the s-dilated input computes y[o] = sum_k xd[o + k] K[k], where
xd[j] = x[(j - lo) / s] when that is an integer index and 0 otherwise. For
output phase r (o = s*m + r) only the taps k = k_r + s*t contribute, with
k_r = (lo - r) mod s, and they read x[m + (r + k_r - lo) / s + t]: an ordinary
stride-1 convolution of x with the sub-kernel K[k_r::s]. When the stride does not
divide the kernel size the phases have different numbers of taps (PyTorch's
ConvTranspose2d(k=3, s=2, p=1, output_padding=1), padding (1, 2) here: 2 and 1).

Two cases are matrix products instead: a single input pixel (DCGAN's latent
vector to 4x4: y[o] = x K[lo - o]; as a convolution of the padded pixel
XLA:CPU did 16x the work), and few output channels from many (an image layer,
`overlap_add`: each input pixel times the whole kernel, then every tap's
product added in at its place).
"""

import dataclasses
import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

_DIMS = ("NHWC", "HWIO", "NHWC")
FORMS = ("native", "patches", "shifted_sum")


@dataclasses.dataclass(frozen=True)
class Rules:
  """Which form each convolution takes on a CPU.

  - `forced`: one of FORMS for every convolution (tests, benchmarks); the
    shifted sum applies to stride 1 only, so strided convolutions take patches
    under it. None: the rules below.
  - `in_loop`: the layer is traced in the body of a loop (the `lax.scan` of a
    long run of discriminator updates). XLA:CPU runs native convolutions inside a loop
    many times more slowly than outside one (jax-ml/jax#12868), so every
    convolution there is patches.
  - few output channels (<= `few_channels`) from many, stride 1, 3x3 taps or
    more: shifted_sum (an image layer such as CycleGAN's 7x7 64 -> 3);
  - few input channels into many: patches, which are small then (the first
    layer of a network);
  - `patches_batch`: batches of at most this many examples are matrix
    products (CycleGAN's batch 1 over large maps): patches, or at stride 1 the
    shifted sum where the layer has fewer outputs than inputs (it writes the
    smaller of the two). Larger batches over small maps (DCGAN's 64 and more)
    stay native. 0 turns the rule off.
  - `overlap_add`: a transposed convolution to few channels from many is an
    overlap-add of matrix products.
  - `phase_input_grad`: a native strided convolution's input gradient by
    phases rather than XLA's dilated convolution.

benchmarks/conv_forms.py times every form of every layer of the benchmarked
networks side by side, which is how these rules are checked on a CPU.
  """
  forced: str | None = None
  in_loop: bool = False
  few_channels: int = 4
  patches_batch: int = 4
  overlap_add: bool = True
  phase_input_grad: bool = True

  def __post_init__(self):
    if self.forced is not None and self.forced not in FORMS:
      raise ValueError(f"Rules(forced={self.forced!r}): use one of {', '.join(FORMS)} or None")

  def form(self, kernel_shape: Sequence[int], strides: Sequence[int], batch: int) -> str:
    """The form of a convolution with kernel [kh, kw, in, out] over a batch of `batch`."""
    def usable(form):  # the shifted sum is for stride 1; strided, its mirror image
      return "patches" if form == "shifted_sum" and tuple(strides) != (1, 1) else form
    if self.forced is not None:
      return usable(self.forced)
    if self.in_loop:
      return "patches"
    kh, kw, cin, cout = kernel_shape
    if tuple(strides) == (1, 1) and cout <= self.few_channels < cin and kh * kw >= 9:
      return "shifted_sum"
    if cin <= self.few_channels < cout:
      return "patches"
    if batch <= self.patches_batch:
      # Both forms do the same multiplications; the shifted sum writes kh*kw*out values
      # per pixel and patches kh*kw*in, so the one with the smaller side is written.
      return usable("shifted_sum" if cout < cin else "patches")
    return "native"

  def transposed_form(self, cin: int, cout: int) -> str:
    """"overlap_add" or "phases" for a strided transposed convolution."""
    if self.forced is None and self.overlap_add and cout <= self.few_channels < cin:
      return "overlap_add"
    return "phases"


def _explicit_pad(x, padding):
  """Pads (or, for negative pads, crops) H and W like lax.conv_general_dilated's padding."""
  (lo_h, hi_h), (lo_w, hi_w) = padding
  x = x[:, max(-lo_h, 0):x.shape[1] - max(-hi_h, 0), max(-lo_w, 0):x.shape[2] - max(-hi_w, 0)]
  return jnp.pad(x, ((0, 0), (max(lo_h, 0), max(hi_h, 0)), (max(lo_w, 0), max(hi_w, 0)),
                     (0, 0)))


def patches(x, kh: int, kw: int, strides: Sequence[int] = (1, 1)):
  """The kh*kw shifted, strided views of x [B, H, W, C] side by side:
  [B, out_h, out_w, kh*kw*C], channel index (i*kw + j)*C + c for tap (i, j)."""
  sh, sw = strides
  out_h = (x.shape[1] - kh) // sh + 1
  out_w = (x.shape[2] - kw) // sw + 1
  return _side_by_side([
      lax.slice(x, (0, i, j, 0), (x.shape[0], i + sh * (out_h - 1) + 1,
                                  j + sw * (out_w - 1) + 1, x.shape[3]), (1, sh, sw, 1))
      for i in range(kh) for j in range(kw)], kh, kw)


def _side_by_side(parts, kh: int, kw: int):
  """kh*kw arrays [B, H, W, C], one per tap (i, j) in row-major order, side by side on
  the channel axis: [B, H, W, kh*kw*C].

  Built as a stack of stacks and reshaped, rather than one concatenate: XLA:CPU
  writes the nested form in one pass 2x to 4x faster (im2col patches of CycleGAN's
  and DCGAN's layers, 2 threads; CycleGAN-128's step 1.06x as fast,
  benchmarks/RESULTS.md). The values are the same.
  """
  batch, height, width, channels = parts[0].shape
  rows = [jnp.stack(parts[i * kw:(i + 1) * kw], axis=3) for i in range(kh)]
  return jnp.stack(rows, axis=3).reshape(batch, height, width, kh * kw * channels)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def shifted_sum(z, kh: int, kw: int):
  """z [B, H, W, kh*kw*C] -> [B, H-kh+1, W-kw+1, C]: sum over taps (i, j) of
  z[:, i:i+out_h, j:j+out_w, tap (i, j)'s C channels] (the channel order of `patches`)."""
  batch, height, width, n = z.shape
  c = n // (kh * kw)
  out_h, out_w = height - kh + 1, width - kw + 1
  total = None
  for i in range(kh):
    for j in range(kw):
      t = (i * kw + j) * c
      part = lax.slice(z, (0, i, j, t), (batch, i + out_h, j + out_w, t + c))
      total = part if total is None else total + part
  return total


def _shifted_sum_fwd(z, kh, kw):
  return shifted_sum(z, kh, kw), None


def _shifted_sum_bwd(kh, kw, _, dy):
  # d total / d z[:, h, w, tap (i, j)] = dy[:, h - i, w - j] where that exists, else 0.
  # JAX's own transpose of the slices above pads each into all of z's channels and adds
  # kh*kw such arrays: many times slower.
  return (_side_by_side([jnp.pad(dy, ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0)))
                         for i in range(kh) for j in range(kw)], kh, kw),)


shifted_sum.defvjp(_shifted_sum_fwd, _shifted_sum_bwd)


def conv2d(x, kernel, strides: Sequence[int] = (1, 1), padding=((0, 0), (0, 0)),
           rules: Rules = Rules()):
  """An ordinary convolution (NHWC, HWIO, explicit (lo, hi) padding or 'VALID'/'SAME'),
  computed in the form `rules` picks."""
  kh, kw, cin, cout = kernel.shape
  strides = tuple(strides)
  if isinstance(padding, str):
    padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding)
  padding = tuple(tuple(p) for p in padding)
  form = rules.form(kernel.shape, strides, x.shape[0])
  if form == "native":
    if strides != (1, 1) and rules.phase_input_grad:
      return _strided_conv(x, kernel, strides, padding, rules)
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DIMS)
  x = _explicit_pad(x, padding)
  batch, height, width, _ = x.shape
  if form == "shifted_sum":
    products = x.reshape(-1, cin) @ kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
    return shifted_sum(products.reshape(batch, height, width, kh * kw * cout), kh, kw)
  cols = patches(x, kh, kw, strides)
  out = cols.reshape(-1, kh * kw * cin) @ kernel.reshape(kh * kw * cin, cout)
  return out.reshape(cols.shape[:3] + (cout,))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _strided_conv(x, kernel, strides, padding, rules):
  """The native strided convolution, whose input gradient is computed by phases.

  The input gradient of a strided convolution is a transposed convolution of
  the output gradient; lax computes it as a convolution of the s-dilated
  gradient, whose zeros XLA:CPU multiplies too. `conv_transpose` computes the
  same sums as s*s stride-1 convolutions. The kernel gradient is lax's own.
  """
  return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_DIMS)


def _strided_conv_fwd(x, kernel, strides, padding, rules):
  return _strided_conv(x, kernel, strides, padding, rules), (x, kernel)


def _strided_conv_bwd(strides, padding, rules, residuals, dy):
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  pads = []
  for size, k, s, (lo, hi), out in zip(x.shape[1:3], (kh, kw), strides, padding, dy.shape[1:3]):
    # dx of the padded input (length size+lo+hi) is the transposed convolution of dy with
    # the flipped kernel, padded k-1 below; its rows lo..lo+size-1 are x's.
    last = size + lo + hi - 1 - (out - 1) * s
    pads.append((k - 1 - lo, last - hi))
  dx = conv_transpose(dy, kernel[::-1, ::-1].swapaxes(2, 3), strides, pads, rules)
  _, kernel_vjp = jax.vjp(
      lambda k: lax.conv_general_dilated(x, k, strides, padding, dimension_numbers=_DIMS),
      kernel)
  return dx.astype(x.dtype), kernel_vjp(dy)[0]


_strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


def transpose_pads(padding, kernel: Sequence[int], strides: Sequence[int]):
  """Explicit (lo, hi) pads of the dilated input, as `lax.conv_transpose` reads `padding`."""
  if not isinstance(padding, str):
    return [tuple(p) for p in padding]
  pads = []
  for k, s in zip(kernel, strides):
    if padding == "SAME":
      total = k + s - 2
      lo = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
      total = k + s - 2 + max(k - s, 0)
      lo = k - 1
    else:
      raise ValueError(f"padding={padding!r}: use 'SAME', 'VALID' or (lo, hi) pairs")
    pads.append((lo, total - lo))
  return pads


def _phases(size: int, kernel: int, stride: int, lo: int, hi: int):
  """Output size and, per output phase, (first tap, pad lo, pad hi) of its stride-1 conv."""
  out = (size - 1) * stride + 1 + lo + hi - kernel + 1
  if out % stride or kernel < stride:
    return out, None
  per_phase = out // stride
  plan = []
  for r in range(stride):
    first = (lo - r) % stride
    taps = -(-(kernel - first) // stride)  # len(range(first, kernel, stride)) >= 1
    offset = (r + first - lo) // stride  # the x index that output m = 0, tap t = 0 reads
    plan.append((first, -offset, per_phase + taps - 1 + offset - size))
  return out, plan


def overlap_add(x, kernel, strides: Sequence[int]):
  """The transposed convolution of x [B, H, W, in] with kernel [kh, kw, in, out] (stride s),
  padded to its full extent [B, s*(H-1) + kh, s*(W-1) + kw, out]: every input pixel times
  the kernel as one [in, kh*kw*out] matrix, then each tap's product added in at its
  place (pixel m, tap k: row s*m + kh-1-k). The mirror image of the shifted sum, for
  few output channels, where a transposed convolution's phases have little to do each.
  """
  batch, height, width, cin = x.shape
  kh, kw, _, cout = kernel.shape
  sh, sw = strides
  products = (x.reshape(-1, cin) @ kernel.transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout))
  products = products.reshape(batch, height, width, kh, kw, cout)
  zero = jnp.zeros((), x.dtype)
  total = None
  for i in range(kh):
    for j in range(kw):
      part = lax.pad(products[:, :, :, i, j], zero,
                     ((0, 0, 0), (kh - 1 - i, i, sh - 1), (kw - 1 - j, j, sw - 1), (0, 0, 0)))
      total = part if total is None else total + part
  return total


def conv_transpose(x, kernel, strides: Sequence[int], padding, rules: Rules = Rules()):
  """`lax.conv_transpose(x, kernel, strides, padding)` (NHWC, HWIO, unflipped kernel) by phases,
  each phase a stride-1 `conv2d` in the form `rules` picks.

  A single input pixel, and few output channels from many (`Rules.transposed_form`),
  are matrix products instead (see the module doc). Falls back to `lax.conv_transpose` at
  stride 1 (already an ordinary convolution) and where the phase form does not
  apply (a kernel smaller than the stride, or an output size that is not a
  multiple of the stride).
  """
  strides = tuple(strides)
  pads = transpose_pads(padding, kernel.shape[:2], strides)
  out_h, plan_h = _phases(x.shape[1], kernel.shape[0], strides[0], *pads[0])
  out_w, plan_w = _phases(x.shape[2], kernel.shape[1], strides[1], *pads[1])
  kh, kw, cin, cout = kernel.shape
  # Both matrix-product forms below leave the output padded by (lo - k + 1, hi - k + 1).
  crop = [(lo - k + 1, hi - k + 1) for (lo, hi), k in zip(pads, (kh, kw))]
  if x.shape[1:3] == (1, 1):
    # One input pixel (a latent vector): y[o] = x K[lo - o], a matrix product.
    flipped = kernel[::-1, ::-1].transpose(2, 0, 1, 3).reshape(cin, kh * kw * cout)
    y = (x.reshape(x.shape[0], cin) @ flipped).reshape(x.shape[0], kh, kw, cout)
    return _explicit_pad(y, crop)
  if rules.transposed_form(cin, cout) == "overlap_add":
    return _explicit_pad(overlap_add(x, kernel, strides), crop)
  if strides == (1, 1) or plan_h is None or plan_w is None:
    return lax.conv_transpose(x, kernel, strides, pads, dimension_numbers=_DIMS)
  rows = []
  for first_h, lo_h, hi_h in plan_h:
    cols = [conv2d(x, kernel[first_h::strides[0], first_w::strides[1]], (1, 1),
                   ((lo_h, hi_h), (lo_w, hi_w)), rules)
            for first_w, lo_w, hi_w in plan_w]
    rows.append(jnp.stack(cols, axis=3))  # [B, M, N, s_w, C]
  y = jnp.stack(rows, axis=2)  # [B, M, s_h, N, s_w, C]
  return y.reshape(x.shape[0], out_h, out_w, kernel.shape[-1])


class _Convolution(nn.Module):
  """The fields and parameters of `flax.linen.Conv` that ganjax's networks use: kernel
  [kh, kw, in, out] and an optional bias, float32 (`param_dtype`). `dtype` is the
  dtype of the computation and the output (None: the input's); the input and the
  parameters are cast to it. `rules` picks the form (see `Rules`)."""
  features: int
  kernel_size: Sequence[int]
  strides: Sequence[int] = (1, 1)
  padding: str | Sequence[tuple[int, int]] = "SAME"
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.linear.default_kernel_init
  bias_init: nn.initializers.Initializer = nn.initializers.zeros_init()
  dtype: jnp.dtype | None = None
  param_dtype: jnp.dtype = jnp.float32
  rules: Rules = Rules()

  def op(self, x, kernel):
    raise NotImplementedError

  @nn.compact
  def __call__(self, x):
    if self.dtype is not None:
      x = x.astype(self.dtype)
    kernel = self.param("kernel", self.kernel_init,
                        (*self.kernel_size, x.shape[-1], self.features), self.param_dtype)
    y = self.op(x, kernel.astype(x.dtype))
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,),
                         self.param_dtype).astype(x.dtype)
    return y


class Conv(_Convolution):
  """`nn.Conv` for NHWC inputs (no dilation, no groups), computed by `conv2d`."""

  def op(self, x, kernel):
    return conv2d(x, kernel, self.strides, self.padding, self.rules)


class ConvTranspose(_Convolution):
  """`nn.ConvTranspose` for NHWC inputs (transpose_kernel False), computed by
  `conv_transpose`."""

  def op(self, x, kernel):
    return conv_transpose(x, kernel, self.strides, self.padding, self.rules)


def layers(rules: Rules):
  """(conv, conv_transpose) module factories with `rules` bound, for `models.Layers`."""
  return functools.partial(Conv, rules=rules), functools.partial(ConvTranspose, rules=rules)
