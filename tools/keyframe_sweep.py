"""Speed and quality of `rtcolor colorize` per keyframe interval, side by side in one run.

    python tools/keyframe_sweep.py [--pan PX_PER_S] [--photos A.png B.png] [--idle] [--static-stretch S] [K ...]

Generates a 10 s 720p 30 fps color clip (a scene cut at 5 s) and its gray version, then for each
K: the end-to-end fps of the gray clip (default settings otherwise) and the quality figures of
`rtcolor eval` on the color clip (PSNR vs gray, chroma flicker and CDC vs the original's). The
plain transcode (decode + libx264 veryfast) is timed in the same run as the floor. With
``--photos`` the scene is two real pictures (before and after the cut) instead of generated ones;
``--idle`` leaves the objects out (an idle camera: only sensor noise moves); ``--static-stretch``
sets how far a still scene may stretch the keyframe interval (default 4; 1: off). K defaults to
1 4 8 12 16.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from realtime_color.evaluation.bench import pipeline_fps, transcode_fps
from realtime_color.evaluation.evaluate import evaluate_video
from realtime_color.media.images import read_image
from realtime_color.media.synth import write_clip
from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends import open_backend
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.video.stages import PipelineConfig
from realtime_color.video.temporal import TemporalConfig

QUALITY_KEYS = ("psnr", "psnr_gray", "flicker", "flicker_truth", "cdc", "cdc_truth")


def main() -> None:
    args = sys.argv[1:]
    pan = 0.0
    photos = None
    if args[:1] == ["--pan"]:
        pan, args = float(args[1]), args[2:]
    if args[:1] == ["--photos"]:
        photos, args = [read_image(args[1]), read_image(args[2])], args[3:]
    objects = 3
    if args[:1] == ["--idle"]:
        objects, args = 0, args[1:]
    stretch = 4
    if args[:1] == ["--static-stretch"]:
        stretch, args = int(args[1]), args[2:]
    ks = [int(a) for a in args] or [1, 4, 8, 12, 16]
    with tempfile.TemporaryDirectory(prefix="rtcolor-sweep-") as scratch:  # two 720p clips and the outputs
        tmp = Path(scratch)
        clip = {"seconds": 10, "width": 1280, "height": 720, "cut_at": 5, "pan": pan, "photos": photos}
        clip["objects"] = objects
        gray = write_clip(tmp / "gray.mp4", gray=True, **clip)
        color = write_clip(tmp / "color.mp4", **clip)
        ckpt = load_checkpoint(None)
        col = Colorizer(open_backend("auto", ckpt), size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain)
        floor = transcode_fps(gray, tmp / "t.mp4")
        rows = []
        for k in ks:
            cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=k, static_stretch=stretch))
            speed = pipeline_fps(gray, tmp / f"k{k}.mp4", col, cfg, f"k={k}")
            q = evaluate_video(color, col, cfg)
            row = {
                "k": k,
                "keyframes": q["keyframes"],
                "fps": speed["fps"],
                "x_transcode_time": round(floor["fps"] / speed["fps"], 2),
                **{key: round(q[key], 4) for key in QUALITY_KEYS},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        print(json.dumps({"transcode_fps": floor["fps"], "rows": rows}))


if __name__ == "__main__":
    main()
