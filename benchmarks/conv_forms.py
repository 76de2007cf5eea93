"""Every convolution of the benchmarked networks, in every CPU form, side by side.

  python benchmarks/conv_forms.py [--cases dcgan32,cgan,wgan_gp,dcgan_paper,cyclegan128]
      [--reps R] [--torch] [--no-loop] [--quick] [--json OUT]

This is how the rules of ganjax/cpu_layers.py (`Rules`, which ganjax/backend.py
resolves per CPU type with `backend.cpu_rules`) are checked on a new CPU: run
it there, and read the last column. Where the rules' time is well above the
fastest form's, the rules pick the wrong form on that CPU, and `cpu_rules`
should give that CPU type other rules.

Layers. The layer list is traced, not written down: each case's train step
(the experiment that benchmarks/throughput.py times under the same case name,
with the stock Flax layers and its critic updates unrolled) is traced
abstractly (`jax.eval_shape`) under `flax.linen.intercept_methods`, which
records every `nn.Conv` and `nn.ConvTranspose` call with its fields and its
input's shape. So a layer is listed at every batch the step runs it at (a GAN
critic's real and fake batches apart or concatenated, as the config has it;
CycleGAN's batch 1). Identical layers (the same kernel, strides, padding,
channels, input shape and compiler options, in one network or in several
cases) are timed once; the table names the cases and the layer ("xN": traced
N times in one step, where the body of the critic updates' scan counts once).

What is timed, per layer and form: `jax.jit(jax.value_and_grad(f, argnums=(0, 1)))`
with f(x, w) = sum(layer(x; w) * c) for a fixed random cotangent c, i.e. the
forward pass, the input gradient and the kernel gradient, without the bias;
compiled with the compiler options of the case's backend
(`backend.resolve(...).jit_options()`: the GAN family's, or CycleGAN's XLA
defaults), so that a form is timed as the train step compiles it. The forms:

  native       cpu_layers with Rules(forced="native")
  patches      Rules(forced="patches")
  shifted_sum  Rules(forced="shifted_sum") where it applies: stride-1
               convolutions and the stride-1 phases of a transposed
               convolution ("-" for a strided convolution, where it is patches)
  stock        flax.linen.Conv / ConvTranspose
  rules        what the backend's rules for this CPU pick (the "pick" column
               names it: a form, or for a transposed convolution "phases:"
               and its phases' forms, "overlap_add", or "matmul" for a
               one-pixel input)

Forms that compute the same program (every form of a one-pixel transposed
convolution; the rules and the form they pick) are compiled and timed once
and show the same figure. Every program of a layer is compiled and run once,
then timed in R repetitions (7) in rotating order; a repetition times enough
calls (up to 50) to last about 20 ms and counts their mean; the figure is the
median, in milliseconds. "fastest" is the fastest of native, patches,
shifted_sum and stock; "rules/fastest" is the rules' time over the fastest
form's: about 1.00 where the rules pick well, below 1 where the rules use a
form no forced form gives (overlap_add, a mix of forms over a transposed
convolution's phases).

Loop body (--no-loop skips it): the wgan_gp critic's convolutions as they run
inside the `lax.scan` of a long run of critic updates: a scan of 5 iterations,
each on its own input, computing the value and both gradients and updating
the kernel by its gradient, with Rules(in_loop=True) (the backend's
`loop_layers`) against native and the stock layer in the same scan.

--torch also times torch.nn.functional.conv2d / conv_transpose2d (NCHW,
forward and backward of the same sum; eager, on every core this process may
use) beside the JAX forms.

--quick shrinks the networks (widths 4, one CycleGAN block at 32x32), the GAN
cases' batches (8) and the repetitions (3), to test this script; its figures
say nothing about the rules.

The output starts with the CPU's model and ISA extensions, the core counts
and the versions; on the CPU the host tuning of the entry points
(`backend.tune_host()`) is applied first.
"""

import argparse
import dataclasses
import functools
import json
import math
import os
import platform
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import flax  # noqa: E402
import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jaxlib  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

import throughput  # noqa: E402  (its cases and their configs)
from ganjax import algorithms, backend as backends, cpu_layers, parallel, train  # noqa: E402

DEFAULT_CASES = "dcgan32,cgan,wgan_gp,dcgan_paper,cyclegan128"
CPU_FORMS = ("native", "patches", "shifted_sum")
COLUMNS = CPU_FORMS + ("stock", "rules")
LOOP_CASE = "wgan_gp"
LOOP_ITERATIONS = 5
QUICK = {"batch": 8, "cyclegan_image_size": 32}


@dataclasses.dataclass(frozen=True)
class Layer:
  """One convolution as a step calls it: what its timing depends on."""
  transposed: bool
  kernel: tuple
  strides: tuple
  padding: object  # as the module has it: "SAME", "VALID" or ((lo, hi), (lo, hi))
  cin: int
  cout: int
  shape: tuple  # the input's [B, H, W, C]
  options: tuple  # the case's compiler options, ((name, value), ...)

  def describe(self) -> str:
    kh, kw = self.kernel
    stride = "" if self.strides == (1, 1) else f"/{self.strides[0]}"
    b, h, w, _ = self.shape
    return (f"{'convT' if self.transposed else 'conv'} {kh}x{kw}{stride}"
            f" {self.cin}->{self.cout}, {b} x {h}x{w}")


# ---------------------------------------------------------------------------
# The layers of a case, traced from its train step.


def pair(value, default=1) -> tuple:
  """A module's int-or-sequence field as (h, w)."""
  if value is None:
    value = default
  return (value, value) if isinstance(value, int) else tuple(value)


def hashable(padding):
  """A module's padding as "SAME", "VALID" or ((lo, hi), (lo, hi))."""
  if isinstance(padding, str):
    return padding
  if isinstance(padding, int):
    return ((padding, padding),) * 2
  return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


def network_of(module) -> str:
  root = module
  while isinstance(root.parent, nn.Module):
    root = root.parent
  return type(root).__name__


def trace_layers(config, options: tuple) -> list[tuple[Layer, str]]:
  """(layer, "Network/path") for every convolution call of one train step of `config`,
  in call order (forward passes; a layer called n times appears n times)."""
  algorithm = algorithms.get(config.algorithm)
  algorithm.validate(config)
  n_critic = config.get("n_critic", 1)
  example = train.example_batch(config)
  state = jax.eval_shape(functools.partial(algorithm.init, config), jax.random.PRNGKey(0),
                         example)
  rng = np.random.default_rng(0)
  batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                       throughput.random_batch(config, n_critic, rng))
  # Stock layers (nn.Conv and nn.ConvTranspose), critic updates unrolled so that each one is
  # traced and counted.
  tracing = backends.Backend(platform="cpu", unrolled_d_updates=max(n_critic, 2))
  mesh = parallel.make_mesh(jax.local_devices())
  step = parallel.data_parallel(functools.partial(algorithm.train_step, config,
                                                  backend=tracing), mesh, batch_axis=1)
  found = []

  def record(f, args, kwargs, context):
    module = context.module
    if context.method_name == "__call__" and type(module) in (nn.Conv, nn.ConvTranspose):
      x = args[0]
      layer = Layer(transposed=type(module) is nn.ConvTranspose,
                    kernel=pair(module.kernel_size), strides=pair(module.strides),
                    padding=hashable(module.padding), cin=x.shape[-1], cout=module.features,
                    shape=tuple(x.shape), options=options)
      found.append((layer, f"{network_of(module)}/{'/'.join(module.path)}"))
    return f(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(step, state, batch)
  return found


def case_config(case: str, quick: bool):
  config = throughput.load_config(case, quick, None)
  if quick:
    if config.algorithm == "cyclegan":
      config.image_size = config.load_size = QUICK["cyclegan_image_size"]
    else:
      config.batch_size = QUICK["batch"]
  return config


def collect(cases, quick: bool):
  """{layer: [(case, where, calls per step)]} over the cases, in first-seen order."""
  layers = {}
  for case in cases:
    config = case_config(case, quick)
    options = backends.resolve(jax.local_devices(), config.algorithm).compiler_options
    calls = {}
    for layer, where in trace_layers(config, options):
      calls.setdefault((layer, where), 0)
      calls[(layer, where)] += 1
    for (layer, where), n in calls.items():
      layers.setdefault(layer, []).append((case, where, n))
  return layers


# ---------------------------------------------------------------------------
# What each form computes, and the programs.


def conv_label(rules, kernel_shape, strides, batch) -> str:
  form = rules.form(kernel_shape, strides, batch)
  if form == "native" and tuple(strides) != (1, 1) and rules.phase_input_grad:
    return "native+phase-dx"
  return form


def label(rules, layer: Layer) -> str:
  """What `rules` make of `layer`, mirroring cpu_layers.conv2d and conv_transpose."""
  kernel_shape = layer.kernel + (layer.cin, layer.cout)
  batch = layer.shape[0]
  if not layer.transposed:
    return conv_label(rules, kernel_shape, layer.strides, batch)
  if layer.shape[1:3] == (1, 1):
    return "matmul"
  if rules.transposed_form(layer.cin, layer.cout) == "overlap_add":
    return "overlap_add"
  pads = cpu_layers.transpose_pads(layer.padding, layer.kernel, layer.strides)
  plans = [cpu_layers._phases(size, k, s, *pad)[1]  # pylint: disable=protected-access
           for size, k, s, pad in zip(layer.shape[1:3], layer.kernel, layer.strides, pads)]
  if layer.strides == (1, 1) or None in plans:
    return "lax.conv_transpose"
  forms = set()
  for first_h, _, _ in plans[0]:
    for first_w, _, _ in plans[1]:
      taps = (len(range(first_h, layer.kernel[0], layer.strides[0])),
              len(range(first_w, layer.kernel[1], layer.strides[1])))
      forms.add(conv_label(rules, taps + (layer.cin, layer.cout), (1, 1), batch))
  return "phases:" + "+".join(sorted(forms))


def module(layer: Layer, rules=None) -> nn.Module:
  """The layer without its bias: cpu_layers' under `rules`, else the stock Flax one."""
  fields = dict(features=layer.cout, kernel_size=layer.kernel, strides=layer.strides,
                padding=layer.padding, use_bias=False)
  if rules is None:
    return (nn.ConvTranspose if layer.transposed else nn.Conv)(**fields)
  return (cpu_layers.ConvTranspose if layer.transposed else cpu_layers.Conv)(
      rules=rules, **fields)


def loss_of(m: nn.Module):
  def loss(x, w, cotangent):
    return jnp.sum(m.apply({"params": {"kernel": w}}, x) * cotangent)
  return loss


def straight(m: nn.Module, options: tuple):
  """value and both gradients of sum(layer(x; w) * c), jitted."""
  return jax.jit(jax.value_and_grad(loss_of(m), argnums=(0, 1)),
                 compiler_options=dict(options) or None)


def looped(m: nn.Module, options: tuple):
  """LOOP_ITERATIONS of: value and both gradients, kernel -= 1e-4 * its gradient, in a
  lax.scan over the iterations' inputs xs [n, B, H, W, C]."""
  grad = jax.value_and_grad(loss_of(m), argnums=(0, 1))

  def run(xs, w, cotangent):
    def body(w, x):
      value, (dx, dw) = grad(x, w, cotangent)
      return w - 1e-4 * dw, value + jnp.sum(dx)
    return lax.scan(body, w, xs)
  return jax.jit(run, compiler_options=dict(options) or None)


def arguments(layer: Layer, stacked: int = 0):
  rng = np.random.default_rng(0)
  shape = layer.shape if not stacked else (stacked,) + layer.shape
  x = jnp.asarray(rng.standard_normal(shape, np.float32))
  fan_in = layer.kernel[0] * layer.kernel[1] * layer.cin
  w = jnp.asarray(rng.standard_normal(layer.kernel + (layer.cin, layer.cout), np.float32)
                  / math.sqrt(fan_in))
  out = jax.eval_shape(module(layer).apply, {"params": {"kernel": w}}, x[0] if stacked else x)
  cotangent = jnp.asarray(rng.standard_normal(out.shape, np.float32))
  return x, w, cotangent


# ---------------------------------------------------------------------------
# PyTorch


def torch_program(layer: Layer):
  """forward and backward of sum(layer(x; w) * c) in torch.nn.functional, or None where
  PyTorch has no such padding."""
  import torch  # pylint: disable=import-outside-toplevel
  from torch.nn import functional as F  # pylint: disable=import-outside-toplevel
  b, h, w_, cin = layer.shape
  (kh, kw), (sh, sw) = layer.kernel, layer.strides
  x = torch.randn(b, cin, h, w_, requires_grad=True)
  if layer.transposed:
    pads = cpu_layers.transpose_pads(layer.padding, layer.kernel, layer.strides)
    padding = [k - 1 - lo for (lo, _), k in zip(pads, layer.kernel)]
    extra = [hi - lo for lo, hi in pads]
    if min(padding) < 0 or not all(0 <= e < max(s, 1) for e, s in zip(extra, layer.strides)):
      return None
    weight = torch.randn(cin, layer.cout, kh, kw, requires_grad=True)
    forward = functools.partial(F.conv_transpose2d, weight=weight, stride=(sh, sw),
                                padding=tuple(padding), output_padding=tuple(extra))
  else:
    pads = layer.padding
    if isinstance(pads, str):
      pads = lax.padtype_to_pads(layer.shape[1:3], layer.kernel, layer.strides, pads)
    (lo_h, hi_h), (lo_w, hi_w) = pads
    weight = torch.randn(layer.cout, cin, kh, kw, requires_grad=True)
    if lo_h == hi_h and lo_w == hi_w:
      forward = functools.partial(F.conv2d, weight=weight, stride=(sh, sw), padding=(lo_h, lo_w))
    else:
      forward = lambda x: F.conv2d(F.pad(x, (lo_w, hi_w, lo_h, hi_h)), weight,  # noqa: E731
                                   stride=(sh, sw))
  with torch.no_grad():
    cotangent = torch.randn_like(forward(x))

  def run():
    x.grad = weight.grad = None
    (forward(x) * cotangent).sum().backward()
  return run


# ---------------------------------------------------------------------------
# Timing


def block(out):
  jax.block_until_ready(out)


def timed_runs(programs: dict, reps: int, target_s: float) -> dict:
  """{name: median ms per call}: every program run once, then `reps` rotating
  repetitions of `calls` calls each (enough for `target_s` per repetition)."""
  calls = {}
  for name, run in programs.items():
    run()
    t = time.perf_counter()
    run()
    calls[name] = max(1, min(50, int(target_s / max(time.perf_counter() - t, 1e-6))))
  times = {name: [] for name in programs}
  order = list(programs)
  for rep in range(reps):
    for name in order[rep % len(order):] + order[:rep % len(order)]:
      t = time.perf_counter()
      for _ in range(calls[name]):
        programs[name]()
      times[name].append((time.perf_counter() - t) / calls[name])
  return {name: 1000 * statistics.median(ts) for name, ts in times.items()}


def jax_runner(fn, args):
  return lambda: block(fn(*args))


def time_layer(layer: Layer, rules, args) -> dict:
  """{column: ms} and {column: what it computes} for one layer."""
  labels = {form: label(cpu_layers.Rules(forced=form), layer) for form in CPU_FORMS}
  labels["rules"] = label(rules, layer)
  if not layer.transposed and layer.strides != (1, 1):
    labels.pop("shifted_sum")  # it is patches there
  jx = arguments(layer)
  programs, column_of = {}, {}
  for column, what in labels.items():
    if what not in programs:  # one program per distinct computation
      r = rules if column == "rules" else cpu_layers.Rules(forced=column)
      programs[what] = jax_runner(straight(module(layer, r), layer.options), jx)
    column_of[column] = what
  programs["stock"] = jax_runner(straight(module(layer), layer.options), jx)
  column_of["stock"] = "stock"
  if args.torch:
    run = torch_program(layer)
    if run is not None:
      programs["torch"] = run
      column_of["torch"] = "torch"
  ms = timed_runs(programs, args.reps, args.target_s)
  return {c: ms[w] for c, w in column_of.items()}, labels


def time_loop_layer(layer: Layer, rules, args) -> dict:
  xs, w, cotangent = arguments(layer, stacked=LOOP_ITERATIONS)
  forms = {"in_loop": dataclasses.replace(rules, in_loop=True),
           "native": cpu_layers.Rules(forced="native"), "stock": None}
  programs = {name: jax_runner(looped(module(layer, r), layer.options), (xs, w, cotangent))
              for name, r in forms.items()}
  return timed_runs(programs, args.reps, args.target_s)


# ---------------------------------------------------------------------------
# Output


def fmt(x) -> str:
  return "-" if x is None else f"{x:.3g}"


def where_text(uses) -> str:
  """"case xN, case: Network/layer; ...": the places of one layer, with the cases that
  have it there; many same-shaped layers of one case (a ResNet's blocks) as one pattern."""
  per_case = {}
  for case, where, n in uses:
    per_case.setdefault(case, []).append((where, n))
  by_place = {}
  for case, places in per_case.items():
    if len(places) > 2:
      patterns = sorted({re.sub(r"_\d+", "_*", w) for w, _ in places})
      places = [(f"{', '.join(patterns)} ({len(places)} layers)", max(n for _, n in places))]
    for where, n in places:
      by_place.setdefault(where, []).append(case + (f" x{n}" if n > 1 else ""))
  return "; ".join(f"{', '.join(cs)}: {w}" for w, cs in by_place.items())


def environment(tuned: dict) -> dict:
  info = backends.cpu_info()
  env = {"cpu": info.describe(), "cpu_count": os.cpu_count(), "cores": throughput.cores(),
         "jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
         "python": platform.python_version(), "platform": jax.default_backend(),
         "device": jax.local_devices()[0].device_kind, "host_tuning": tuned,
         "rules": repr(backends.cpu_rules(info)), "loadavg_start": os.getloadavg(),
         "xla_flags": os.environ.get("XLA_FLAGS", "")}
  try:
    import torch  # pylint: disable=import-outside-toplevel
    env["torch"] = torch.__version__
  except ImportError:
    env["torch"] = None
  return env


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cases", default=DEFAULT_CASES,
                      help=f"comma-separated, of: {', '.join(throughput.CASES)}")
  parser.add_argument("--reps", type=int, default=None, help="timed repetitions (median)")
  parser.add_argument("--torch", action="store_true", help="also time torch.nn.functional")
  parser.add_argument("--no-loop", action="store_true", help="skip the loop-body table")
  parser.add_argument("--quick", action="store_true", help="tiny networks and batches")
  parser.add_argument("--json", default=None)
  args = parser.parse_args(argv)
  args.reps = args.reps or (3 if args.quick else 7)
  args.target_s = 0.002 if args.quick else 0.02
  cases = [c for c in args.cases.split(",") if c]
  for c in cases:
    if c not in throughput.CASES:
      parser.error(f"unknown case {c!r}; cases: {', '.join(throughput.CASES)}")

  tuned = backends.tune_host_if_cpu(jax.local_devices())
  if args.torch:
    import torch  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(throughput.cores())
  env = environment(tuned)
  rules = backends.cpu_rules(backends.cpu_info())
  print(f"CPU: {env['cpu']}; os.cpu_count() {env['cpu_count']}, {env['cores']} usable by this"
        f" process; load average {env['loadavg_start']}")
  print(f"JAX {env['jax']}, jaxlib {env['jaxlib']}, Flax {env['flax']}, PyTorch {env['torch']},"
        f" Python {env['python']} on {env['platform']}; host tuning {tuned or 'none'};"
        f" XLA_FLAGS={env['xla_flags']!r}")
  print(f"rules: {env['rules']}")
  layers = collect(cases, args.quick)
  groups = {}
  for layer, uses in layers.items():
    groups.setdefault(layer.options, set()).update(c for c, _, _ in uses)
  for options, group in groups.items():
    print("compiler options of " + ", ".join(c for c in cases if c in group) + ": "
          + (", ".join(f"{k}={v}" for k, v in options) or "none (XLA's defaults)"))
  print(f"{len(layers)} distinct convolutions in {', '.join(cases)}; value and both gradients,"
        f" median of {args.reps} repetitions, ms", flush=True)

  head = ["layer", "where (case xN: network/layer)"] + list(COLUMNS)
  head += ["torch"] if args.torch else []
  head += ["fastest", "rules pick", "rules/fastest"]
  rows, lines = [], []
  for layer, uses in layers.items():
    ms, labels = time_layer(layer, rules, args)
    candidates = {c: ms[c] for c in CPU_FORMS + ("stock",) if c in ms}
    fastest = min(candidates, key=candidates.get)
    row = {"layer": layer.describe(), "uses": uses, "options": dict(layer.options), "ms": ms,
           "labels": labels, "fastest": fastest, "rules_over_fastest": ms["rules"] / ms[fastest]}
    rows.append(row)
    cells = [layer.describe(), where_text(uses)] + [fmt(ms.get(c)) for c in COLUMNS]
    cells += [fmt(ms.get("torch"))] if args.torch else []
    cells += [fastest, labels["rules"], f"{row['rules_over_fastest']:.2f}"]
    lines.append("| " + " | ".join(cells) + " |")
    print(f"  {cells[0]}: " + ", ".join(f"{c} {fmt(ms.get(c))}" for c in ms)
          + f"; rules pick {labels['rules']}", flush=True)
  print("\n| " + " | ".join(head) + " |")
  print("|" + "---|" * len(head))
  print("\n".join(lines))
  worst = max(rows, key=lambda r: r["rules_over_fastest"]) if rows else None
  if worst:
    print(f"largest rules/fastest: {worst['rules_over_fastest']:.2f} ({worst['layer']},"
          f" fastest {worst['fastest']}, rules pick {worst['labels']['rules']})")

  loop_rows = []
  if not args.no_loop and LOOP_CASE in cases:
    critic = [layer for layer, uses in layers.items() if not layer.transposed
              and any(c == LOOP_CASE for c, _, _ in uses)]
    print(f"\nLoop body: {LOOP_CASE}'s critic convolutions in a lax.scan of"
          f" {LOOP_ITERATIONS} iterations (value, both gradients, kernel update), ms per scan;"
          f" in_loop = rules with in_loop=True (patches), what the backend's loop layers use")
    print("| layer | in_loop | native | stock | fastest | in_loop/fastest |")
    print("|---|---|---|---|---|---|")
    for layer in critic:
      ms = time_loop_layer(layer, rules, args)
      fastest = min(ms, key=ms.get)
      loop_rows.append({"layer": layer.describe(), "ms": ms, "fastest": fastest,
                        "in_loop_over_fastest": ms["in_loop"] / ms[fastest]})
      print(f"| {layer.describe()} | {fmt(ms['in_loop'])} | {fmt(ms['native'])} |"
            f" {fmt(ms['stock'])} | {fastest} | {ms['in_loop'] / ms[fastest]:.2f} |", flush=True)
  env["loadavg_end"] = os.getloadavg()
  print(f"load average at the end: {env['loadavg_end']}")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"environment": env, "args": vars(args), "layers": rows, "loop": loop_rows},
                f, indent=2)
      f.write("\n")


if __name__ == "__main__":
  main()
