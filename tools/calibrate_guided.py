"""Calibrate a model's no-hints chroma gain by the rule in docs (written before scoring), and
write the calibrated checkpoint.

    python tools/calibrate_guided.py --model guided.safetensors --val everyday/val --out calibrated.safetensors

The rule: gains 0.00, 0.05, ..., 1.00; each validation photo turned gray and colorized without
hints (PyTorch fp32, the model's inference size); eligible gains have mean PSNR >= gray's + 0.2 dB
and mean CIEDE2000 <= gray's; the largest eligible gain wins. Failing that, the largest gain with
PSNR >= gray's and CIEDE2000 <= gray's; failing that, 0 (gray). The gain of pictures with hints
(``hinted_chroma_gain``) is set to 1.0, not tuned. The sweep goes into the checkpoint's metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from realtime_color.evaluation import metrics  # noqa: E402
from realtime_color.media.images import IMAGE_SUFFIXES, read_image  # noqa: E402
from realtime_color.runtime.colorizer import Colorizer, compose, gray_rgb, unit_to_frame  # noqa: E402

GAINS = tuple(round(0.05 * i, 2) for i in range(21))
MARGIN_DB = 0.2


def pick(sweep: dict[float, dict], gray: dict) -> tuple[float, str]:
    """The rule: (gain, which clause chose it)."""
    strict = [
        g for g, r in sweep.items() if r["psnr"] >= gray["psnr"] + MARGIN_DB and r["ciede2000"] <= gray["ciede2000"]
    ]
    if strict:
        return max(strict), f"largest gain with PSNR >= gray + {MARGIN_DB} dB and CIEDE2000 <= gray"
    loose = [g for g, r in sweep.items() if r["psnr"] >= gray["psnr"] and r["ciede2000"] <= gray["ciede2000"]]
    if loose:
        return max(loose), "largest gain with PSNR >= gray and CIEDE2000 <= gray (none reached +0.2 dB)"
    return 0.0, "no gain met the rule: gray"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--val", type=Path, required=True, help="folder of color validation photos")
    parser.add_argument("--out", type=Path, help="write the calibrated checkpoint here")
    args = parser.parse_args()

    from realtime_color.model.weights import load_checkpoint, save_checkpoint
    from realtime_color.runtime.backends.pytorch import TorchBackend

    ckpt = load_checkpoint(args.model)
    col = Colorizer(TorchBackend(ckpt.model, precision="fp32"), size=ckpt.inference_size)
    files = sorted(p for p in args.val.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    rows: dict[float, list[dict]] = {g: [] for g in GAINS}
    grays = []
    for f in files:
        truth = read_image(f)[..., :3]
        gray = metrics.to_gray(truth)
        gray3 = gray_rgb(gray, truth.dtype)
        grays.append({"psnr": metrics.psnr(gray3, truth), "ciede2000": metrics.ciede2000(gray3, truth)})
        lum, ab = col.analyze([gray])
        for g in GAINS:
            out = unit_to_frame(compose(lum, ab * np.float32(g))[0], np.uint8)
            rows[g].append(
                {
                    "psnr": metrics.psnr(out, truth),
                    "ciede2000": metrics.ciede2000(out, truth),
                    "colorfulness": metrics.colorfulness(out),
                }
            )
    sweep = {g: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]} for g, rs in rows.items()}
    gray = {k: float(np.mean([r[k] for r in grays])) for k in grays[0]}
    gain, why = pick(sweep, gray)
    print(f"{len(files)} photos; gray: PSNR {gray['psnr']:.2f} dB, CIEDE2000 {gray['ciede2000']:.2f}")
    print("gain  PSNR dB (vs gray)  CIEDE2000  colorfulness")
    for g, r in sweep.items():
        mark = " <- chosen" if g == gain else ""
        gain_db = r["psnr"] - gray["psnr"]
        print(f"{g:.2f}  {r['psnr']:.2f} ({gain_db:+.2f})  {r['ciede2000']:.2f}  {r['colorfulness']:.1f}{mark}")
    print(f"chosen gain {gain:.2f}: {why}")
    if args.out:
        meta = {k: v for k, v in ckpt.meta.items() if k != "sha256"}
        meta["chroma_gain"] = gain
        meta["hinted_chroma_gain"] = 1.0
        meta["calibration"] = {
            "set": f"{args.val.name} ({len(files)} photos)",
            "rule": why,
            "gray": gray,
            "sweep": {f"{g:.2f}": r for g, r in sweep.items()},
        }
        save_checkpoint(ckpt.model, args.out, meta, half=True)
        print(f"wrote {args.out}")
    print(json.dumps({"gain": gain, "gray": gray, "chosen": sweep[gain]}))


if __name__ == "__main__":
    main()
