"""Choose a binned model's temperature and chroma gain on validation pictures, by a rule fixed in advance.

    python scripts/make_val_set.py ../shared/data/train extras/paste valset/
    python scripts/calibrate_temperature.py model.safetensors valset/ [--json sweep.json] [--write]
    python scripts/calibrate_temperature.py model.safetensors holdout/ --only 0.38,0.8   # one row
    python scripts/calibrate_temperature.py model.safetensors valset/ --temperatures 0.6 --gains 1.5,1.8

A model trained with ``--ab-bins`` predicts a distribution over ab and outputs its annealed mean
at the temperature T stored in it: T = 1 is the mean (what a squared error gives), lower T commits
to the likeliest hue. This sweeps T x chroma gain (the network runs once per T; each gain only
rescales its ab) and reports, per row, the mean PSNR gain over gray, CIEDE2000 beside gray's and
colorfulness, on the pictures given (fp32 PyTorch). ``--estimator median`` sweeps the tempered
distribution's per-channel median instead of its mean (measured on C4, 2026-11-28, not adopted); the
JSON keeps every picture's figures, for paired comparisons between two sweeps.

Two rules, each written before the models it chose were scored (docs/experiments/):

* ``--rule psnr`` (the default; chose E2, 2026-11-28): on the grid T {1, 0.6, 0.38, 0.25} x gain {0.5, 0.65,
  0.8, 1.0, 1.2}, the highest PSNR gain among rows with colorfulness >= 20, CIEDE2000 no higher
  than gray's and PSNR gain >= +0.2 dB; if no row qualifies, the highest PSNR gain among rows
  whose CIEDE2000 is no higher than ``--fallback-ciede``.
* ``--rule ciede`` (chose C4 and C6, 2026-11-28): on the grid T {1, 0.6, 0.38} x gain {0.8, 1.0, 1.2, 1.5, 1.8},
  the lowest CIEDE2000 among rows with colorfulness >= 20, CIEDE2000 no higher than gray's and
  PSNR gain >= +0.5 dB (the quality aim); rows within 0.005 of it go to the higher PSNR gain.
  Nothing qualifying: no pick.

``--write`` stores the pick's T and gain in the checkpoint (atomically), only when the rule's
own grid was swept.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from realtime_color.evaluation import metrics
from realtime_color.evaluation.evaluate import gain_interval
from realtime_color.media.images import expand_inputs, read_image
from realtime_color.model.network import ESTIMATORS
from realtime_color.model.weights import load_checkpoint, save_checkpoint
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer, compose, unit_to_frame

# Each rule's grid: (temperatures, gains).
GRIDS = {
    "psnr": ((1.0, 0.6, 0.38, 0.25), (0.5, 0.65, 0.8, 1.0, 1.2)),
    "ciede": ((1.0, 0.6, 0.38), (0.8, 1.0, 1.2, 1.5, 1.8)),
}
MIN_GAIN = {"psnr": 0.2, "ciede": 0.5}  # dB over gray


RULE_TEXT = {
    "psnr": "highest validation PSNR gain with colorfulness >= 20, CIEDE2000 <= gray's and PSNR >= gray + "
    "0.2 dB; else the highest with CIEDE2000 <= {fallback}",
    "ciede": "lowest validation CIEDE2000 with colorfulness >= 20, CIEDE2000 <= gray's and PSNR >= gray + 0.5 dB "
    "(within 0.005: the higher PSNR gain)",
}


def qualifies(r: dict, min_gain: float) -> bool:
    return r["colorfulness"] >= 20 and r["ciede"] <= r["ciede_gray"] and r["psnr_gain"] >= min_gain


def pick(rows: dict, rule: str, fallback_ciede: float) -> tuple[tuple | None, bool]:
    """(the chosen (T, gain), whether it met all three bars); (None, False) when nothing is eligible."""
    ok = [k for k, r in rows.items() if qualifies(r, MIN_GAIN[rule])]
    if ok and rule == "ciede":
        best = min(rows[k]["ciede"] for k in ok)
        return max((k for k in ok if rows[k]["ciede"] <= best + 0.005), key=lambda k: rows[k]["psnr_gain"]), True
    if ok:
        return max(ok, key=lambda k: rows[k]["psnr_gain"]), True
    if rule == "ciede":
        return None, False
    fall = [k for k, r in rows.items() if r["ciede"] <= fallback_ciede]
    return (max(fall, key=lambda k: rows[k]["psnr_gain"]) if fall else None), False


def sweep(model, size: int, paths: list, grid: list[tuple[float, float]], device: str = "cpu") -> dict:
    """Mean figures per (T, gain) over ``paths``, and each picture's PSNR gain and CIEDE2000 (under
    ``per_picture``); ``model`` (a binned ColorizerNet) runs once per picture and temperature (its
    config's T and estimator are what the forward pass reads); each gain only rescales that ab."""
    acc: dict = {k: [] for k in grid}
    temps = sorted({t for t, _ in grid}, reverse=True)
    col = Colorizer(TorchBackend(model, device=device, precision="fp32"), size=size)
    for n, path in enumerate(paths, 1):
        img = read_image(path)[..., :3]
        gray = metrics.to_gray(img)
        gray3 = None
        for t in temps:
            model.config.temperature = t
            lum, ab = col.analyze([gray])
            if gray3 is None:
                gray3 = unit_to_frame(compose(lum, np.zeros_like(ab))[0], img.dtype)
                pg, cg = metrics.psnr(gray3, img), metrics.ciede2000(gray3, img)
            for k in (k for k in grid if k[0] == t):
                out = unit_to_frame(compose(lum, ab * np.float32(k[1]))[0], img.dtype)
                acc[k].append(
                    (metrics.psnr(out, img) - pg, metrics.ciede2000(out, img), cg, metrics.colorfulness(out))
                )
        print(f"{n}/{len(paths)} {path}", file=sys.stderr, flush=True)
    rows = {}
    for k, r in acc.items():
        m = np.array(r)
        lo, hi = gain_interval([{"psnr": g, "psnr_gray": 0.0} for g in m[:, 0]])["psnr_gain_interval"]
        mean = m.mean(0)
        rows[k] = {
            "psnr_gain": float(mean[0]),
            "psnr_gain_95": [float(lo), float(hi)],
            "ciede": float(mean[1]),
            "ciede_gray": float(mean[2]),
            "colorfulness": float(mean[3]),
            "above_gray": int((m[:, 0] > 0).sum()),
            "pictures": len(m),
            "per_picture": {"psnr_gain": m[:, 0].tolist(), "ciede": m[:, 1].tolist()},
        }
    return rows


def _summary(row: dict) -> dict:
    """A sweep row without its per-picture lists (what the checkpoint's header keeps)."""
    return {k: v for k, v in row.items() if k != "per_picture"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("pictures")
    ap.add_argument("--only", default=None, help="score one 'T,gain' row only (for a test set)")
    ap.add_argument("--temperatures", default=None, help="comma-separated T values instead of the grid's")
    ap.add_argument("--gains", default=None, help="comma-separated chroma gains instead of the grid's")
    ap.add_argument("--rule", choices=sorted(GRIDS), default="psnr", help="which rule picks (see above)")
    ap.add_argument("--fallback-ciede", type=float, default=10.70, help="--rule psnr: the previous default's CIEDE2000")
    ap.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default=None,
        help="how the distribution becomes one color: mean or median (default: the model's own); "
        "--write stores it with T and gain",
    )
    ap.add_argument("--device", default="cpu", help="where the network runs (fp32): cpu (the card's figures), cuda")
    ap.add_argument("--json", default=None)
    ap.add_argument("--write", action="store_true", help="store the pick's temperature and gain in MODEL")
    a = ap.parse_args()
    if a.write and (a.only or a.temperatures or a.gains):  # said before the sweep, not after it
        sys.stderr.write("--write stores only a pick from the rule's own grid: drop --only/--temperatures/--gains\n")
        return 2
    ckpt = load_checkpoint(a.model)
    if not ckpt.model.config.ab_bins:
        print(f"{a.model} predicts ab directly (no --ab-bins): use scripts/calibrate_gain.py", file=sys.stderr)
        return 2
    temps = [float(t) for t in a.temperatures.split(",")] if a.temperatures else GRIDS[a.rule][0]
    gains = [float(g) for g in a.gains.split(",")] if a.gains else GRIDS[a.rule][1]
    grid = [tuple(map(float, a.only.split(",")))] if a.only else [(t, g) for t in temps for g in gains]
    paths, _ = expand_inputs([a.pictures])
    stored_t = ckpt.model.config.temperature
    if a.estimator:
        ckpt.model.config.estimator = a.estimator
    rows = sweep(ckpt.model, ckpt.inference_size, paths, grid, a.device)
    ckpt.model.config.temperature = stored_t
    print(f"estimator: {ckpt.model.config.estimator}")
    print(f"    T  gain  PSNR gain (95%)           CIEDE (gray)    colorfulness  above gray  [{len(paths)} pictures]")
    for k, r in rows.items():
        lo, hi = r["psnr_gain_95"]
        print(
            f"{k[0]:5.2f}  {k[1]:4.2f}  {r['psnr_gain']:+.3f} ({lo:+.2f} to {hi:+.2f})  "
            f"{r['ciede']:.2f} ({r['ciede_gray']:.2f})   {r['colorfulness']:5.1f}         {r['above_gray']}"
        )
    chosen, full = pick(rows, a.rule, a.fallback_ciede)
    print(
        "rule picks:",
        f"T {chosen[0]}, gain {chosen[1]}" if chosen else "nothing",
        "(meets all three bars)" if full else "",
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "estimator": ckpt.model.config.estimator,
                    "rows": {f"{k[0]},{k[1]}": v for k, v in rows.items()},
                    "chosen": chosen,
                    "meets_bars": full,
                },
                f,
                indent=1,
            )
    if a.write and chosen:
        meta = {k: v for k, v in ckpt.meta.items() if k != "sha256"}
        ckpt.model.config.temperature, meta["chroma_gain"] = chosen
        meta.setdefault("metrics", {})["temperature_calibration"] = {
            "rule": RULE_TEXT[a.rule].format(fallback=a.fallback_ciede),
            "estimator": ckpt.model.config.estimator,
            "meets_bars": full,
            "pictures": len(paths),
            "sweep": {f"{k[0]},{k[1]}": _summary(v) for k, v in rows.items()},
        }
        save_checkpoint(ckpt.model, a.model, meta, half=meta.get("dtype") == "float16")
        print(f"wrote T {chosen[0]} and gain {chosen[1]} into {a.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
