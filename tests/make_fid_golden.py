"""Writes the golden files for tests/test_inception.py, with PyTorch and pytorch-fid.

Not run by CI: it needs torch and pytorch-fid, which ganjax does not depend on.
Run it in a separate environment, from the repository root:

  python3 -m venv /work/torchvenv
  /work/torchvenv/bin/pip install torch pytorch-fid==0.3.0 numpy scipy
  /work/torchvenv/bin/python tests/make_fid_golden.py [--parity-dir /tmp/fid_parity]

It writes, in tests/golden/ (small, committed):
  torch_weights_small.pth         a state_dict covering the cases the .pth reader must
                                  handle: every common dtype, transposed and sliced
                                  views, storage offsets, shared storages, 0-d and empty
                                  tensors (zip format, as torch.save writes by default);
  torch_weights_small_legacy.pth  the same in the pre-1.6 (non-zip) format;
  torch_weights_small.npz         the values PyTorch holds for each of them.

and in --parity-dir (not committed: the full network's weights are ~95 MB):
  fid_inception_random.pth        pytorch-fid's FID Inception with random weights and
                                  BatchNorm statistics (seeded);
  fid_inception_parity.npz        inputs in [0, 1] of several sizes and pytorch-fid's
                                  pool features and logits for them.
The parity check runs in ganjax's environment:
  GANJAX_FID_PARITY_DIR=/tmp/fid_parity python -m pytest tests/test_inception.py -k parity
"""

import argparse
import collections
import os
from unittest import mock

import numpy as np
import torch
from pytorch_fid import inception as fid_inception

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


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
  """Images in [0, 1] with structure at several scales (not only pixel noise)."""
  coarse = torch.rand(n, 3, max(h // 8, 2), max(w // 8, 2), generator=g)
  fine = torch.rand(n, 3, h, w, generator=g)
  up = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear",
                                       align_corners=False)
  return (0.8 * up + 0.2 * fine).clamp(0, 1)


def randomise(model, g):
  """Random weights and BatchNorm statistics that keep activations at a sane scale.

  BatchNorm scales and shifts are drawn first; the running statistics are then
  measured on a batch of images (a train-mode forward with momentum 1) and
  perturbed a little, so that every BatchNorm (eps 1e-3) matters while the
  features neither vanish nor explode through the 94 convolutions.
  """
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, torch.nn.Conv2d):
        torch.nn.init.kaiming_normal_(module.weight, generator=g)
      elif isinstance(module, torch.nn.BatchNorm2d):
        module.weight.copy_(0.5 + torch.rand(module.num_features, generator=g))
        module.bias.copy_(0.2 * torch.randn(module.num_features, generator=g))
        module.momentum = 1.0
    model.fc.weight.normal_(0, 0.05, generator=g)
    model.fc.bias.normal_(0, 0.1, generator=g)
    model.train()
    model(2 * smooth_images(g, 4, 299, 299) - 1)
    model.eval()
    for module in model.modules():
      if isinstance(module, torch.nn.BatchNorm2d):
        c = module.num_features
        module.running_mean.add_(0.05 * module.running_var.sqrt()
                                 * torch.randn(c, generator=g))
        module.running_var.mul_(0.9 + 0.2 * torch.rand(c, generator=g))
        module.momentum = 0.1


def write_parity(parity_dir: str):
  os.makedirs(parity_dir, exist_ok=True)
  torch.manual_seed(0)
  g = torch.Generator().manual_seed(1)
  model = build_fid_inception()
  randomise(model, g)
  state_dict = model.state_dict()
  torch.save(state_dict, os.path.join(parity_dir, "fid_inception_random.pth"))
  num_params = sum(p.numel() for p in model.parameters())

  # pytorch-fid's feature extractor, exactly as fid_score.py builds it, on these weights.
  with mock.patch.object(fid_inception, "load_state_dict_from_url",
                         lambda *a, **k: state_dict):
    extractor = fid_inception.InceptionV3([3], resize_input=True, normalize_input=True,
                                          use_fid_inception=True).eval()
  outputs = {"num_params": np.array(num_params)}
  sizes = [(32, 32), (64, 48), (299, 299), (320, 300)]  # up-, down- and non-resizing
  with torch.no_grad():
    for h, w in sizes:
      images = smooth_images(g, 2, h, w)  # batches of 2: the forward at 299 is heavy
      pool = extractor(images)[0].flatten(1)
      logits = torch.nn.functional.linear(pool, state_dict["fc.weight"],
                                          state_dict["fc.bias"])
      # The whole torchvision forward (avgpool, dropout in eval, fc) agrees.
      resized = torch.nn.functional.interpolate(images, size=(299, 299), mode="bilinear",
                                                align_corners=False)
      torch.testing.assert_close(model(2 * resized - 1), logits, rtol=1e-4, atol=1e-4)
      name = f"{h}x{w}"
      outputs[f"images_{name}"] = images.permute(0, 2, 3, 1).numpy()  # NHWC in [0, 1]
      outputs[f"pool_{name}"] = pool.numpy()
      outputs[f"logits_{name}"] = logits.numpy()
      print(f"{name}: pool mean {pool.mean():.4f} std {pool.std():.4f},"
            f" logits std {logits.std():.4f}")
  np.savez(os.path.join(parity_dir, "fid_inception_parity.npz"), **outputs)
  print(f"parameters: {num_params:,}; wrote {parity_dir}")


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--golden-dir", default=GOLDEN)
  parser.add_argument("--parity-dir", default="/tmp/fid_parity")
  parser.add_argument("--skip-parity", action="store_true")
  args = parser.parse_args()
  torch.set_num_threads(2)
  write_small(args.golden_dir)
  if not args.skip_parity:
    write_parity(args.parity_dir)


if __name__ == "__main__":
  main()
