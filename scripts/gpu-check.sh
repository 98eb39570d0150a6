#!/usr/bin/env bash
# One prepared GPU check, for a machine with an NVIDIA GPU (fits in 10 minutes on a fresh one):
#   1. builds the GPU backend from PyPI wheels (bash scripts/build-native-backend.sh --gpu);
#   2. trains the recipe's model (VGG16 128x128, block5 + head, batch 128) for STEPS steps with
#      exp on tensorflow-gpu, then inference: img/s and GPU memory (bench/gpu-check.ts);
#   3. the same with PyTorch on CUDA from its PyPI wheel, when it installs (bench/torch_vgg16.py).
# Prints both and exits 0 (a measurement, not a test); a step that fails says so and the rest runs.
#   STEPS=200 INFER=50 bash scripts/gpu-check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
STEPS="${STEPS:-200}"; INFER="${INFER:-50}"
CACHE="${EXP_NATIVE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exp/native}"
say() { printf '[gpu-check] %s (t=%ss)\n' "$*" "$SECONDS"; }

nvidia-smi -L || say "nvidia-smi found no GPU: the numbers below are the CPU's"
[ -d node_modules ] || { say "npm ci"; EXP_NATIVE=0 npm ci --no-audit --no-fund >/dev/null; }
say "building the GPU backend"
timeout 300 bash scripts/build-native-backend.sh --gpu || say "GPU build FAILED"
node bin/exp.js backends || true

say "exp: ${STEPS} training steps + ${INFER} inference batches"
timeout 240 node --import tsx bench/gpu-check.ts --steps "$STEPS" --infer "$INFER" || say "exp check FAILED"

say "PyTorch with CUDA (PyPI wheel)"
VENV="$CACHE/torch-venv"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$VENV" && timeout 240 "$VENV/bin/pip" install --quiet torch || say "torch did not install"
fi
if "$VENV/bin/python" -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
  timeout 180 "$VENV/bin/python" bench/torch_vgg16.py --device cuda --batch 128 --size 128 --train-steps "$STEPS" --infer-batches "$INFER" || say "PyTorch check FAILED"
else
  say "PyTorch sees no CUDA device: skipped"
fi
say "done"
