"""One way in: the source factory's table, its errors, and every command reading the same clip and
pictures through it into the same frames with the same color metadata."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

import realtime_color.media.sources as sources
from realtime_color.cli import app
from realtime_color.media.decode import FileSource, StreamSource
from realtime_color.media.frames import Policy, Status
from realtime_color.media.images import write_image
from realtime_color.media.sources import (
    SOURCE_HELP,
    SOURCES,
    CvSource,
    ImageSource,
    LiveSource,
    SourceError,
    SynthSource,
    open_source,
    parse_source,
)
from realtime_color.media.synth import write_clip

from .conftest import scene

runner = CliRunner()


def model(ckpt):
    return ["--model", ckpt, "--backend", "torch"]


def test_each_uri_form_gets_its_class(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", seconds=0.2, width=64, height=48, audio=False)
    pics = tmp_path / "pics"
    write_image(pics / "p.png", scene(48, 64))
    table = {
        "0": CvSource,
        "/dev/video2": CvSource,
        "rtsp://cam/stream": StreamSource,
        "http://cam/mjpg": StreamSource,
        "udp://127.0.0.1:5000": StreamSource,
        "srt://host:9000": StreamSource,
        str(clip): FileSource,
        str(pics): ImageSource,
        str(pics / "*.png"): ImageSource,
        str(pics / "p.png"): ImageSource,
        "synth://?fps=10&size=64x48": SynthSource,
    }
    for uri, cls in table.items():
        assert SOURCES[parse_source(uri).kind] is cls, uri
    # What can be opened here is opened: a file and pictures as they are (file policy), a camera
    # stand-in wrapped to be reopened when it fails (live policy).
    for uri in (str(clip), str(pics), "synth://?fps=10&size=64x48"):
        src = open_source(uri)
        try:
            inner = src.source if isinstance(src, LiveSource) else src
            assert isinstance(inner, table[uri]), uri
            assert src.policy is (Policy.LIVE if uri.startswith("synth") else Policy.FILE)
            r = src.read()
            assert r.status is Status.FRAME and r.item.y.shape == (48, 64)
        finally:
            src.close()


@pytest.mark.parametrize("uri", ["ftp://host/clip.mp4", "gopher://x", "nowhere/missing.mp4"])
def test_a_bad_uri_is_one_error_naming_it_and_the_accepted_forms(uri):
    with pytest.raises(SourceError) as e:
        open_source(uri)
    assert repr(uri) in str(e.value) and SOURCE_HELP in str(e.value)
    r = runner.invoke(app, ["stream", uri, "--out", "display"])
    assert r.exit_code == 2 and "Traceback" not in r.output and uri in " ".join(r.output.split())


def test_a_file_reads_with_a_status_and_ends_with_end(tmp_path):
    clip = write_clip(tmp_path / "a.mp4", seconds=0.5, width=64, height=48, audio=True)
    src = open_source(clip, packets=True)
    seen = {s: 0 for s in Status}
    while (r := src.read()).status is not Status.END:
        seen[r.status] += 1
    src.close()
    assert seen[Status.FRAME] == 15 and seen[Status.PACKET] > 0 and seen[Status.ERROR] == 0


class Recorder:
    """Wraps open_source: every picture any command reads is noted with its color metadata."""

    def __init__(self, monkeypatch):
        self.frames: list[tuple] = []
        real = sources.open_source

        def recording(*args, **kw):
            src = real(*args, **kw)
            read = src.read

            def noted(timeout: float = 1.0):
                r = read(timeout)
                if r.status is Status.FRAME:
                    p = r.item
                    pixels = None if p.pixels is None else hashlib.sha1(p.pixels.tobytes()).hexdigest()
                    y = hashlib.sha1(p.y.tobytes()).hexdigest()
                    self.frames.append((p.name and p.name.rsplit("/", 1)[-1], y, p.matrix, p.full_range, pixels))
                return r

            src.read = noted
            return src

        monkeypatch.setattr(sources, "open_source", recording)

    def take(self) -> list[tuple]:
        out, self.frames = self.frames, []
        return out


def test_every_command_reads_the_same_frames_and_color_metadata(tmp_path, random_checkpoint, monkeypatch):
    from realtime_color.training.config import FootageConfig
    from realtime_color.training.footage import sample_frames

    clip = write_clip(tmp_path / "clip.mp4", seconds=1.0, width=96, height=64, gray=False, audio=False)
    pics = tmp_path / "pics"
    for i in range(3):
        write_image(pics / f"p{i}.png", scene(64, 96, seed=i))
    rec = Recorder(monkeypatch)

    video = {}
    r = runner.invoke(app, ["colorize", str(clip), "-o", str(tmp_path / "c.mp4"), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    video["colorize"] = rec.take()
    args = ["stream", str(clip), "--no-pace", "--out", str(tmp_path / "s.mp4"), *model(random_checkpoint)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    video["stream"] = rec.take()
    r = runner.invoke(app, ["eval", str(clip), "--json", *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    video["eval"] = rec.take()
    sample_frames([str(clip)], FootageConfig(), 0.2, log=lambda m: None)
    video["adapt"] = rec.take()
    first = video["colorize"]
    assert len(first) == 30 and {f[2:4] for f in first} == {("bt601", False)}  # as the file says: video range
    for command, frames in video.items():
        assert frames == first, command

    stills = {}
    r = runner.invoke(app, ["image", str(pics), "-o", str(tmp_path / "out"), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    stills["image"] = rec.take()
    r = runner.invoke(app, ["eval", str(pics), "--json", *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    stills["eval"] = rec.take()
    args = ["stream", str(pics), "--fps", "30", "--out", str(tmp_path / "p.mp4"), *model(random_checkpoint)]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    stills["stream"] = rec.take()
    sample_frames([str(pics)], FootageConfig(), 0.2, log=lambda m: None)
    stills["adapt"] = rec.take()
    first = stills["image"]
    assert [f[0] for f in first] == ["p0.png", "p1.png", "p2.png"] and {f[2:4] for f in first} == {("bt601", True)}
    for command, frames in stills.items():
        assert frames == first, command


def test_colorize_and_stream_give_the_same_chroma(tmp_path, monkeypatch):
    """The same gray clip through `colorize` and `stream --no-pace`: one decoder, one color path,
    so the chroma planes handed to the encoder are the same (compared before encoding: x264's rate
    control sees the two commands' different timestamps and rounds a code or two differently)."""
    from realtime_color.media.video import FileSink

    written: list = []
    real = FileSink.write

    def keep(self, pic):
        written.append((pic.matrix, pic.full_range, pic.u.copy(), pic.v.copy()))
        return real(self, pic)

    monkeypatch.setattr(FileSink, "write", keep)
    clip = write_clip(tmp_path / "gray.mp4", seconds=1.0, width=160, height=96, gray=True, cut_at=0.5, audio=False)
    got = {}
    for name, args in {
        "colorize": ["colorize", str(clip), "-o", str(tmp_path / "c.mp4")],
        "stream": ["stream", str(clip), "--no-pace", "--out", str(tmp_path / "s.mp4")],
    }.items():
        r = runner.invoke(app, args)  # the default model: really in color
        assert r.exit_code == 0, r.output
        got[name], written = written, []
    a, b = got["colorize"], got["stream"]
    assert len(a) == len(b) == 30 and {(m, f) for m, f, *_ in a} == {("bt601", False)}
    assert max(np.ptp(u) for _, _, u, _ in a) > 10  # really in color
    for (*meta_a, ua, va), (*meta_b, ub, vb) in zip(a, b, strict=True):
        assert meta_a == meta_b
        assert np.abs(ua.astype(int) - ub).max() <= 1 and np.abs(va.astype(int) - vb).max() <= 1
