"""Writes the golden files for tests/test_inception.py, with PyTorch and pytorch-fid.

Not run by CI: it needs torch and pytorch-fid, which ganjax does not depend on.
Run it in a separate environment, from the repository root:

  python3 -m venv /work/torchvenv
  /work/torchvenv/bin/pip install torch pytorch-fid==0.3.0 numpy scipy
  /work/torchvenv/bin/python tests/make_fid_golden.py

It writes, in tests/golden/ (all small, all committed; CI reads them with ganjax alone):
  torch_weights_small.pth         a state_dict covering the cases the .pth reader must
                                  handle: every common dtype, transposed and sliced
                                  views, storage offsets, shared storages, 0-d and empty
                                  tensors (zip format, as torch.save writes by default);
  torch_weights_small_legacy.pth  the same in the pre-1.6 (non-zip) format;
  torch_weights_small.npz         the values PyTorch holds for each of them;
  fid_inception_random.pth        pytorch-fid's FID Inception (fid_inception_v3()'s
                                  state_dict keys) with seeded random weights and
                                  BatchNorm statistics, ~1 MB instead of ~95 MB: each
                                  convolution and the fc weight is a strided view of a
                                  short random 1-D storage (W[o, i, h, w] =
                                  s[o + (i * kh + h) * kw + w], a Hankel-like tensor), and
                                  torch.save stores only that storage;
  fid_inception_parity.npz        uint8 images of several sizes (pytorch-fid's input is
                                  image / 255), pytorch-fid's pool features and logits
                                  for them, and FID values from pytorch-fid's
                                  calculate_frechet_distance: of two synthetic feature
                                  sets the test rebuilds from a seed (fid_features),
                                  and of two groups of the images' pool features.
The checks against these files: python -m pytest tests/test_inception.py -k pytorch_fid
"""

import argparse
import collections
import os
import sys
from unittest import mock

import numpy as np
import torch
from pytorch_fid import fid_score
from pytorch_fid import inception as fid_inception

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.fid_recipe import fid_features  # noqa: E402  the recipe the CI test rebuilds

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")

# The FID test's synthetic feature sets (fid_features): seed, samples, dimensions, factors.
FID_RECIPE = (20240611, 4096, 2048, 64)


def small_state_dict():
  """Tensors of every case the reader must rebuild, name -> torch.Tensor."""
  g = torch.Generator().manual_seed(0)
  base = torch.randn(4, 6, generator=g)
  shared = torch.arange(24, dtype=torch.float32)
  conv = torch.randn(8, 3, 3, 3, generator=g)
  sd = collections.OrderedDict()
  sd["float32"] = torch.randn(2, 3, generator=g)
  sd["float32_transposed"] = base.t()                  # stride (1, 6)
  sd["float32_sliced"] = base[1:, ::2]                 # offset 6, stride (6, 2)
  sd["float32_shared_a"] = shared[:12].view(3, 4)      # both in one storage
  sd["float32_shared_b"] = shared[12:].view(2, 6)      # offset 12
  sd["conv_oihw"] = conv
  sd["conv_permuted"] = conv.permute(2, 3, 1, 0)       # an HWIO view of the same storage
  sd["float64"] = torch.randn(3, generator=g, dtype=torch.float64)
  sd["float16"] = torch.randn(5, generator=g).half()
  sd["bfloat16"] = torch.randn(5, generator=g).bfloat16()
  sd["int64"] = torch.tensor([-3, 0, 2 ** 40], dtype=torch.int64)
  sd["int32"] = torch.tensor([[1, -2], [3, 4]], dtype=torch.int32)
  sd["uint8"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
  sd["bool"] = torch.tensor([True, False, True])
  sd["scalar"] = torch.tensor(1.5)
  sd["empty"] = torch.zeros(0, 3)
  sd["bn.num_batches_tracked"] = torch.tensor(17)
  return sd


def write_small(golden_dir: str):
  os.makedirs(golden_dir, exist_ok=True)
  sd = small_state_dict()
  torch.save(sd, os.path.join(golden_dir, "torch_weights_small.pth"))
  torch.save(sd, os.path.join(golden_dir, "torch_weights_small_legacy.pth"),
             _use_new_zipfile_serialization=False)
  values = {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in sd.items()}
  dtypes = {k: str(v.dtype).removeprefix("torch.") for k, v in sd.items()}
  np.savez(os.path.join(golden_dir, "torch_weights_small.npz"),
           __dtypes__=np.array([f"{k}={v}" for k, v in dtypes.items()]), **values)


def build_fid_inception():
  """pytorch-fid's fid_inception_v3() without downloading its weights (default init)."""
  # fid_inception_v3() builds this network and then downloads its weights; build it
  # here with pytorch-fid's own blocks, then check the keys against the real function.
  model = fid_inception._inception_v3(num_classes=1008, aux_logits=False, weights=None)
  model.Mixed_5b = fid_inception.FIDInceptionA(192, pool_features=32)
  model.Mixed_5c = fid_inception.FIDInceptionA(256, pool_features=64)
  model.Mixed_5d = fid_inception.FIDInceptionA(288, pool_features=64)
  model.Mixed_6b = fid_inception.FIDInceptionC(768, channels_7x7=128)
  model.Mixed_6c = fid_inception.FIDInceptionC(768, channels_7x7=160)
  model.Mixed_6d = fid_inception.FIDInceptionC(768, channels_7x7=160)
  model.Mixed_6e = fid_inception.FIDInceptionC(768, channels_7x7=192)
  model.Mixed_7b = fid_inception.FIDInceptionE_1(1280)
  model.Mixed_7c = fid_inception.FIDInceptionE_2(2048)
  # The same state_dict keys as the real fid_inception_v3() (checked by loading it).
  with mock.patch.object(fid_inception, "load_state_dict_from_url",
                         lambda *a, **k: model.state_dict()):
    reference = fid_inception.fid_inception_v3()
  assert reference.state_dict().keys() == model.state_dict().keys()
  return model


def smooth_images(g, n, h, w):
  """uint8 NHWC images with structure at several scales (not only pixel noise)."""
  coarse = torch.rand(n, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
  fine = torch.rand(n, 3, h, w, generator=g)
  up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                       align_corners=False)
  images = (0.8 * up + 0.2 * fine).clamp(0, 1)
  return (255 * images).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


def as_input(images_uint8):
  """pytorch-fid's input for uint8 NHWC images: NCHW float32 in [0, 1] (k / 255)."""
  return images_uint8.permute(0, 3, 1, 2).float() / 255


def compact_weight(shape, std, g):
  """A random tensor of `shape` that is a strided view of a short 1-D storage.

  The leading (output) axis has stride 1 and the others their usual strides
  within one output filter, so element [o, i, h, w] is s[o + (i * kh + h) * kw + w]:
  O + I*kh*kw - 1 numbers instead of O*I*kh*kw, each N(0, std^2). Each filter is
  its neighbour shifted by one element (W[o + 1, ..., w] = W[o, ..., w + 1]), yet
  the filters are linearly independent, and axes of equal length have different
  strides, so reading the tensor in a wrong layout (say, O and I or kh and kw
  swapped) gives different numbers.
  """
  shape = tuple(shape)
  inner = [1] * len(shape)
  for axis in range(len(shape) - 2, 0, -1):
    inner[axis] = inner[axis + 1] * shape[axis + 1]
  strides = (1, *inner[1:])
  for a in range(len(shape)):
    for b in range(a):
      assert not (shape[a] == shape[b] > 1 and strides[a] == strides[b]), (shape, strides)
  length = 1 + sum((n - 1) * s for n, s in zip(shape, strides))
  storage = std * torch.randn(length, generator=g)
  return storage.as_strided(shape, strides)


def randomise(model, g):
  """Random weights and BatchNorm statistics that keep activations at a sane scale.

  Convolution and fc weights are compact_weight views (kaiming-normal scale for
  the convolutions' fan-in); their values are copied into the model. BatchNorm
  scales and shifts are drawn next; the running statistics are then measured
  on a batch of images (a train-mode forward with momentum 1) and perturbed a
  little, so that every BatchNorm (eps 1e-3) matters while the features
  neither vanish nor explode through the 94 convolutions.

  Returns the model's state_dict with the compact views in place of the
  weights (the same values), which is what torch.save should write.
  """
  views = {}
  with torch.no_grad():
    for name, module in model.named_modules():
      if isinstance(module, torch.nn.Conv2d):
        fan_in = module.weight[0].numel()
        views[f"{name}.weight"] = compact_weight(module.weight.shape,
                                                 (2 / fan_in) ** 0.5, g)
        module.weight.copy_(views[f"{name}.weight"])
      elif isinstance(module, torch.nn.BatchNorm2d):
        module.weight.copy_(0.5 + torch.rand(module.num_features, generator=g))
        module.bias.copy_(0.2 * torch.randn(module.num_features, generator=g))
        module.momentum = 1.0
    views["fc.weight"] = compact_weight(model.fc.weight.shape, 0.05, g)
    model.fc.weight.copy_(views["fc.weight"])
    model.fc.bias.normal_(0, 0.1, generator=g)
    model.train()
    model(2 * as_input(smooth_images(g, 4, 299, 299)) - 1)
    model.eval()
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        c = module.num_features
        module.running_mean.add_(0.05 * module.running_var.sqrt()
                                 * torch.randn(c, generator=g))
        module.running_var.mul_(0.9 + 0.2 * torch.rand(c, generator=g))
        module.momentum = 0.1
  state_dict = model.state_dict()
  for key, view in views.items():
    assert torch.equal(state_dict[key], view), key
    state_dict[key] = view
  return state_dict


def statistics(features):
  features = np.asarray(features, np.float64)
  return features.mean(axis=0), np.cov(features, rowvar=False)


def write_parity(golden_dir: str):
  torch.manual_seed(0)
  g = torch.Generator().manual_seed(1)
  model = build_fid_inception()
  compact = randomise(model, g)
  path = os.path.join(golden_dir, "fid_inception_random.pth")
  torch.save(compact, path)
  num_params = sum(p.numel() for p in model.parameters())

  # The file, read back as a user would, holds fid_inception_v3()'s keys and values.
  state_dict = torch.load(path, weights_only=True)
  with mock.patch.object(fid_inception, "load_state_dict_from_url",
                         lambda *a, **k: model.state_dict()):
    reference = fid_inception.fid_inception_v3()
  assert list(state_dict) == list(reference.state_dict()), "keys differ from pytorch-fid's"
  for key, value in model.state_dict().items():
    assert torch.equal(state_dict[key], value), key
  print(f"{path}: {os.path.getsize(path) / 1e6:.2f} MB")

  # pytorch-fid's feature extractor, exactly as fid_score.py builds it, on the file's weights.
  with mock.patch.object(fid_inception, "load_state_dict_from_url",
                         lambda *a, **k: state_dict):
    extractor = fid_inception.InceptionV3([3], resize_input=True, normalize_input=True,
                                          use_fid_inception=True).eval()
  outputs = {"num_params": np.array(num_params)}
  # Up-, down- and non-resizing; one or two images each (the forward at 299 is heavy).
  sizes = [(32, 32, 2), (64, 48, 2), (299, 299, 1), (320, 300, 1)]
  pools = []
  with torch.no_grad():
    for h, w, n in sizes:
      images = smooth_images(g, n, h, w)
      pool = extractor(as_input(images))[0].flatten(1)
      logits = torch.nn.functional.linear(pool, state_dict["fc.weight"],
                                          state_dict["fc.bias"])
      # The whole torchvision forward (avgpool, dropout in eval, fc) agrees, on the
      # model that torch.load + load_state_dict gives as on the randomised one.
      resized = torch.nn.functional.interpolate(as_input(images), size=(299, 299),
                                                mode="bilinear", align_corners=False)
      torch.testing.assert_close(model(2 * resized - 1), logits, rtol=1e-4, atol=1e-4)
      name = f"{h}x{w}"
      outputs[f"images_{name}"] = images.numpy()  # NHWC uint8
      outputs[f"pool_{name}"] = pool.numpy()
      outputs[f"logits_{name}"] = logits.numpy()
      pools.append(pool.numpy())
      print(f"{name}: pool mean {pool.mean():.4f} std {pool.std():.4f},"
            f" logits std {logits.std():.4f}")

  # FID as pytorch-fid computes it, on feature sets the test can rebuild.
  seed, n, dims, factors = FID_RECIPE
  a, b = fid_features(seed, n, dims, factors)
  (mu1, sigma1), (mu2, sigma2) = statistics(a), statistics(b)
  fid = float(fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
  outputs["fid_recipe"] = np.array(FID_RECIPE)
  outputs["fid_check"] = np.stack([mu1[:8], mu2[:8]])  # catches a changed random stream
  outputs["fid_value"] = np.array(fid)
  print(f"FID of the synthetic features: {fid:.6f}"
        f" (mean term {np.sum((mu1 - mu2) ** 2):.3f})")

  # FID between two groups of the images above, where pytorch-fid's value is sound:
  # with 3 images a group the covariances have rank 2, and the general matrix square
  # root of their singular product is trusted only if it agrees with the exact value
  # (tr((S1 S2)^(1/2)) is the nuclear norm of A1 A2^T / (n - 1), A the centred features).
  groups = np.array([[0, 1, 2], [3, 4, 5]])
  pools = np.concatenate(pools).astype(np.float64)
  a, b = pools[groups[0]], pools[groups[1]]
  (mu1, sigma1), (mu2, sigma2) = statistics(a), statistics(b)
  fid = float(fid_score.calculate_frechet_distance(mu1, sigma1, mu2, sigma2))
  nuclear = np.linalg.svd((a - mu1) @ (b - mu2).T / (len(a) - 1), compute_uv=False).sum()
  exact = np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2) - 2 * nuclear
  print(f"FID of the image groups: {fid:.6f} (exact {exact:.6f})")
  if abs(fid - exact) <= 1e-5 * abs(exact):
    outputs["fid_images_groups"] = groups
    outputs["fid_images_value"] = np.array(fid)
  else:
    print("pytorch-fid's FID of the image groups is not accurate; not written")

  np.savez_compressed(os.path.join(golden_dir, "fid_inception_parity.npz"), **outputs)
  print(f"parameters: {num_params:,}; wrote {golden_dir}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--golden-dir", default=GOLDEN)
  parser.add_argument("--skip-parity", action="store_true")
  args = parser.parse_args()
  torch.set_num_threads(2)
  os.makedirs(args.golden_dir, exist_ok=True)
  write_small(args.golden_dir)
  if not args.skip_parity:
    write_parity(args.golden_dir)


if __name__ == "__main__":
  main()
