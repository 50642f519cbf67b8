#!/usr/bin/env bash
# One lent-GPU session's whole device check, prepared here and run there once.
#
# Here (a CPU machine with the project's venv):
#     bench/gpu_session.sh wheels        # layerctl, diffusers, importlib_metadata -> .whl/
# There (the device tool, carry [".whl"], timeout_s ≈ 540):
#     bash bench/gpu_session.sh run 420  # seconds the benchmark may use
#     bash bench/gpu_session.sh gguf 300 # a second call: GGUF resident vs bf16 streamed
#
# "run" installs the wheels beside the machine's own torch/transformers (no network
# there), runs bench/gpu_fullscale.py — the 640 bucket against diffusers' pipeline,
# --compile (and fp8 under it), the approximate modes, --offload auto under 24 and
# 16 GB caps with the full-size text encoder — then `layerctl doctor` from outside the
# repository, so the installed wheel is what runs. "gguf" runs bench/gpu_gguf.py: a
# random full-size transformer quantized to Q4_0 there, seconds per step and peak memory
# at 640 under a 16 GB cap, resident, against bf16 with group offloading. Everything
# lands in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
wheels)
  rm -rf .whl && mkdir .whl
  python -m pip download -q --no-deps -d .whl diffusers==0.42.1 importlib_metadata gguf
  python -m pip wheel -q --no-deps --no-build-isolation -w .whl .
  ls .whl
  ;;
run | gguf)
  budget="${2:-420}"
  out="${OUT:?run this through the device tool: it sets OUT}"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
  if [ "$1" = gguf ]; then
    timeout "$budget" python3 bench/gpu_gguf.py --type Q4_0 --cap-gb 16 \
      --json "$out/gguf.json" 2>"$out/gguf.log" || true
    tail -n 20 "$out/gguf.log"
    exit 0
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.csv" || true
  timeout $((budget + 60)) python3 bench/gpu_fullscale.py --buckets 640:6:1 \
    --warmup-steps 1 --compile --speed --offload-check --offload-caps 24,16 \
    --budget-s "$budget" --json "$out/result.json" 2>"$out/bench.log" || true
  (cd /tmp && python3 -m layerctl doctor --json >"$out/doctor.json" 2>>"$out/bench.log") || true
  tail -n 40 "$out/bench.log"
  ;;
*)
  echo "usage: bench/gpu_session.sh wheels | run [budget-seconds] | gguf [budget-seconds]" >&2
  exit 2
  ;;
esac
