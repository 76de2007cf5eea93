#!/usr/bin/env bash
# One prepared GPU check, under 8 minutes: device, versions and the resolved
# backend (on a GPU: the stock Flax layers, the critic updates in a loop, XLA's
# defaults), then ganjax against PyTorch eager and torch.compile (images/s, side
# by side in one process) for
#   DCGAN-64 at batch 128, WGAN-GP-64 at batch 64, CycleGAN-256 at batch 1 and 8,
# in float32 and bfloat16; in float32 also ganjax with ganjax/cpu_layers.py's
# forms forced native (throughput.py --custom-convs: the phase form of the
# transposed convolution) against the stock layers on the same device; and the
# 2D ring with 8 seeds vmapped against 8 seeds one after the other (target: at
# least 5x). Only in-memory data is used.
#
#   bash benchmarks/gpu_check.sh            # on the GPU machine
#   bash benchmarks/gpu_check.sh --small    # a dry run on a CPU: tiny networks
#
# Results (JSON) go to $OUT if set, else to /tmp/ganjax_gpu_check.
set -u
cd "$(dirname "$0")/.."
SMALL=""
STEPS="--steps 10 --reps 3"
RING_STEPS="--steps 200 --reps 3"
RING_LIMIT=55
SCALE=1  # the time limits below are for the GPU; a CPU dry run gets SCALE times as long
if [ "${1:-}" = "--small" ]; then
  SMALL="--small"; STEPS="--steps 2 --reps 2"; RING_STEPS="--steps 5 --reps 1"; SCALE=3
fi
RING_LIMIT=$(( RING_LIMIT * SCALE ))
RESULTS="${OUT:-/tmp/ganjax_gpu_check}"
mkdir -p "$RESULTS"
START=$(date +%s)

echo "== device"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
else
  echo "no nvidia-smi: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') (CPU)"
fi
python - <<'PY'
import jax
print("jax", jax.__version__, jax.default_backend(), jax.devices())
from ganjax import backend
print("CPU:", backend.cpu_info().describe())
print("backend:", backend.resolve(jax.local_devices(), "gan").describe())
try:
  import torch
  print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu",
        torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except ImportError:
  print("torch not installed: pip install -r benchmarks/requirements.txt")
PY

# Each run is bounded so that the whole script stays under 8 minutes.
run() {  # run <seconds on the GPU> <name> <throughput.py args...>
  local limit=$(( $1 * SCALE )) name=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" python benchmarks/throughput.py $SMALL $STEPS \
      --json "$RESULTS/$name.json" "$@" 2>&1 | grep -v '^W[0-9]\{4\}'
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ]; then echo "$name: stopped after ${limit}s"; fi
}
# --small (a CPU dry run) times CycleGAN against PyTorch eager only: torch.compile of
# the ResNet generator alone takes minutes of compiling on a small CPU.
CYCLE_TORCH="--torch eager,compile"
if [ -n "$SMALL" ]; then CYCLE_TORCH="--torch eager"; fi
run 95 gan_float32 --cases dcgan64@128,wgan_gp64@64 --dtype float32 --custom-convs
run 125 cyclegan_float32 --cases cyclegan256@1,cyclegan256@8 --dtype float32 --custom-convs \
    $CYCLE_TORCH
run 70 gan_bfloat16 --cases dcgan64@128,wgan_gp64@64 --dtype bfloat16
run 85 cyclegan_bfloat16 --cases cyclegan256@1,cyclegan256@8 --dtype bfloat16 $CYCLE_TORCH

echo "== 2D ring, 8 seeds vmapped against 8 seeds one after the other (limit ${RING_LIMIT}s; target: at least 5x)"
timeout "$RING_LIMIT" python benchmarks/seeds_vmap.py --config experiments/toy_ring.py \
    --seeds 8 $RING_STEPS 2>&1 | grep -v '^W[0-9]\{4\}'
if [ "${PIPESTATUS[0]}" = 124 ]; then echo "ring seeds: stopped after ${RING_LIMIT}s"; fi
echo "== done in $(( $(date +%s) - START ))s; JSON in $RESULTS"
