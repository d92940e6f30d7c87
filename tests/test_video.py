"""`rtcolor colorize` on generated clips: nothing lost (frames, pts, audio, luma), odd formats, errors."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from fractions import Fraction

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.synth import write_clip

runner = CliRunner()


def video_frames(path):
    """[(pts seconds, Y plane, U plane, rotation)] of the first video stream."""
    with av.open(str(path)) as c:
        out = []
        for f in c.decode(video=0):
            if f.format.name not in ("yuv420p", "yuvj420p", "yuv444p"):
                f = f.reformat(format="yuv420p")  # 10-bit and gray sources, for comparison
            planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size) for p in f.planes]
            out.append((Fraction(f.pts) * f.time_base, planes[0][: f.height, : f.width].copy(), planes[1], f.rotation))
        return out


def audio_packets(path):
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def colorize(args, ckpt):
    return runner.invoke(app, ["colorize", *args, "--model", ckpt, "--backend", "torch"])


@pytest.fixture(scope="module")
def vfr_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clips") / "gray_vfr.mp4"
    return write_clip(path, seconds=1.0, width=160, height=96, gray=True, vfr=True, cut_at=0.5)


def test_nothing_lost_lossless(vfr_clip, tmp_path, random_checkpoint):
    out = tmp_path / "color.mp4"
    stats = tmp_path / "stats.json"
    r = colorize([str(vfr_clip), "-o", str(out), "--crf", "0", "-k", "3", "--stats", str(stats)], random_checkpoint)
    assert r.exit_code == 0, r.output
    src, dst = video_frames(vfr_clip), video_frames(out)
    assert len(dst) == len(src) == 30
    assert [t for t, *_ in dst] == [t for t, *_ in src]  # variable frame rate kept exactly
    assert len({b - a for (a, *_), (b, *_) in zip(src, src[1:], strict=False)}) == 2  # the clip really is VFR
    for (_, y_in, _, _), (_, y_out, _, _) in zip(src, dst, strict=True):
        assert np.array_equal(y_in, y_out)  # the luma plane passes through untouched
    assert np.abs(dst[5][2].astype(int) - 128).max() > 2  # and chroma was added
    assert audio_packets(out) == audio_packets(vfr_clip) and len(audio_packets(out)) > 10
    import json

    run = json.loads(stats.read_text())["runs"][0]
    assert run["frames_out"] == 30 and run["scene_cuts"] == 1 and run["complete"]
    assert 1 + 1 <= run["keyframes"] <= 30 // 3 + 2  # every 3rd frame plus the cut
    assert not list(tmp_path.glob(".*rtcolor-tmp*"))  # the temporary file became the output


def test_compare_odd_size_rotation_and_folder(tmp_path, random_checkpoint):
    src = tmp_path / "src"
    src.mkdir()
    write_clip(src / "odd.mp4", seconds=0.3, width=97, height=61, pix_fmt="yuv444p", audio=False)
    rotated = src / "rotated.mp4"
    _rotated_copy(write_clip(tmp_path / "plain.mp4", seconds=0.3, width=64, height=48, audio=False), rotated, 90)
    out = tmp_path / "out"
    r = colorize([str(src), "-o", str(out), "--compare"], random_checkpoint)
    assert r.exit_code == 0, r.output
    frames = video_frames(out / "odd.mp4")
    assert len(frames) == 9 and frames[0][1].shape == (61, 2 * 97)  # odd size kept (4:4:4), side by side
    assert video_frames(out / "rotated.mp4")[0][3] == 90


def _rotated_copy(src, dst, degrees):
    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        s.set_display_rotation(degrees)
        for p in i.demux(video=0):
            if p.dts is not None:
                p.stream = s
                o.mux(p)


@pytest.mark.parametrize("pix_fmt", ["gray", "yuv420p10le"])
def test_gray_and_10bit_inputs(tmp_path, random_checkpoint, pix_fmt):
    try:
        clip = write_clip(tmp_path / f"{pix_fmt}.mkv", seconds=0.3, width=64, height=48, pix_fmt=pix_fmt, audio=False)
    except (av.error.FFmpegError, ValueError) as e:
        pytest.skip(f"this FFmpeg's libx264 cannot write {pix_fmt}: {e}")
    out = tmp_path / "out.mkv"
    r = colorize([str(clip), "-o", str(out)], random_checkpoint)
    assert r.exit_code == 0, r.output
    src, dst = video_frames(clip), video_frames(out)
    assert len(dst) == len(src) == 9
    assert np.abs(src[4][1].astype(int) - dst[4][1].astype(int)).mean() < 3  # luminance kept within coding


def test_truncated_input_gives_a_partial_and_non_zero_exit(tmp_path, random_checkpoint):
    clip = write_clip(tmp_path / "full.mp4", seconds=4.0, width=320, height=180, audio=False)
    broken = tmp_path / "broken.mp4"
    # moov first (faststart), as cameras and web encoders write it: a cut file still opens and
    # announces all its frames, but the media data stops halfway.
    with av.open(str(clip)) as i, av.open(str(broken), "w", options={"movflags": "faststart"}) as o:
        s = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(video=0):
            if p.dts is not None:
                p.stream = s
                o.mux(p)
    data = broken.read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.mp4"
    r = colorize([str(broken), "-o", str(out)], random_checkpoint)
    assert r.exit_code == 1, r.output
    assert "warning" in r.output
    partial = tmp_path / "out.partial.mp4"
    assert not out.exists() and partial.exists()
    assert 10 < len(video_frames(partial)) < 120


def test_clear_errors(tmp_path, random_checkpoint, vfr_clip):
    (tmp_path / "notes.mp4").write_text("not a video")
    before = vfr_clip.read_bytes()
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        c.mux(s.encode(frame))
        c.mux(s.encode())
    cases = [
        ([str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")], "no input videos"),
        ([str(tmp_path / "notes.mp4"), "-o", str(tmp_path / "o.mp4")], "not a video"),
        ([str(audio_only), "-o", str(tmp_path / "o.mp4")], "no video stream"),
        ([str(vfr_clip), "-o", str(tmp_path / "notes.mp4" / "o.mp4")], "cannot write"),
        ([str(vfr_clip), "-o", str(vfr_clip), "--force"], "overwrite an input"),
        ([str(vfr_clip), "-o", str(tmp_path / "o.mp4"), "--codec", "mpeg9"], "not supported"),
        ([str(vfr_clip), "-o", str(tmp_path / "o.mp4"), "-k", "0"], "at least 1"),
        ([str(vfr_clip), "-o", str(tmp_path / "o.txt")], "name an .mp4, .mkv or .mov output"),
        ([str(vfr_clip), "-o", str(tmp_path / "o.mp4"), "--stats", str(vfr_clip), "--force"], "name a .json file"),
    ]
    for args, message in cases:
        r = colorize(args, random_checkpoint)
        assert r.exit_code != 0, (args, r.output)
        assert message in " ".join(r.output.split()), (message, r.output)  # rich wraps long lines
        assert "Traceback" not in r.output
    assert vfr_clip.read_bytes() == before  # the input survives every failure, --force included
    # Two inputs with one name into one folder: the second is refused, even with --force, and the
    # first output is kept (before, --force let the second replace the first).
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "clip.mp4").write_bytes(before)
    r = colorize(
        [str(tmp_path / "a" / "clip.mp4"), str(tmp_path / "b" / "clip.mp4"), "-o", str(tmp_path / "both"), "--force"],
        random_checkpoint,
    )
    assert r.exit_code == 1 and "another input already wrote" in " ".join(r.output.split())
    assert len(video_frames(tmp_path / "both" / "clip.mp4")) > 0 and len(list((tmp_path / "both").iterdir())) == 1


@pytest.mark.slow
def test_sigterm_finalizes_a_playable_partial(tmp_path, random_checkpoint):
    clip = write_clip(tmp_path / "long.mp4", seconds=20.0, width=320, height=180, audio=True)
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "realtime_color.cli", "colorize", str(clip), "-o", str(out)]
    proc = subprocess.Popen([*cmd, "--model", random_checkpoint, "--backend", "torch", "-k", "1"], cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.rtcolor-tmp*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.5)  # let some frames through
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 130
    partial = tmp_path / "out.partial.mp4"
    assert partial.exists() and not out.exists()
    n = len(video_frames(partial))
    assert 0 < n < 600
    assert audio_packets(partial)  # the sound made it too


def test_clips_over_real_photos_show_the_photos(tmp_path):
    """`write_clip(photos=...)` (the held-out video check) films the given pictures, one per side of the cut."""
    red, blue = np.zeros((90, 200, 3), np.uint8), np.zeros((300, 240, 3), np.uint8)
    red[..., 0], blue[..., 2] = 200, 200
    path = write_clip(tmp_path / "p.mp4", seconds=1, width=160, height=96, cut_at=0.5, audio=False, photos=[red, blue])
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 30 and frames[0].shape == (96, 160, 3)
    first, last = frames[0].reshape(-1, 3).mean(0), frames[-1].reshape(-1, 3).mean(0)
    # Mostly the photo's color (the crossing objects cover a part of the frame).
    assert first[0] > first[2] + 60 and last[2] > last[0] + 60
    gray = write_clip(tmp_path / "g.mp4", seconds=0.2, width=64, height=48, audio=False, photos=[red[..., 0]])
    with av.open(str(gray)) as c:
        g = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    # A gray (2-D) picture is filmed too: mostly its own level (200), with equal channels.
    assert abs(np.median(g) - 200) < 10 and np.median(np.abs(g[..., 0] - g[..., 2])) < 6
