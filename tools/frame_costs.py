"""CPU time per 720p frame of what a camera pipeline does besides coloring: making a synth:// frame,
decoding a camera's H.264, and encoding a recording with libx264 at several settings.

    python tools/frame_costs.py [WORK_DIR]

CPU time (``time.process_time``: all threads of this process), so a busy machine changes it less
than wall time; each encoder setting runs twice and the lower figure is printed.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import av

from realtime_color.media.frames import Policy, Status
from realtime_color.media.sources import open_source
from realtime_color.media.synth import write_clip

FRAMES = 100
ENCODERS = {
    "veryfast": {"preset": "veryfast"},
    "veryfast, 1 thread": {"preset": "veryfast", "threads": "1"},
    "veryfast, zerolatency": {"preset": "veryfast", "tune": "zerolatency"},
    "superfast": {"preset": "superfast"},
}


def read_cost(uri: str) -> float:
    """ms of CPU per frame to get FRAMES pictures from ``uri`` (unpaced)."""
    src = open_source(uri, Policy.FILE, pace=False)
    t, n = time.process_time(), 0
    try:
        while n < FRAMES:
            r = src.read(1.0)
            if r.status is Status.FRAME:
                n += 1
            elif r.status is Status.END:
                break
    finally:
        src.close()
    return (time.process_time() - t) / max(n, 1) * 1000


def encode_cost(frames: list, options: dict) -> tuple[float, int]:
    """(ms of CPU per frame, bytes) for libx264 at CRF 20 with ``options``."""
    buf = io.BytesIO()
    t = time.process_time()
    with av.open(buf, "w", format="mp4") as out:
        s = out.add_stream("libx264", rate=15)
        s.width, s.height, s.pix_fmt = 1280, 720, "yuv420p"
        s.options = {"crf": "20", **options}
        for a in frames:
            out.mux(s.encode(av.VideoFrame.from_ndarray(a, format="yuv420p")))
        out.mux(s.encode())
    return (time.process_time() - t) / len(frames) * 1000, buf.tell()


def main() -> None:
    work = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    clip = work / "frame_costs_720p.mp4"
    if not clip.exists():
        write_clip(clip, seconds=10, width=1280, height=720, fps=15, gray=True, audio=False)
    print(f"synth:// 720p frame made:  {read_cost('synth://?size=1280x720&fps=15'):.1f} ms")
    print(f"720p H.264 frame decoded: {read_cost(str(clip)):.1f} ms")
    with av.open(str(clip)) as c:
        frames = [f.to_ndarray(format="yuv420p") for _, f in zip(range(FRAMES), c.decode(video=0), strict=False)]
    base = None
    for name, options in ENCODERS.items():
        ms, size = min(encode_cost(frames, options) for _ in range(2))
        base = base or size
        print(f"libx264 {name:22s} {ms:5.1f} ms a frame, {size / base:.2f}x the bytes of veryfast")


if __name__ == "__main__":
    main()
