"""CycleGAN-128's networks, ganjax against PyTorch eager, on the CPU.

  python benchmarks/cyclegan_parts.py            # networks: forward and gradient
  python benchmarks/cyclegan_parts.py --layers   # each convolution in every form
  python benchmarks/cyclegan_parts.py --quick    # a self-test: 32x32, width 8, one block

Networks: the 6-block ResNet generator and the PatchGAN discriminator at
128x128, batch 1, forward and the gradient of sum(output^2) with respect to
the parameters and the input, jitted, against benchmarks/torch_reference.py's
modules. ganjax's networks are timed twice: built with the layers of the
backend resolved for CycleGAN on this machine and compiled with its options
(ganjax/backend.py, as the train step is), and with the stock Flax layers and
XLA's defaults. Median of 3 timings after a warm-up, in milliseconds; the
runners are timed one after the other, so compare figures from the same run
only. On the CPU the entry points' host tuning (`backend.tune_host()`) is
applied first.

--layers runs benchmarks/conv_forms.py for cyclegan128 with PyTorch beside it:
every convolution of the step, forward and both gradients, in each CPU form,
the stock layer, the backend's rules and torch.nn.functional.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ganjax import backend as backends  # noqa: E402
from ganjax.models import STOCK, cyclegan  # noqa: E402


def median_ms(f, n: int) -> float:
  f()
  times = []
  for _ in range(n):
    t = time.perf_counter()
    f()
    times.append(time.perf_counter() - t)
  return float(np.median(times)) * 1000


def networks(backend: backends.Backend, size: int = 128, width: int = 64, blocks: int = 6):
  import torch  # pylint: disable=import-outside-toplevel
  import torch_reference  # pylint: disable=import-outside-toplevel
  x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
  xj = jnp.asarray(x)
  xt = torch.tensor(x).permute(0, 3, 1, 2).contiguous().requires_grad_(True)
  builds = {"ganjax": (backend.layers, backend.jit_options()), "stock Flax": (STOCK, None)}
  for name, make, reference in [
      ("generator",
       lambda layers: cyclegan.ResnetGenerator(channels=3, width=width, num_blocks=blocks,
                                               conv=layers.conv,
                                               conv_transpose=layers.conv_transpose),
       torch_reference.ResnetGenerator(3, width, blocks)),
      ("discriminator", lambda layers: cyclegan.PatchDiscriminator(width=width, conv=layers.conv),
       torch_reference.PatchDiscriminator(3, width, 3))]:
    figures = []
    for label, (layers, options) in builds.items():
      module = make(layers)
      variables = module.init(jax.random.PRNGKey(0), xj)
      forward = jax.jit(module.apply, compiler_options=options)
      grad = jax.jit(jax.grad(lambda v, x, m=module: jnp.sum(m.apply(v, x) ** 2),
                              argnums=(0, 1)), compiler_options=options)
      figures.append(
          f"{label} forward"
          f" {median_ms(lambda: jax.block_until_ready(forward(variables, xj)), 3):.1f} ms,"
          f" gradient {median_ms(lambda: jax.block_until_ready(grad(variables, xj)), 3):.1f} ms")

    def torch_forward(reference=reference):
      with torch.no_grad():
        reference(xt)

    def torch_grad(reference=reference):
      (reference(xt) ** 2).sum().backward()

    figures.append(f"PyTorch forward {median_ms(torch_forward, 3):.1f} ms, gradient"
                   f" {median_ms(torch_grad, 3):.1f} ms")
    print(f"{name}: " + "; ".join(figures), flush=True)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--layers", action="store_true",
                      help="time each convolution instead (benchmarks/conv_forms.py)")
  parser.add_argument("--quick", action="store_true",
                      help="32x32 images, width 8, one block (with --layers: conv_forms --quick)")
  args = parser.parse_args()
  if args.layers:
    import conv_forms  # pylint: disable=import-outside-toplevel
    conv_forms.main(["--cases", "cyclegan128", "--torch", "--no-loop"]
                    + (["--quick"] if args.quick else []))
    return
  import torch  # pylint: disable=import-outside-toplevel
  import throughput  # pylint: disable=import-outside-toplevel
  tuned = backends.tune_host_if_cpu(jax.local_devices())
  torch.set_num_threads(throughput.cores())
  backend = backends.resolve(jax.local_devices(), "cyclegan")
  print(f"JAX {jax.__version__} ({jax.default_backend()}), PyTorch {torch.__version__};"
        f" CPU {backends.cpu_info().describe()}; backend {backend.describe()};"
        f" host tuning {tuned or 'none'}; XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  networks(backend, *((32, 8, 1) if args.quick else ()))


if __name__ == "__main__":
  main()
