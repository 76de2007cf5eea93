"""CycleGAN-128's networks and convolutions, ganjax against PyTorch eager, on the CPU.

  python benchmarks/cyclegan_parts.py            # networks: forward and gradient
  python benchmarks/cyclegan_parts.py --layers   # each generator convolution in every form

Networks: the 6-block ResNet generator and the PatchGAN discriminator at
128x128, batch 1, forward and the gradient of sum(output^2) with respect to
the parameters and the input, jitted, against benchmarks/torch_reference.py's
modules. Layers: the forward pass and both gradients of each kind of
convolution in the generator, in each of models/layers.py's CPU forms, against
torch.nn.functional. Median of 3 (networks) or 5 (layers) timings after a
warm-up, in milliseconds; the two frameworks are timed one after the other, so
compare figures from the same run only. Set GANJAX_XLA_DEFAULTS=0 to time
without ganjax's XLA flags (ganjax/xla_defaults.py).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ganjax  # noqa: E402,F401  (its XLA flags, before JAX starts)
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_reference  # noqa: E402
from ganjax.models import cyclegan, layers  # noqa: E402


def median_ms(f, n: int) -> float:
  f()
  times = []
  for _ in range(n):
    t = time.perf_counter()
    f()
    times.append(time.perf_counter() - t)
  return float(np.median(times)) * 1000


def networks():
  x = np.random.default_rng(0).uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
  xj = jnp.asarray(x)
  xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
  for name, module, reference in [
      ("generator", cyclegan.ResnetGenerator(channels=3, width=64, num_blocks=6),
       torch_reference.ResnetGenerator(3, 64, 6)),
      ("discriminator", cyclegan.PatchDiscriminator(width=64),
       torch_reference.PatchDiscriminator(3, 64, 3))]:
    variables = module.init(jax.random.PRNGKey(0), xj)
    forward = jax.jit(module.apply)
    grad = jax.jit(jax.grad(lambda v, x, m=module: jnp.sum(m.apply(v, x) ** 2), argnums=(0, 1)))

    def torch_forward(reference=reference):
      with torch.no_grad():
        reference(xt)

    def torch_grad(reference=reference):
      (reference(xt) ** 2).sum().backward()

    print(f"{name}: forward ganjax {median_ms(lambda: jax.block_until_ready(forward(variables, xj)), 3):.1f}"
          f" ms, PyTorch {median_ms(torch_forward, 3):.1f} ms; gradient ganjax"
          f" {median_ms(lambda: jax.block_until_ready(grad(variables, xj)), 3):.1f} ms,"
          f" PyTorch {median_ms(torch_grad, 3):.1f} ms", flush=True)


# name: (in, out, kernel, stride, input side, padding or None for the 2x transposed conv)
LAYERS = {"7x7 3->64 @128": (3, 64, 7, 1, 134, 0), "3x3/2 64->128 @128": (64, 128, 3, 2, 128, 1),
          "3x3/2 128->256 @64": (128, 256, 3, 2, 64, 1), "3x3 256->256 @32": (256, 256, 3, 1, 34, 0),
          "up 256->128 @32": (256, 128, 3, 2, 32, None), "up 128->64 @64": (128, 64, 3, 2, 64, None),
          "7x7 64->3 @128": (64, 3, 7, 1, 134, 0)}


def convolutions():
  rng = np.random.default_rng(0)
  for name, (cin, cout, k, s, side, pad) in LAYERS.items():
    x = jnp.asarray(rng.standard_normal((1, side, side, cin), np.float32))
    w = jnp.asarray(0.05 * rng.standard_normal((k, k, cin, cout), np.float32))
    if pad is None:
      op = lambda x, w: layers.conv_transpose(x, w, (2, 2), ((1, 2), (1, 2)))  # noqa: E731
    else:
      op = lambda x, w, s=s, p=pad: layers.conv2d(x, w, (s, s), ((p, p), (p, p)))  # noqa: E731
    times = {}
    for form in layers.FORMS:
      with layers.conv_form(form):
        grad = jax.jit(jax.grad(lambda x, w, op=op: jnp.sum(op(x, w) ** 2), argnums=(0, 1)))
        jax.block_until_ready(grad(x, w))
      times[form] = median_ms(lambda: jax.block_until_ready(grad(x, w)), 5)
    xt = torch.randn(1, cin, side, side, requires_grad=True)
    if pad is None:
      wt = torch.randn(cin, cout, k, k, requires_grad=True)
      run = lambda: (torch.nn.functional.conv_transpose2d(  # noqa: E731
          xt, wt, stride=2, padding=1, output_padding=1) ** 2).sum().backward()
    else:
      wt = torch.randn(cout, cin, k, k, requires_grad=True)
      run = lambda s=s, p=pad: (torch.nn.functional.conv2d(  # noqa: E731
          xt, wt, stride=s, padding=p) ** 2).sum().backward()
    times["PyTorch"] = median_ms(run, 5)
    print(f"{name}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in times.items()), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layers", action="store_true", help="time each convolution instead")
  args = parser.parse_args()
  torch.set_num_threads(2)
  print(f"JAX {jax.__version__} ({jax.default_backend()}), PyTorch {torch.__version__};"
        f" XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  convolutions() if args.layers else networks()


if __name__ == "__main__":
  main()
