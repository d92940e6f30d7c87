"""Make samples/cameraman_pan.mp4: the bundled gray photo as a short 'archive' clip.

    python tools/make_sample_clip.py

A slow vertical pan over samples/cameraman.png (640x360, 25 fps, 4 s, H.264) with a quiet
440 Hz tone as its sound track, so that the README's first command exercises the main job:
video in, every frame and the audio kept, color out.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from realtime_color.media.images import read_image
from realtime_color.media.synth import _Tone

ROOT = Path(__file__).resolve().parents[1]


def main(seconds: float = 4.0, fps: int = 25, width: int = 640, height: int = 360) -> Path:
    gray = read_image(ROOT / "samples" / "cameraman.png")
    gray = gray if gray.ndim == 2 else gray[..., 0]
    big = cv2.resize(gray, (width, width), interpolation=cv2.INTER_CUBIC)
    out = ROOT / "samples" / "cameraman_pan.mp4"
    n = int(seconds * fps)
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.time_base = Fraction(1, 90000)
        s.options = {"crf": "23", "preset": "slow"}
        tone = _Tone(c, c.add_stream("aac", rate=48000, layout="stereo"))
        for i in range(n):
            y0 = int(round((width - height) * i / (n - 1)))
            y = np.ascontiguousarray(big[y0 : y0 + height])
            planes = np.concatenate([y.ravel(), np.full(width * height // 2, 128, np.uint8)])
            frame = av.VideoFrame.from_ndarray(planes.reshape(-1, width), format="yuv420p")
            frame.pts, frame.time_base = i * 90000 // fps, s.time_base
            c.mux(s.encode(frame))
            tone.write_until((i + 1) / fps)
        c.mux(s.encode())
        tone.close()
    return out


if __name__ == "__main__":
    path = main()
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
