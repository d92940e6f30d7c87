"""Each file of a colorize batch starts from a clean state: a batch of files that differ in rate,
range (a full-range MJPEG AVI) and start time gives every file the timestamps of its single run."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from typer.testing import CliRunner

from realtime_color.cli import app

runner = CliRunner()


def make(path, codec: str, pix: str, fps: int, n: int, start: int = 0, w: int = 96, h: int = 64):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, pix
        s.time_base = Fraction(1, fps)
        if pix.startswith("yuvj"):
            s.codec_context.color_range = 2  # full range, as MJPEG cameras record
        for i in range(n):
            img = np.full((h, w, 3), (40 + 9 * i) % 255, np.uint8)
            img[h // 3 :, (3 * i) % w :] = 200
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format=pix)
            frame.pts, frame.time_base = start + i, s.time_base
            c.mux(s.encode(frame))
        c.mux(s.encode())
    return path


def times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def test_a_batch_gives_every_file_the_timestamps_of_its_single_run(tmp_path, random_checkpoint):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    files = [
        make(corpus / "a_30fps.mp4", "libx264", "yuv420p", 30, 20),
        make(corpus / "b_fullrange.avi", "mjpeg", "yuvj420p", 15, 12),
        make(corpus / "c_starts_late.mkv", "libx264", "yuv420p", 25, 15, start=50),  # first frame at 2 s
        make(corpus / "d_10fps.mp4", "libx264", "yuv420p", 10, 8),
    ]
    common = ["--model", random_checkpoint, "--backend", "torch", "--size", "64"]
    r = runner.invoke(app, ["colorize", str(corpus), "-o", str(tmp_path / "batch"), *common])
    assert r.exit_code == 0, r.output
    for f in files:
        single = tmp_path / "single" / f.name
        r = runner.invoke(app, ["colorize", str(f), "-o", str(single), *common])
        assert r.exit_code == 0, r.output
        got, alone, source = times(tmp_path / "batch" / f.name), times(single), times(f)
        assert got == alone, (f.name, got[:4], alone[:4])
        assert len(got) == len(source), f.name
        if f.suffix == ".avi":  # FFmpeg reads H.264 in AVI one frame late; in order, one frame apart
            step = 1 / 15
            assert all(abs(b - a - step) < 1e-6 for a, b in zip(got, got[1:], strict=False)), got
            assert abs(got[0] - source[0]) <= step + 1e-6
        else:
            assert np.allclose(got, source, atol=1e-3), (f.name, got[:4], source[:4])
