#!/usr/bin/env bash
# One prepared run on a lent CUDA machine for the open quality lever: the whole encoder fine-tuned
# for longer than this project's 2-core CPU allows. From the bundled default, SIBLINGS runs with
# other crops (--seed 1..N) on one validation split (--split-seed 0) train side by side on the GPU
# for TRAIN_MINUTES each (each keeps its best epoch); their weight average follows; every model is
# then calibrated by the CIEDE2000 rule (rtcolor calibrate --rule ciede). Nothing is
# adopted here: the sweeps come back in $OUT, the models as 15 MB parts (cat PARTS > m.safetensors),
# and the choice is made by a rule written before the run, as docs/experiments/ records.
# On 2026-11-28 this recipe ran on a faster CPU (two 20-minute siblings from the default, five epochs
# each): validation peaked after one to three epochs and their soup did not beat the default
# (docs/experiments/2026-11-28-default-soup-c6.md, "Longer fine-tunes"). A GPU would run it faster, not better, on the same data.
#
# Before the call, on the CPU machine (the folders travel with `carry`):
#   mkdir -p .gpu && cp -r ../shared/data/train .gpu/data
#   python tools/fetch_training_extras.py extras/ && cp -r extras/paste .gpu/paste
#   python tools/make_val_set.py ../shared/data/train extras/paste .gpu/valset
# run: TRAIN_MINUTES=6 SIBLINGS=3 bash tools/gpu_finetune.sh     (about 3 + TRAIN_MINUTES minutes)
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
: "${OUT:?set OUT to the folder that comes back}"
MIN=${TRAIN_MINUTES:-6}
N=${SIBLINGS:-3}
DEVICE=${DEVICE:-cuda}
DATA=${GPU_DIR:-.gpu}
mkdir -p "$OUT/logs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/logs/gpu.txt"
for s in $(seq 1 "$N"); do
  OMP_NUM_THREADS=4 python3 -m realtime_color.cli train "$DATA/data" --init default --out "/tmp/ft$s.safetensors" \
    --freeze-stages 0 --freeze-epochs 0 --paste "$DATA/paste" --repeat "${REPEAT:-48}" -b 16 --crop 128 \
    --seed "$s" --split-seed 0 --lr 5e-5 --epochs 200 --max-minutes "$MIN" --device "$DEVICE" --force \
    > "$OUT/logs/ft$s.log" 2>&1 &
done
wait
models=(/tmp/ft[0-9]*.safetensors)
[ -e "${models[0]}" ] || { echo "no run finished: see $OUT/logs" >&2; exit 1; }
if [ "${#models[@]}" -gt 1 ]; then
  python3 -m realtime_color.cli average "${models[@]}" -o /tmp/soup.safetensors && models+=(/tmp/soup.safetensors)
fi
for m in "${models[@]}"; do
  name=$(basename "$m" .safetensors)
  python3 -m realtime_color.cli calibrate "$m" "$DATA/valset" --rule ciede --device "$DEVICE" \
    --json "$OUT/$name.sweep.json" > "$OUT/logs/$name.sweep.txt" 2> "$OUT/logs/$name.sweep.err" &
done
wait
for m in "${models[@]}"; do split -b 15M "$m" "$OUT/$(basename "$m" .safetensors).part_"; done
tar -C "$OUT" -cf "$OUT/logs.tar" logs && rm -rf "$OUT/logs"
ls -la "$OUT"
