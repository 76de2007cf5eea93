"""Tests for ganjax.evaluation.inception (FID Inception-v3) and torch_weights (.pth reader).

The golden files in tests/golden/ come from tests/make_fid_golden.py, run once
with PyTorch and pytorch-fid; these tests read them with ganjax alone. The
full-network comparison uses fid_inception_random.pth, pytorch-fid's network
with random weights stored compactly (~1 MB: every large weight is a strided
view of a short storage), and fid_inception_parity.npz: uint8 images of
several sizes, pytorch-fid's pool features and logits for them, and FID values
from pytorch-fid's calculate_frechet_distance.
"""

import pathlib
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganjax.errors import GanjaxError
from ganjax.evaluation import fid
from ganjax.evaluation import inception
from ganjax.evaluation import torch_weights
from tests import fid_recipe

GOLDEN = pathlib.Path(__file__).resolve().parent / "golden"


# --- the .pth reader -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["torch_weights_small.pth", "torch_weights_small_legacy.pth"])
def test_load_state_dict_matches_torch(name):
  sd = torch_weights.load_state_dict(GOLDEN / name)
  with np.load(GOLDEN / "torch_weights_small.npz") as golden:
    dtypes = dict(s.split("=") for s in golden["__dtypes__"])
    expected = {k: golden[k] for k in golden.files if k != "__dtypes__"}
  assert list(sd) == list(dtypes)  # every tensor, in the saved order
  for key, want in expected.items():
    got = sd[key]
    assert got.dtype.name == dtypes[key], key
    assert got.shape == want.shape, key
    assert got.flags.c_contiguous, key
    np.testing.assert_array_equal(got.astype(want.dtype), want, err_msg=key)
  # Views come out as PyTorch shows them, not as their storage lies.
  np.testing.assert_array_equal(sd["conv_permuted"], sd["conv_oihw"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(sd["float32_shared_b"].ravel(), np.arange(12, 24))


def test_load_state_dict_missing_file(tmp_path):
  with pytest.raises(GanjaxError, match="does not exist"):
    torch_weights.load_state_dict(tmp_path / "nope.pth")


def test_load_state_dict_corrupt_files(tmp_path):
  garbage = tmp_path / "garbage.pth"
  garbage.write_bytes(b"not a checkpoint at all")
  with pytest.raises(GanjaxError, match="not a readable PyTorch state_dict"):
    torch_weights.load_state_dict(garbage)

  truncated = tmp_path / "truncated.pth"
  data = (GOLDEN / "torch_weights_small.pth").read_bytes()
  truncated.write_bytes(data[: len(data) // 2])
  with pytest.raises(GanjaxError, match="not a readable PyTorch state_dict"):
    torch_weights.load_state_dict(truncated)

  legacy_truncated = tmp_path / "legacy_truncated.pth"
  data = (GOLDEN / "torch_weights_small_legacy.pth").read_bytes()
  legacy_truncated.write_bytes(data[:-40])
  with pytest.raises(GanjaxError, match="not a readable PyTorch state_dict"):
    torch_weights.load_state_dict(legacy_truncated)


def test_load_state_dict_refuses_foreign_pickles(tmp_path):
  """A pickle that would call anything but the tensor rebuilders is refused, not run."""
  src = zipfile.ZipFile(GOLDEN / "torch_weights_small.pth")
  prefix = next(n for n in src.namelist() if n.endswith("data.pkl"))[: -len("data.pkl")]
  evil = tmp_path / "evil.pth"
  with zipfile.ZipFile(evil, "w") as dst:
    dst.writestr(prefix + "data.pkl", b"cos\nsystem\n(S'echo pwned'\ntR.")
  with pytest.raises(GanjaxError, match="os.system is not part of a plain state_dict"):
    torch_weights.load_state_dict(evil)


# --- the bilinear resize -----------------------------------------------------------------


def _torch_bilinear_reference(images, out_h, out_w):
  """F.interpolate(mode='bilinear', align_corners=False) of NHWC images, pixel by pixel.

  As PyTorch's kernel: the scale in / out is a float32, the sample position
  scale * (i + 0.5) - 0.5 is rounded once to float32 (a fused multiply-add),
  negative positions are clamped to 0, and the weights are float32.
  """
  _, in_h, in_w, _ = images.shape

  def source(i, in_size, out_size):
    if in_size == out_size:
      return i, i, 0.0, 1.0
    scale = float(np.float32(in_size) / np.float32(out_size))
    x = max(float(np.float32(scale * (i + 0.5) - 0.5)), 0.0)
    i0 = min(int(np.floor(x)), in_size - 1)
    frac = np.float32(x - i0)
    return i0, min(i0 + 1, in_size - 1), float(frac), float(np.float32(1) - frac)

  out = np.zeros((images.shape[0], out_h, out_w, images.shape[3]), np.float64)
  for y in range(out_h):
    y0, y1, fy, gy = source(y, in_h, out_h)
    for x in range(out_w):
      x0, x1, fx, gx = source(x, in_w, out_w)
      top = gx * images[:, y0, x0] + fx * images[:, y0, x1]
      bottom = gx * images[:, y1, x0] + fx * images[:, y1, x1]
      out[:, y, x] = gy * top + fy * bottom
  return out


@pytest.mark.parametrize("in_hw,out_hw", [((8, 8), (19, 19)), ((32, 20), (13, 29)),
                                          ((7, 5), (7, 5)), ((1, 3), (4, 2)),
                                          ((40, 40), (17, 17)), ((320, 300), (299, 299))])
def test_resize_matches_torch_bilinear(in_hw, out_hw):
  images = np.random.default_rng(0).uniform(-1, 1, (2, *in_hw, 3)).astype(np.float32)
  got = inception.resize_bilinear(jnp.asarray(images), out_hw)
  want = _torch_bilinear_reference(images.astype(np.float64), *out_hw)
  np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-6)


def test_resize_is_not_antialiased():
  """Downsampling by 2 averages two neighbours per axis, as PyTorch does (jax.image does not)."""
  images = np.random.default_rng(1).normal(size=(1, 8, 8, 1)).astype(np.float32)
  got = np.asarray(inception.resize_bilinear(jnp.asarray(images), (4, 4)))
  want = images.reshape(1, 4, 2, 4, 2, 1).mean(axis=(2, 4))
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_resize_commutes_with_scaling_to_minus_one_one():
  """pytorch-fid resizes [0, 1] images, then maps to [-1, 1]; ganjax resizes [-1, 1] ones."""
  x = np.random.default_rng(2).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
  fid_order = 2 * inception.resize_bilinear(jnp.asarray(x)) - 1
  ganjax_order = inception.resize_bilinear(jnp.asarray(2 * x - 1))
  np.testing.assert_allclose(np.asarray(ganjax_order), np.asarray(fid_order), atol=1e-6)


# --- pools -------------------------------------------------------------------------------


def test_pools_ignore_padding():
  x = np.random.default_rng(3).normal(size=(1, 5, 4, 2)).astype(np.float32)
  padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=np.nan)
  avg = np.zeros_like(x)
  top = np.zeros_like(x)
  for i in range(5):
    for j in range(4):
      window = padded[:, i:i + 3, j:j + 3]
      avg[:, i, j] = np.nanmean(window, axis=(1, 2))
      top[:, i, j] = np.nanmax(window, axis=(1, 2))
  np.testing.assert_allclose(np.asarray(inception.avg_pool_3x3_exclude_pad(x)), avg, rtol=1e-6)
  np.testing.assert_array_equal(np.asarray(inception.max_pool(x, 1, padding=1)), top)


# --- the network -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes():
  return inception.variable_shapes()


def _count(tree):
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def test_parameter_count(shapes):
  # pytorch-fid's fid_inception_v3(): sum(p.numel() for p in model.parameters()).
  assert _count(shapes["params"]) == inception.NUM_PARAMS == 23_850_960
  assert _count(shapes["batch_stats"]) == 34_432  # running means and variances
  assert set(shapes["params"]) == {
      "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
      "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
      "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c", "fc"}


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (3, 28, 28, 1), (1, 299, 299, 3)])
def test_output_shapes(shapes, shape):
  out = jax.eval_shape(inception.FIDInception().apply, shapes,
                       jax.ShapeDtypeStruct(shape, jnp.float32))
  assert out["pool"].shape == (shape[0], 2048) and out["pool"].dtype == jnp.float32
  assert out["logits"].shape == (shape[0], 1008)


def test_rejects_bad_channels(shapes):
  with pytest.raises(ValueError, match="1 or 3 channels"):
    jax.eval_shape(inception.FIDInception().apply, shapes,
                   jax.ShapeDtypeStruct((1, 32, 32, 4), jnp.float32))


def _torch_layout_state_dict(shapes, rng):
  """A state_dict with pytorch-fid's names and layouts, filled with random numbers."""
  torch_names = {"kernel": "weight", "scale": "weight", "bias": "bias",
                 "mean": "running_mean", "var": "running_var"}
  sd = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(shapes)[0]:
    *modules, name = [k.key for k in path[1:]]
    shape = leaf.shape
    if len(shape) == 4:
      shape = (shape[3], shape[2], shape[0], shape[1])  # HWIO -> OIHW
    elif len(shape) == 2:
      shape = shape[::-1]
    sd[".".join(modules + [torch_names[name]])] = rng.standard_normal(shape, np.float32)
    if name == "var":
      sd[".".join(modules + ["num_batches_tracked"])] = np.array(0, np.int64)
  return sd


def test_params_from_state_dict(shapes):
  sd = _torch_layout_state_dict(shapes, np.random.default_rng(0))
  variables = inception.params_from_state_dict(sd)
  assert jax.tree.structure(variables) == jax.tree.structure(shapes)
  conv = variables["params"]["Mixed_6b"]["branch7x7_2"]["conv"]["kernel"]
  assert conv.shape == (1, 7, 128, 128)
  np.testing.assert_array_equal(
      conv, sd["Mixed_6b.branch7x7_2.conv.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(variables["params"]["fc"]["kernel"], sd["fc.weight"].T)
  np.testing.assert_array_equal(variables["batch_stats"]["Mixed_7c"]["branch_pool"]["bn"]["var"],
                                sd["Mixed_7c.branch_pool.bn.running_var"])
  np.testing.assert_array_equal(variables["params"]["Conv2d_1a_3x3"]["bn"]["scale"],
                                sd["Conv2d_1a_3x3.bn.weight"])

  missing = dict(sd)
  del missing["Mixed_5c.branch5x5_2.bn.running_mean"]
  with pytest.raises(GanjaxError, match=r"lacks 1 .* Mixed_5c\.branch5x5_2\.bn\.running_mean"):
    inception.params_from_state_dict(missing)

  extra = dict(sd, **{"AuxLogits.fc.weight": np.zeros((1000, 768), np.float32)})
  with pytest.raises(GanjaxError, match="AuxLogits.fc.weight"):
    inception.params_from_state_dict(extra)

  wrong = dict(sd, **{"fc.weight": np.zeros((1000, 2048), np.float32)})
  with pytest.raises(GanjaxError, match=r"'fc.weight' has shape \(1000, 2048\)"):
    inception.params_from_state_dict(wrong)


# --- parity with pytorch-fid (tests/make_fid_golden.py's committed golden files) -----


def _relative_error(got, want):
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.fixture(scope="module")
def parity():
  """The golden arrays, and FIDInception's outputs for the golden images (one jit per size)."""
  with np.load(GOLDEN / "fid_inception_parity.npz") as f:
    golden = {k: f[k] for k in f.files}
  sd = torch_weights.load_state_dict(GOLDEN / "fid_inception_random.pth")
  # The weights are overlapping strided views of short storages: W[o + 1, ..., w] is
  # W[o, ..., w + 1] (what keeps the file small; the reader must rebuild them as such).
  w = sd["Mixed_6e.branch7x7_2.conv.weight"]
  assert w.shape == (192, 192, 1, 7)
  np.testing.assert_array_equal(w[1:, :, :, :-1], w[:-1, :, :, 1:])
  variables = inception.params_from_state_dict(sd)
  apply = jax.jit(inception.FIDInception().apply)
  names = [k.removeprefix("images_") for k in golden if k.startswith("images_")]
  outputs = {}
  for name in names:
    # pytorch-fid's input is image / 255 in float32; ganjax's is 2 * that - 1.
    images = golden[f"images_{name}"].astype(np.float32) / np.float32(255)
    outputs[name] = jax.tree.map(np.asarray, apply(variables, jnp.asarray(2 * images - 1)))
  return golden, outputs, variables, apply


def test_parity_with_pytorch_fid(parity):
  golden, outputs, variables, apply = parity
  assert int(golden["num_params"]) == inception.NUM_PARAMS
  assert set(outputs) == {"32x32", "64x48", "299x299", "320x300"}
  for name, out in outputs.items():
    pool_error = _relative_error(out["pool"], golden[f"pool_{name}"])
    logits_error = _relative_error(out["logits"], golden[f"logits_{name}"])
    print(f"{name}: pool rel. error {pool_error:.2e}, logits rel. error {logits_error:.2e}")
    assert pool_error < 1e-4 and logits_error < 1e-4, name
    np.testing.assert_allclose(out["pool"], golden[f"pool_{name}"],
                               rtol=1e-4, atol=1e-4 * np.abs(golden[f"pool_{name}"]).max())
  # One grey channel is the same image repeated.
  grey = golden["images_32x32"][..., :1].astype(np.float32) / np.float32(255)
  out_grey = apply(variables, jnp.asarray(2 * grey - 1))
  out_rgb = apply(variables, jnp.asarray(2 * np.repeat(grey, 3, -1) - 1))
  np.testing.assert_allclose(np.asarray(out_grey["pool"]), np.asarray(out_rgb["pool"]),
                             rtol=1e-6, atol=1e-6)


def test_fid_matches_pytorch_fid():
  """ganjax's FID of synthetic 2048-d features equals pytorch-fid's calculate_frechet_distance."""
  with np.load(GOLDEN / "fid_inception_parity.npz") as golden:
    recipe, check, want = golden["fid_recipe"], golden["fid_check"], float(golden["fid_value"])
  a, b = fid_recipe.fid_features(*(int(v) for v in recipe))
  (mu1, sigma1), (mu2, sigma2) = fid.statistics(a), fid.statistics(b)
  np.testing.assert_allclose(np.stack([mu1[:8], mu2[:8]]), check, rtol=1e-12, err_msg=(
      "the features are not the ones the golden FID was computed on (NumPy's random"
      " stream changed?): run tests/make_fid_golden.py again"))
  # pytorch-fid's statistics: the mean and np.cov(rowvar=False), in float64.
  assert mu1.dtype == sigma1.dtype == np.float64
  np.testing.assert_allclose(sigma1[:64, :64], np.cov(a[:, :64], rowvar=False),
                             rtol=1e-10, atol=1e-12)
  got = fid.frechet_distance(mu1, sigma1, mu2, sigma2)
  print(f"FID {got:.6f}, pytorch-fid {want:.6f}, rel. error {abs(got - want) / want:.2e}")
  assert abs(got - want) <= 1e-3 * want


def test_fid_of_images_matches_pytorch_fid(parity):
  """The whole pipeline: FID of two groups of golden images' pool features (rank-deficient)."""
  golden, outputs, _, _ = parity
  if "fid_images_value" not in golden:
    pytest.skip("make_fid_golden.py found pytorch-fid's FID of the image groups inaccurate")
  pools = np.concatenate([outputs[name]["pool"] for name in
                          ("32x32", "64x48", "299x299", "320x300")])
  first, second = golden["fid_images_groups"]
  got = fid.frechet_distance(*fid.statistics(pools[first]), *fid.statistics(pools[second]))
  want = float(golden["fid_images_value"])
  print(f"FID {got:.6f}, pytorch-fid {want:.6f}, rel. error {abs(got - want) / want:.2e}")
  assert abs(got - want) <= 1e-3 * want
