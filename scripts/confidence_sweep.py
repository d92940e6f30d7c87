"""Experiment: shrink chroma where the network is unsure, judged by its disagreement with itself.

    python scripts/confidence_sweep.py valset/ [--model M] [--sheet sheet.png]

The network runs on the picture and on its mirror image (mirrored back). Where the two agree the
color is kept; where they disagree (a shirt that could be red or blue) it is shrunk by
w = exp(-d^2 / (2 s^2)), d the distance between the two ab predictions, smoothed. Reported per
chroma gain and per s, beside plain output (no weighting, one pass), on a validation set only:
mean PSNR gain over gray and colorfulness. An experiment; nothing in rtcolor uses it yet (it
costs a second network pass per keyframe).
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from realtime_color.evaluation import metrics
from realtime_color.evaluation.evaluate import GAINS
from realtime_color.media.images import expand_inputs, read_image
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer, compose, unit_to_frame

SPREADS = (None, 0.02, 0.04, 0.08)  # s in normalized ab units (ab / 110)


def weighted(ab: np.ndarray, ab_m: np.ndarray, s: float | None) -> np.ndarray:
    if s is None:
        return ab
    d2 = ((ab - ab_m) ** 2).sum(1, keepdims=True)
    d2 = np.stack([cv2.GaussianBlur(x[0], (0, 0), 2.0)[None] for x in d2])
    return 0.5 * (ab + ab_m) * np.exp(-d2 / (2 * s * s))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("valset")
    ap.add_argument("--model", default=None)
    ap.add_argument("--sheet", default=None)
    a = ap.parse_args()
    ckpt = load_checkpoint(a.model)
    col = Colorizer(TorchBackend(ckpt.model, device="cpu", precision="fp32"), size=ckpt.inference_size)
    paths, _ = expand_inputs([a.valset])
    rows: dict = {}
    sheet = []
    for p in paths:
        img = read_image(p)
        gray = metrics.to_gray(img)
        lum, ab = col.analyze([gray])
        _, ab_m = col.analyze([np.ascontiguousarray(gray[:, ::-1])])
        ab_m = ab_m[..., ::-1]
        pg = metrics.psnr(gray, img)
        for s in SPREADS:
            w = weighted(ab, ab_m, s)
            for g in GAINS:
                out = unit_to_frame(compose(lum, w * g)[0], np.uint8)
                r = rows.setdefault((s, g), [])
                r.append((metrics.psnr(out, img) - pg, metrics.colorfulness(out)))
                if a.sheet and len(sheet) < 24 and g == 1.0 and s in (None, 0.04):
                    sheet.append(cv2.resize(out, (192, 192)))
    print("spread  gain  PSNR gain  colorfulness")
    for (s, g), r in rows.items():
        arr = np.array(r)
        print(f"{str(s):>6}  {g:4.2f}  {arr[:, 0].mean():+.3f}     {arr[:, 1].mean():.1f}")
    if a.sheet and sheet:
        rows_img = [np.hstack(sheet[i : i + 4]) for i in range(0, len(sheet) - len(sheet) % 4, 4)]
        cv2.imwrite(a.sheet, cv2.cvtColor(np.vstack(rows_img), cv2.COLOR_RGB2BGR))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
