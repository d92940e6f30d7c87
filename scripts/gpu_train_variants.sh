#!/usr/bin/env bash
# Train several default-model variants side by side on one lent GPU and bring back the best
# (highest validation PSNR at colourfulness >= 12). Expects .gpu/data and $OUT.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
mkdir -p "$OUT/logs"
MIN=${TRAIN_MINUTES:-4.5}
run() {  # name, extra args...
  local name=$1; shift
  OMP_NUM_THREADS=3 python3 -m realtime_color.cli train .gpu/data --out "/tmp/model_$name.safetensors" \
    --backbone none --epochs 400 --repeat 32 -b 32 --crop 224 --max-minutes "$MIN" "$@" \
    > "$OUT/logs/train_$name.log" 2>&1 &
}
run A --loss mse --chroma-weight 0
run B --loss mse --chroma-weight 0.1
run C --loss mse --chroma-weight 0 --lr 1e-4
run D --loss mse --chroma-weight 0 --min-scale 0.05 --crop 160 --dropout 0.3
wait
python3 scripts/pick_best.py
tar -C "$OUT" -cf "$OUT/logs.tar" logs && rm -rf "$OUT/logs"
split -b 15M /tmp/best.safetensors "$OUT/best.part_"
ls -la "$OUT"
