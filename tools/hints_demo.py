"""Fixed-camera hints, measured: 20 frame-less hints from one color frame lift the rest of the clip.

    python tools/hints_demo.py demo/ [--clip street.mp4] [--hints 20] [--hint-frame 0]
                                       [--model hinted.safetensors] [--backend auto] [--seconds 10]

A color clip (``--clip``, or a generated fixed camera with objects crossing: media/synth.py) is the
truth. From its frame ``--hint-frame`` (frame 0 by default: the view the frame-less hints are gated
against is the video's first frame) ``--hints`` points are simulated from the truth with the
protocol of ``rtcolor eval --hints`` (training/hint_sim.hints_from_truth: patches of 1-9 source
pixels uniform over the picture, each the color of its mean true Lab; seed ``--seed``), written as
a frame-less hints file. Then, as a user would:

    rtcolor colorize CLIP -o plain.mp4               (no hints)
    rtcolor colorize CLIP -o hinted.mp4 --hints hints.json

(the network sees only the clip's luma, so the color clip itself is the input), and every frame
after the hint frame is scored against the truth: PSNR (all frames), CIEDE2000 (every 10th frame),
chroma flicker in static areas (evaluation/metrics.TemporalScores) beside the original's own, for
the gray baseline (the truth's luma, no chroma), the run without hints and the run with them.
Prints one JSON object, also written to OUT/hints_demo.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np

from realtime_color.evaluation import metrics
from realtime_color.guidance.hints import HintSet, save_hints
from realtime_color.media.synth import write_clip
from realtime_color.training.hint_sim import hints_from_truth


def frames(path: Path):
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            yield f.to_ndarray(format="rgb24")


def gray_of(rgb: np.ndarray) -> np.ndarray:
    """The truth's L with no chroma, as sRGB: the gray baseline."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    lab[..., 1:] = 0
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)


def colorize(clip: Path, dest: Path, extra: list[str]) -> float:
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "realtime_color.cli", "colorize", str(clip), "-o", str(dest), "--force", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.strip()}")
    return time.perf_counter() - t


def score(clip: Path, runs: dict[str, Path], start: int, sample_every: int = 10) -> dict:
    names = ["gray", *runs]
    psnr = {k: [] for k in names}
    ciede = {k: [] for k in names}
    temporal = {k: metrics.TemporalScores() for k in [*names, "truth"]}
    streams = [frames(p) for p in runs.values()]
    for i, truth in enumerate(frames(clip)):
        outs = [next(s) for s in streams]
        if i <= start:
            continue
        lum = cv2.cvtColor(truth.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 0]
        for name, out in zip(names, [gray_of(truth), *outs], strict=True):
            psnr[name].append(metrics.psnr(out, truth))
            if i % sample_every == 0:
                ciede[name].append(metrics.ciede2000(out, truth))
            temporal[name].add(np.ascontiguousarray(out), lum)
        temporal["truth"].add(truth, lum)
    rows = {
        k: {
            "psnr_db": round(float(np.mean(psnr[k])), 2),
            "ciede2000": round(float(np.mean(ciede[k])), 2),
            "flicker": round(temporal[k].result()["flicker"], 3),
        }
        for k in names
    }
    flicker_truth = round(temporal["truth"].result()["flicker"], 3)
    return {"frames_scored": len(psnr["gray"]), "flicker_truth": flicker_truth, **rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--clip", type=Path, help="A color clip (default: a generated fixed camera).")
    ap.add_argument("--hints", type=int, default=20)
    ap.add_argument("--hint-frame", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=10.0, help="Length of the generated clip.")
    ap.add_argument("--resolution", default="640x360", help="WxH of the generated clip.")
    ap.add_argument("--model", help="Checkpoint for both runs (default: the bundled model).")
    ap.add_argument("--backend", default="auto")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    clip = args.clip
    if clip is None:
        w, h = (int(v) for v in args.resolution.lower().split("x"))
        clip = write_clip(args.out / "fixed_camera.mp4", seconds=args.seconds, width=w, height=h, audio=False, crf=16)
    truth = next(f for i, f in enumerate(frames(clip)) if i == args.hint_frame)
    hints = hints_from_truth(truth, args.hints, np.random.default_rng(args.seed))  # eval --hints' protocol
    hints_file = save_hints(args.out / "hints.json", HintSet(hints, {"source": f"{clip.name} frame {args.hint_frame}"}))
    common = ["--backend", args.backend, "--crf", "12"] + (["--model", args.model] if args.model else [])
    seconds = {
        "plain": colorize(clip, args.out / "plain.mp4", common),
        "hinted": colorize(clip, args.out / "hinted.mp4", [*common, "--hints", str(hints_file)]),
    }
    result = score(clip, {"plain": args.out / "plain.mp4", "hinted": args.out / "hinted.mp4"}, args.hint_frame)
    result.update(
        clip=str(clip),
        hints=len(hints),
        hint_frame=args.hint_frame,
        seed=args.seed,
        seconds={k: round(v, 1) for k, v in seconds.items()},
        hinted_over_gray_db=round(result["hinted"]["psnr_db"] - result["gray"]["psnr_db"], 2),
        hinted_over_plain_db=round(result["hinted"]["psnr_db"] - result["plain"]["psnr_db"], 2),
        hinted_flicker_vs_truth=round(result["hinted"]["flicker"] / max(result["flicker_truth"], 1e-6), 2),
    )
    text = json.dumps(result, indent=1)
    (args.out / "hints_demo.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
