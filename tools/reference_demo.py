"""Worked example and measurement for known colors: --reference and --color-frames.

    python tools/reference_demo.py demo/ [--size 1280x720] [--seconds 10]

Makes, in demo/:
  day.png          a color daytime frame of a generated fixed camera (no one in the scene)
  night.mp4        the same view at night: gray, another exposure curve, sensor noise, objects crossing
  reel.mp4         a gray panning clip with a scene cut, and colored/ with one colored frame per shot
then runs `rtcolor colorize` on each with and without the known colors and prints, per run:
the chroma error against the truth (static scene / what moved; CIE Lab ab distance of the output
to what a colorizer knowing the true colors would output), PSNR against that, and fps.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from realtime_color.evaluation.evaluate import chroma_error, true_colors_at
from realtime_color.media.images import write_image
from realtime_color.media.synth import SceneClip, night_view, write_clip


def colorize(src: Path, dest: Path, *args: str) -> float:
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "realtime_color.cli", "colorize", str(src), "-o", str(dest), "--force", *args]
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t


def frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def score(outs, wants, masks) -> dict:
    e = chroma_error
    static = [e(o, w, ~m) for o, w, m in zip(outs, wants, masks, strict=True)]
    moved = [e(o, w, m) for o, w, m in zip(outs, wants, masks, strict=True) if m.sum() > 100]
    mse = [np.mean((o.astype(np.float64) - w) ** 2) for o, w in zip(outs, wants, strict=True)]
    return {
        "chroma_error_static": round(float(np.mean(static)), 2),
        "chroma_error_moved": round(float(np.mean(moved)), 2) if moved else None,
        "psnr_db": round(float(np.mean([10 * np.log10(255**2 / max(m, 1e-9)) for m in mse])), 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=int, default=30)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    w, h = (int(v) for v in a.size.split("x"))
    n = int(a.seconds * a.fps)
    rows = {}

    # 1. A fixed camera: a day reference, the night clip.
    day = SceneClip(h, w, a.fps, seed=4, objects=0).frame(0)
    write_image(out / "day.png", day)
    scene, rng = SceneClip(h, w, a.fps, seed=4, objects=3), np.random.default_rng(1)
    truths, grays = [scene.frame(i) for i in range(n)], []
    with av.open(str(out / "night.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=a.fps)
        s.width, s.height, s.pix_fmt, s.options = w, h, "yuv420p", {"crf": "16", "preset": "veryfast"}
        for i, t in enumerate(truths):
            grays.append(night_view(t, rng))
            f = av.VideoFrame.from_ndarray(np.dstack([grays[-1]] * 3), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, a.fps)
            c.mux(s.encode(f))
        c.mux(s.encode())
    wants = [true_colors_at(g, t) for g, t in zip(grays, truths, strict=True)]
    kernel = np.ones((9, 9), np.uint8)
    masks = [
        cv2.dilate((np.abs(t.astype(int) - day.astype(int)).max(-1) > 30).astype(np.uint8), kernel) > 0 for t in truths
    ]
    for name, args in (
        ("night, network only", ()),
        ("night, --reference day.png", ("--reference", str(out / "day.png"))),
    ):
        secs = colorize(out / "night.mp4", out / "night_color.mp4", *args)
        rows[name] = {
            **score(frames(out / "night_color.mp4"), wants, masks),
            "seconds": round(secs, 2),
            "fps": round(n / secs, 1),
        }

    # 2. An archive reel: two shots, a pan, one colored frame per shot.
    write_clip(
        out / "reel.mp4",
        seconds=a.seconds,
        width=w,
        height=h,
        fps=a.fps,
        gray=True,
        audio=False,
        cut_at=a.seconds / 2,
        seed=2,
        pan=12.0,
    )
    reel = SceneClip(h, w, a.fps, cut_at=a.seconds / 2, seed=2, pan=12.0)
    reel_truths = [reel.frame(i) for i in range(n)]
    colored = out / "colored"
    colored.mkdir(exist_ok=True)
    for k in (n // 4, 3 * n // 4):
        write_image(colored / f"{k:06d}.png", reel_truths[k])
    none = [np.zeros((h, w), bool)] * n
    for name, args in (("reel, network only", ()), ("reel, --color-frames (2)", ("--color-frames", str(colored)))):
        secs = colorize(out / "reel.mp4", out / "reel_color.mp4", *args)
        rows[name] = {
            **score(frames(out / "reel_color.mp4"), reel_truths, none),
            "seconds": round(secs, 2),
            "fps": round(n / secs, 1),
        }
    print(json.dumps(rows, indent=1))
    (out / "results.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
