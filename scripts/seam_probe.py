"""Colorize the segment tests' clip split in 3 segments and in one run; print the chroma change at
each seam beside the largest inside the segments, and how far the split run is from the single.

    python scripts/seam_probe.py OUT_DIR [CRF]      (run from the repository root; CRF default 18)
"""

from __future__ import annotations

import sys
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from realtime_color.model.checkpoint import ModelFile  # noqa: E402
from realtime_color.runtime.backends import open_backend  # noqa: E402
from realtime_color.runtime.colorizer import Colorizer  # noqa: E402
from realtime_color.video.stages import PipelineConfig, colorize_file  # noqa: E402
from tests.test_segments import _split_run, psnr, read_video, seam_ok, short_gop_clip  # noqa: E402


def changes(uv: list[np.ndarray]) -> list[float]:
    return [float(np.abs(uv[i + 1] - uv[i]).mean()) for i in range(len(uv) - 1)]


def keyframes(path: Path) -> list[int]:
    with av.open(str(path)) as c:
        return [i for i, p in enumerate(p for p in c.demux(video=0) if p.pts is not None) if p.is_keyframe]


def main() -> None:
    out = Path(sys.argv[1])
    crf = int(sys.argv[2]) if len(sys.argv) > 2 else 18
    out.mkdir(parents=True, exist_ok=False)
    src = short_gop_clip(out / "long.mp4")
    ckpt = ModelFile.open(None)
    colorizer = Colorizer(
        open_backend("onnxruntime", ckpt, device="cpu"), size=ckpt.inference_size, chroma_gain=ckpt.chroma_gain
    )
    split, segs = _split_run(src, out, colorizer, crf=crf)
    single = colorize_file(src, out / "single.mp4", colorizer, PipelineConfig(), crf=crf).output
    uv, uv1 = read_video(split)[1], read_video(single)[1]
    seams = [sum(s.frames for s in segs[:i]) for i in range(1, len(segs))]
    ok, why = seam_ok(uv, seams)
    print(f"CRF {crf}: seam rule {'met' if ok else 'NOT met'}: {why}")
    one = changes(uv1)
    print("the single run's change at the same frames:", [round(one[s - 1], 3) for s in seams])
    print("keyframes split / single:", keyframes(split), keyframes(single))
    print(
        "split vs single, chroma PSNR per frame:", " ".join(f"{psnr(a, b):.0f}" for a, b in zip(uv, uv1, strict=True))
    )


if __name__ == "__main__":
    main()
