"""Make the clips of the adapt figures in BENCHMARKS.md: a generated color surveillance clip split in time.

    python tools/make_adapt_clips.py [OUTDIR]     (default: the current folder)

Writes surv.mp4 (640x360, 30 fps, 30 s, seed 4), surv_first60.mp4 (its first 18 s) and
surv_last40.mp4 (the last 12 s), re-encoded with libx264 CRF 18.
"""

from __future__ import annotations

import sys
from pathlib import Path

import av

from realtime_color.media.synth import write_clip


def cut(src: Path, dst: Path, start: float, stop: float) -> int:
    """Re-encode the frames of ``src`` whose time is in [start, stop) into ``dst``."""
    n = 0
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        vs = i.streams.video[0]
        s = o.add_stream("libx264", rate=vs.average_rate)
        s.width, s.height, s.pix_fmt = vs.codec_context.width, vs.codec_context.height, "yuv420p"
        s.options = {"crf": "18"}
        for f in i.decode(vs):
            if start <= float(f.pts * f.time_base) < stop:
                f.pts = None
                o.mux(s.encode(f))
                n += 1
        o.mux(s.encode())
    return n


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(".")
    out.mkdir(parents=True, exist_ok=True)
    clip = write_clip(out / "surv.mp4", seconds=30, width=640, height=360, seed=4)
    print("first 60%:", cut(clip, out / "surv_first60.mp4", 0, 18), "frames")
    print("last 40%:", cut(clip, out / "surv_last40.mp4", 18, 1e9), "frames")


if __name__ == "__main__":
    main()
