"""Experiment: a chroma curve instead of one gain -- vivid where the network is sure, neutral where not.

    python scripts/chroma_curve_sweep.py valset/ [--model M] [--json out.json]

A network trained with a squared error predicts the mean of the colors it finds plausible, so its
chroma is small where it is unsure (a shirt that could be red or blue averages to gray) and large
where it is sure (sky, grass). One gain scales both alike. The curve

    ab' = g * ab * (|ab| / r) ** p,      r = 0.1 (about 11 Lab units), p >= 0

shrinks small (unsure) chroma and keeps or raises large (sure) chroma; p = 0 is the plain gain.
Reported per (p, g) on a validation set only: mean PSNR gain over gray, mean CIEDE2000 beside
gray's, mean colorfulness.

The selection rule, fixed before any figure was seen: among the rows with colorfulness >= 20,
CIEDE2000 no higher than gray's and PSNR gain >= +0.2 dB, the highest PSNR gain wins; if no row
qualifies, the model keeps its calibrated plain gain. The test photos are scored once, afterwards,
with whatever the rule picked.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from realtime_color.evaluation import metrics
from realtime_color.media.images import expand_inputs, read_image
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer, compose, unit_to_frame

POWERS = (0.0, 0.5, 1.0)
GAINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
REF = 0.1  # normalized ab (ab / 110)


def curve(ab: np.ndarray, p: float, g: float) -> np.ndarray:
    """ab (N, 2, h, w) normalized -> the curve above."""
    if p == 0.0:
        return ab * np.float32(g)
    mag = np.sqrt((ab * ab).sum(1, keepdims=True))
    return ab * np.float32(g) * (mag / REF) ** np.float32(p)


def pick(rows: dict) -> tuple | None:
    def qualifies(r: dict) -> bool:
        return r["colorfulness"] >= 20 and r["ciede"] <= r["ciede_gray"] and r["psnr_gain"] >= 0.2

    ok = [k for k, r in rows.items() if qualifies(r)]
    return max(ok, key=lambda k: rows[k]["psnr_gain"]) if ok else None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("pictures")
    ap.add_argument("--model", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", default=None, help="score one 'p,g' row only (for the test set)")
    a = ap.parse_args()
    ckpt = load_checkpoint(a.model)
    col = Colorizer(TorchBackend(ckpt.model, device="cpu", precision="fp32"), size=ckpt.inference_size)
    grid = [tuple(map(float, a.only.split(",")))] if a.only else [(p, g) for p in POWERS for g in GAINS]
    paths, _ = expand_inputs([a.pictures])
    acc: dict = {k: [] for k in grid}
    for n, path in enumerate(paths, 1):
        img = read_image(path)[..., :3]
        gray = metrics.to_gray(img)
        lum, ab = col.analyze([gray])
        gray3 = unit_to_frame(compose(lum, np.zeros_like(ab))[0], img.dtype)
        pg, cg = metrics.psnr(gray3, img), metrics.ciede2000(gray3, img)
        for k in grid:
            out = unit_to_frame(compose(lum, curve(ab, *k))[0], img.dtype)
            acc[k].append((metrics.psnr(out, img) - pg, metrics.ciede2000(out, img), cg, metrics.colorfulness(out)))
        print(f"{n}/{len(paths)} {path}", flush=True)
    rows = {}
    print(f"    p  gain  PSNR gain  CIEDE (gray)   colorfulness   [{len(paths)} pictures]")
    for k, r in acc.items():
        m = np.array(r).mean(0)
        rows[k] = {"psnr_gain": m[0], "ciede": m[1], "ciede_gray": m[2], "colorfulness": m[3]}
        print(f"{k[0]:5.2f}  {k[1]:4.2f}  {m[0]:+.3f}     {m[1]:.2f} ({m[2]:.2f})   {m[3]:.1f}")
    chosen = pick(rows)
    print("rule picks:", chosen if chosen else "nothing (keep the calibrated plain gain)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rows": {f"{k[0]},{k[1]}": v for k, v in rows.items()}, "chosen": chosen}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
