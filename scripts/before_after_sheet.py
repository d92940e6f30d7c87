"""A before/after contact sheet of two models: gray | before | after | truth, one row per picture.

    python scripts/before_after_sheet.py before.safetensors after.safetensors pictures/ -o sheet.jpg
    git show 902ad5b:realtime_color/models/default.safetensors > first.safetensors   # the first default
    python scripts/before_after_sheet.py first.safetensors default pictures/ -o docs/before_after.jpg

Each colour picture is turned gray and colorized by both models (PyTorch fp32 on the CPU, each at
its own inference size, temperature and chroma gain); every tile is labelled with its PSNR and
CIEDE2000 against the truth. ``default`` names the bundled model. The sheet is written atomically.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import cv2
import numpy as np

from realtime_color import metrics
from realtime_color.backends.pytorch import TorchBackend
from realtime_color.checkpoint import default_model_path
from realtime_color.colorizer import Colorizer
from realtime_color.media.images import expand_inputs, read_image
from realtime_color.weights import CheckpointError, load_checkpoint


def _tile(img: np.ndarray, height: int, label: str) -> np.ndarray:
    w = max(1, round(img.shape[1] * height / img.shape[0]))
    tile = cv2.resize(np.ascontiguousarray(img), (w, height), interpolation=cv2.INTER_AREA)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)
    cv2.rectangle(tile, (0, 0), (tw + 10, th + 10), (0, 0, 0), -1)  # legible on any background
    cv2.putText(tile, label, (5, th + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="checkpoint, or 'default'")
    ap.add_argument("after", help="checkpoint, or 'default'")
    ap.add_argument("pictures", nargs="+", help="colour pictures or folders")
    ap.add_argument("-o", "--out", type=Path, required=True, help="a .jpg or .png file")
    ap.add_argument("--height", type=int, default=160, help="pixels per row")
    a = ap.parse_args()
    if a.out.suffix.lower() not in (".jpg", ".jpeg", ".png"):
        print(f"-o {a.out}: name a .jpg or .png file", file=sys.stderr)
        return 2
    try:
        ckpts = [load_checkpoint(default_model_path() if m == "default" else m) for m in (a.before, a.after)]
    except (CheckpointError, OSError) as e:
        print(f"cannot load a model: {e}", file=sys.stderr)
        return 2
    colorizers = [
        Colorizer(TorchBackend(c.model, precision="fp32"), size=c.inference_size, chroma_gain=c.chroma_gain)
        for c in ckpts
    ]
    paths, missing = expand_inputs(a.pictures)
    if missing or not paths:
        print(f"no pictures at {', '.join(missing) or ' '.join(a.pictures)}", file=sys.stderr)
        return 2
    rows = []
    for path in paths:
        try:
            truth = read_image(path)[..., :3]
        except Exception as e:  # one unreadable picture is skipped, not the sheet
            print(f"skipped {path}: {e}", file=sys.stderr)
            continue
        if truth.dtype != np.uint8:
            truth = (truth // 257).astype(np.uint8)
        gray = metrics.to_gray(truth)
        tiles = [_tile(np.repeat(gray[..., None], 3, 2), a.height, Path(path).name)]
        for name, col in zip(("before", "after"), colorizers, strict=True):
            out = col.colorize(gray)
            label = f"{name}: {metrics.psnr(out, truth):.1f} dB, dE {metrics.ciede2000(out, truth):.1f}"
            tiles.append(_tile(out, a.height, label))
        label = f"truth (gray {metrics.psnr(np.repeat(gray[..., None], 3, 2), truth):.1f} dB)"
        tiles.append(_tile(truth, a.height, label))
        rows.append(np.concatenate(tiles, axis=1))
        print(f"{len(rows)}/{len(paths)} {path}", file=sys.stderr)
    if not rows:
        print("no picture could be read", file=sys.stderr)
        return 2
    width = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows], axis=0)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    partial = a.out.with_name(f".{a.out.name}.partial{a.out.suffix}")
    params = [cv2.IMWRITE_JPEG_QUALITY, 85] if a.out.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(partial), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), params):
        print(f"cannot write {a.out}", file=sys.stderr)
        return 2
    os.replace(partial, a.out)
    print(f"wrote {a.out} ({sheet.shape[1]}x{sheet.shape[0]}, {len(rows)} pictures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
