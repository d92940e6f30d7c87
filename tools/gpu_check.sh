#!/usr/bin/env bash
# A short prepared run on a lent CUDA machine, no training: GPU tests (TensorRT ones skip without
# TensorRT) and the GPU benchmarks of the bundled model. Writes logs to $OUT.
#   run: bash tools/gpu_check.sh        (the lent machine has torch + CUDA, no PyAV, no TensorRT)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py tests/test_engine.py 2>&1 | tail -20 | tee "$OUT/gpu_tests.log"
python3 tools/gpu_bench.py realtime_color/model/bundled/default.safetensors 2>&1 | tee "$OUT/bench.jsonl"
