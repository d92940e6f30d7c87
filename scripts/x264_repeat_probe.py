"""Does one input give one output? A generated clip colorized N times in one process, as
``rtcolor colorize`` does it (the bundled model on ONNX Runtime fp32, FileSink's libx264 at CRF 18);
prints how many different files came out at each size.

    python scripts/x264_repeat_probe.py --sizes 160x96 256x96 --runs 30

The pictures reaching the encoder are the same every run (checked with a hash of every plane);
more than one output means the encoder read bytes nobody wrote (docs/experiments/2026-11-28-default-soup-c6.md, "x264").
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
from pathlib import Path

from realtime_color.media import video
from realtime_color.media.synth import write_clip
from realtime_color.model.checkpoint import ModelFile
from realtime_color.runtime.backends import open_backend
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.video.stages import PipelineConfig, colorize_file


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", default=["160x96", "256x96"], help="WxH, even")
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--seconds", type=float, default=6.0)
    a = ap.parse_args()
    ckpt = ModelFile.open(None)
    colorizer = Colorizer(
        open_backend("onnxruntime", ckpt, device="cpu"), size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain
    )
    inputs: list[str] = []  # what one run handed the encoder, hashed picture by picture
    write = video.FileSink.write

    def recording_write(sink, pic):
        inputs.append(hashlib.md5(pic.y.tobytes() + pic.u.tobytes() + pic.v.tobytes()).hexdigest())
        return write(sink, pic)

    video.FileSink.write = recording_write
    with tempfile.TemporaryDirectory(prefix="rtcolor-x264-") as tmp:
        for size in a.sizes:
            w, h = (int(v) for v in size.split("x"))
            clip = write_clip(Path(tmp) / f"in-{size}.mp4", seconds=a.seconds, width=w, height=h, fps=25)
            outputs, fed = [], set()
            for i in range(a.runs):
                inputs.clear()
                out = colorize_file(clip, Path(tmp) / f"out-{size}-{i}.mp4", colorizer, PipelineConfig()).output
                outputs.append(hashlib.md5(Path(out).read_bytes()).hexdigest())
                fed.add(tuple(inputs))
            counts = sorted((outputs.count(o) for o in set(outputs)), reverse=True)
            print(
                f"{size}: {len(fed)} input(s) to the encoder, {len(counts)} output(s) in {a.runs} runs {counts}; "
                f"chroma rows {w // 2} bytes",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
