"""Re-choose a trained model's chroma gain on its validation pictures, by a rule fixed in advance.

    python scripts/make_val_set.py ../shared/data/train extras/paste valset/
    python scripts/calibrate_gain.py model.safetensors valset/ [--min-colorfulness 20 --min-gain-db 0.2]

`rtcolor train` stores the highest-PSNR gain whose output reaches colorfulness 12. The default
model's bars ask for colorfulness 20 *and* a PSNR gain over gray, so this picks, among the gains
`rtcolor train` sweeps, the highest-PSNR one that reaches both on the validation pictures; when
none does, the model's gain is left as it is. Prints the whole sweep; rewrites the checkpoint
(atomically) only when the gain changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from realtime_color.evaluation.evaluate import GAINS, evaluate_gains
from realtime_color.media.images import expand_inputs, read_image
from realtime_color.model.weights import load_checkpoint, save_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("valset", type=Path)
    ap.add_argument("--min-colorfulness", type=float, default=20.0)
    ap.add_argument("--min-gain-db", type=float, default=0.2)
    a = ap.parse_args()
    ckpt = load_checkpoint(a.model)
    paths, _ = expand_inputs([str(a.valset)])
    images = [read_image(p) for p in paths]
    rows = evaluate_gains(ckpt.model, images, ckpt.inference_size, "cpu", gains=GAINS)
    for g, r in rows.items():
        print(
            f"gain {g:.2f}: PSNR {r['psnr']:.3f} (gray {r['psnr_gray']:.3f}, {r['psnr'] - r['psnr_gray']:+.3f})  "
            f"colorfulness {r['colorfulness']:.1f}"
        )
    ok = {
        g: r
        for g, r in rows.items()
        if r["colorfulness"] >= a.min_colorfulness and r["psnr"] - r["psnr_gray"] >= a.min_gain_db
    }
    if not ok:
        print(f"no gain reaches both bars; keeping {ckpt.chroma_gain}")
        return 0
    gain = max(ok, key=lambda g: ok[g]["psnr"])
    print(f"chosen gain {gain} (was {ckpt.chroma_gain}) on {len(images)} validation pictures")
    if gain != ckpt.chroma_gain:
        meta = {k: v for k, v in ckpt.meta.items() if k != "sha256"}
        meta["chroma_gain"] = gain
        meta.setdefault("metrics", {})["gain_calibration"] = {
            "rule": f"highest validation PSNR with colorfulness >= {a.min_colorfulness} and "
            f"PSNR >= gray + {a.min_gain_db} dB",
            "pictures": len(images),
            "sweep": {str(g): r for g, r in rows.items()},
        }
        save_checkpoint(ckpt.model, a.model, meta, half=meta.get("dtype") == "float16")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
