"""A before/after contact sheet of two models: gray | before | after | truth, one row per picture.

    python tools/before_after_sheet.py before.safetensors after.safetensors pictures/ -o sheet.jpg
    git show 902ad5b:realtime_color/model/bundled/default.safetensors > first.safetensors   # the first default
    python tools/before_after_sheet.py first.safetensors default pictures/ -o docs/before_after.jpg

Each color picture is turned gray and colorized by both models (PyTorch fp32 on the CPU, each at
its own inference size, temperature and chroma gain); every tile is labelled with its PSNR and
CIEDE2000 against the truth. ``default`` names the bundled model. The sheet is written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from realtime_color.evaluation import metrics
from realtime_color.evaluation.evaluate import tile_sheet
from realtime_color.media.images import expand_inputs, read_image, write_image
from realtime_color.model.checkpoint import default_model_path
from realtime_color.model.weights import CheckpointError, load_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before", help="checkpoint, or 'default'")
    ap.add_argument("after", help="checkpoint, or 'default'")
    ap.add_argument("pictures", nargs="+", help="color pictures or folders")
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
        gray = metrics.to_gray(truth)
        gray3 = np.repeat(gray[..., None], 3, 2)
        tiles = [(gray3, Path(path).name)]
        for name, col in zip(("before", "after"), colorizers, strict=True):
            out = col.colorize(gray)
            tiles.append((out, f"{name}: {metrics.psnr(out, truth):.1f} dB, dE {metrics.ciede2000(out, truth):.1f}"))
        tiles.append((truth, f"truth (gray {metrics.psnr(gray3, truth):.1f} dB)"))
        rows.append((tiles, None))
        print(f"{len(rows)}/{len(paths)} {path}", file=sys.stderr)
    if not rows:
        print("no picture could be read", file=sys.stderr)
        return 2
    sheet = tile_sheet(rows, a.height)
    write_image(a.out, sheet)  # through a temporary name: no half file
    print(f"wrote {a.out} ({sheet.shape[1]}x{sheet.shape[0]}, {len(rows)} pictures)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
