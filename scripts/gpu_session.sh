#!/usr/bin/env bash
# One prepared run on a lent CUDA machine: GPU tests, the default model's training (three chroma
# weights side by side, the ablation of the anti-sepia term), then GPU benchmarks.
# Expects the training photos in .gpu/data (a copy of ../shared/data/train) and $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
mkdir -p "$OUT/logs"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/logs/gpu.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py 2>&1 | tail -15 | tee "$OUT/logs/gpu_tests.log"
MIN=${TRAIN_MINUTES:-5}
for w in 0.5 0 0.25; do
  OMP_NUM_THREADS=4 python3 -m realtime_color.cli train .gpu/data --out "/tmp/model_cw$w.safetensors" \
    --backbone none --epochs 400 --repeat 32 -b 32 --crop 224 --lr 3e-4 --max-minutes "$MIN" \
    --chroma-weight "$w" > "$OUT/logs/train_cw$w.log" 2>&1 &
done
wait
python3 scripts/pick_best.py
python3 scripts/gpu_bench.py /tmp/best.safetensors 2>&1 | tee "$OUT/logs/bench.jsonl"
tar -C "$OUT" -cf "$OUT/logs.tar" logs && rm -rf "$OUT/logs"
split -b 15M /tmp/best.safetensors "$OUT/best.part_"
ls -la "$OUT"
