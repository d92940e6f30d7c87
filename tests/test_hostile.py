"""Hostile inputs, second round: damaged files, names at the file system's limit,
read-only and missing output folders, odd sizes, size changes, EXIF rotation, alpha, rotation."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.images import read_image, write_image
from realtime_color.media.synth import write_clip

from .conftest import scene

runner = CliRunner()
LONG = "b" * 246  # + ".mp4" / ".png": a 250-byte name, valid on every common file system


def text(r) -> str:
    return " ".join(r.output.split())  # rich wraps long lines


def frames(path) -> list:
    with av.open(str(path)) as c:
        return [f for f in c.decode(video=0)]


def damage(clip: Path, out: Path, at: float = 1 / 3, size: int = 2000) -> Path:
    """Overwrite ``size`` bytes of the media data: the file opens, its middle does not decode."""
    data = bytearray(clip.read_bytes())
    start = int(len(data) * at)
    data[start : start + size] = bytes(0xFF if i % 2 else 0x17 for i in range(size))
    out.write_bytes(bytes(data))
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    gray = write_clip(d / "ok.mp4", seconds=1.0, width=160, height=96, audio=False)
    color = write_clip(d / "color.mp4", seconds=1.0, width=160, height=96, audio=False, gray=False)
    return {
        "ok": gray,
        "damaged": damage(gray, d / "damaged.mp4"),
        # later in the file, so the frames before the damage keep their color to score
        "damaged_color": damage(color, d / "damaged_color.mp4", at=0.7, size=300),
    }


def model(ckpt):
    return ["--model", ckpt, "--backend", "torch"]


# 1 ------------------------------------------------------------------------------------------------
def test_stream_ends_a_damaged_file_once_with_a_warning(clips, tmp_path, random_checkpoint):
    rec, stats = tmp_path / "rec.mp4", tmp_path / "s.json"
    before = clips["damaged"].read_bytes()
    t0 = time.monotonic()
    args = ["stream", str(clips["damaged"]), "--out", str(rec), "--no-pace", "--duration", "20", "--stats", str(stats)]
    r = runner.invoke(app, [*args, *model(random_checkpoint)])
    assert r.exit_code == 1, r.output
    assert time.monotonic() - t0 < 15  # it ended at the file's end, not at --duration
    assert "warning" in r.output and "undecodable" in text(r) and "Traceback" not in r.output
    s = json.loads(stats.read_text())
    assert s["reconnects"] == 0 and s["problems"]  # before: 53 reconnects, the file replayed
    n = len(frames(rec))
    assert 0 < n == s["frames_out"] < 30  # each decodable frame once
    assert clips["damaged"].read_bytes() == before


def test_stream_skips_an_unreadable_picture_in_a_folder(tmp_path, random_checkpoint):
    pics = tmp_path / "pics"
    write_image(pics / "a.png", scene())
    (pics / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    write_image(pics / "c.png", scene(seed=1))
    rec = tmp_path / "rec.mp4"
    r = runner.invoke(app, ["stream", str(pics), "--out", str(rec), "--fps", "20", *model(random_checkpoint)])
    assert r.exit_code == 1 and "b.png" in text(r) and "warning" in r.output, r.output
    assert len(frames(rec)) == 2  # before: the source stage failed at b.png


# 2 ------------------------------------------------------------------------------------------------
def test_a_folder_with_a_long_name_and_a_corrupt_file_finishes_the_others(clips, tmp_path, random_checkpoint):
    src = tmp_path / "in"
    src.mkdir()
    ok = clips["ok"].read_bytes()
    for name in ("a.mp4", f"{LONG}.mp4", "c.mp4"):
        (src / name).write_bytes(ok)
    (src / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(3000))
    out = tmp_path / "out"
    r = runner.invoke(app, ["colorize", str(src), "-o", f"{out}/", *model(random_checkpoint)])
    assert r.exit_code == 1, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(["a.mp4", f"{LONG}.mp4", "c.mp4"])  # no leftovers
    assert all(len(frames(p)) == 30 for p in out.iterdir())
    assert r.output.count("failed") == 1 and "corrupt.mp4" in text(r)
    assert "unexpected" not in r.output and "Traceback" not in r.output


def _read_only(monkeypatch, folder: Path):
    """A read-only folder, as the file system says it (root ignores permission bits)."""
    real = os.open

    def refuse(path, *a, **k):
        if Path(path).parent == folder:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", refuse)


def test_a_read_only_output_folder_is_named_before_any_work(clips, tmp_path, random_checkpoint, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    _read_only(monkeypatch, ro)
    for args in (
        ["colorize", str(clips["ok"]), "-o", str(ro / "x.mp4")],
        ["colorize", str(clips["ok"]), str(clips["damaged"]), "-o", str(ro)],
        ["stream", str(clips["ok"]), "--out", str(ro / "rec.mp4")],
        ["image", str(tmp_path / "p.png"), "-o", str(ro)],
    ):
        write_image(tmp_path / "p.png", scene())
        r = runner.invoke(app, [*args, *model(random_checkpoint)])
        assert r.exit_code == 2, (args, r.output)
        assert f"{ro}" in text(r) and "Read-only file system (choose another folder)" in text(r), r.output
        assert "unexpected" not in r.output
    assert list(ro.iterdir()) == []


def test_a_clean_up_never_hides_the_failure(tmp_path):
    from realtime_color.media.outputs import discard, explain

    discard(tmp_path / ("x" * 300))  # "File name too long" from unlink: ignored, as a clean-up must
    message = explain(tmp_path / "o.mp4", OSError(errno.ENAMETOOLONG, "File name too long"))
    assert message == f"cannot write {tmp_path / 'o.mp4'}: File name too long (choose a shorter name)"


# 3 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["colorize", "stream"])
def test_stats_to_a_missing_folder_is_refused_before_the_video(clips, tmp_path, random_checkpoint, command):
    out = tmp_path / "color.mp4"
    stats = tmp_path / "missing" / "s.json"
    args = [command, str(clips["ok"]), "--out" if command == "stream" else "-o", str(out), "--stats", str(stats)]
    extra = ["--no-pace"] if command == "stream" else []
    r = runner.invoke(app, [*args, *extra, *model(random_checkpoint)])
    assert r.exit_code == 2, r.output
    assert "--stats" in text(r) and "does not exist" in text(r) and "unexpected" not in r.output
    assert list(tmp_path.iterdir()) == []  # before: the video was written, then "unexpected OSError"


# 4 ------------------------------------------------------------------------------------------------
def test_image_takes_a_250_byte_name(tmp_path, random_checkpoint):
    src = tmp_path / "in"
    write_image(src / f"{LONG}.png", scene())
    out = tmp_path / "out"
    r = runner.invoke(app, ["image", str(src), "-o", str(out), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    assert [p.name for p in out.iterdir()] == [f"{LONG}.png"]
    from realtime_color.media.images import atomic_write
    from realtime_color.media.outputs import temp_path

    assert len(temp_path(out / f"{LONG}.png", "partial").name.encode()) <= 255
    atomic_write(tmp_path / f"{LONG}.json", "{}")  # the stats writer too
    assert (tmp_path / f"{LONG}.json").read_text() == "{}"


def test_partial_and_temporary_video_names_fit(tmp_path):
    from realtime_color.media.video import partial_name

    name = tmp_path / f"{LONG}.mp4"
    assert len(partial_name(name).name.encode()) <= 255
    assert partial_name(tmp_path / "clip.mp4").name == "clip.partial.mp4"
    assert partial_name(name) != partial_name(tmp_path / f"{LONG[:-1]}c.mp4")  # two long names stay apart


# 5 ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("hw", [(359, 641), (240, 321), (1, 1)])
def test_stream_records_odd_sizes(tmp_path, hw):
    from realtime_color.media.frames import picture_from_bgr, planes_from_rgb
    from realtime_color.media.sinks import RecordingSink

    h, w = hw
    sink = RecordingSink(tmp_path / "rec.mp4")
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = 200
    for i in range(3):
        pic = picture_from_bgr(rgb[..., ::-1], i)  # what LiveSource hands over
        _, pic.u, pic.v = planes_from_rgb(rgb, pic.matrix, pic.full_range, pic.subsampling)
        sink.write(pic)
    sink.close()
    got = frames(tmp_path / "rec.mp4")
    assert len(got) == 3 and (got[0].height, got[0].width) == hw


# 6 ------------------------------------------------------------------------------------------------
def test_eval_fails_a_damaged_video_unless_partial_is_allowed(clips, random_checkpoint):
    r = runner.invoke(app, ["eval", str(clips["damaged_color"]), "--json", *model(random_checkpoint)])
    assert r.exit_code != 0, r.output
    assert "damaged" in text(r) and "--allow-partial" in text(r)
    r = runner.invoke(
        app, ["eval", str(clips["damaged_color"]), "--json", "--allow-partial", *model(random_checkpoint)]
    )
    assert r.exit_code == 0, r.output
    assert "warning" in r.output and '"partial": 1' in r.output


# 7 ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def size_change(tmp_path_factory):
    """An MPEG-TS file whose picture size changes halfway (320x240, then 240x180)."""
    d = tmp_path_factory.mktemp("sizes")
    a = write_clip(d / "a.ts", seconds=0.5, width=320, height=240, audio=False, gray=False)
    b = write_clip(d / "b.ts", seconds=0.5, width=240, height=180, audio=False, gray=False, seed=1)
    both = d / "both.ts"
    with av.open(str(a)) as ia, av.open(str(b)) as ib, av.open(str(both), "w") as o:
        s = o.add_stream_from_template(ia.streams.video[0])
        shift = 0
        for part in (ia, ib):  # one stream, time running on: the size changes, the clock does not
            last = 0
            for p in part.demux(video=0):
                if p.dts is None:
                    continue
                last = max(last, p.pts + p.duration)
                p.pts, p.dts, p.stream = p.pts + shift, p.dts + shift, s
                o.mux(p)
            shift += last
    sizes = [(f.width, f.height) for f in frames(both)]
    assert (320, 240) in sizes and (240, 180) in sizes  # the file really changes size
    return both, len(sizes)


def test_a_size_change_inside_a_file_is_scaled_with_a_warning(size_change, tmp_path, random_checkpoint):
    both, n = size_change
    out = tmp_path / "o.mkv"
    r = runner.invoke(app, ["colorize", str(both), "-o", str(out), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    assert "warning" in r.output and "changes from 320x240 to 240x180" in text(r)
    got = frames(out)
    assert len(got) == n and {(f.width, f.height) for f in got} == {(320, 240)}
    r = runner.invoke(app, ["eval", str(both), "--json", *model(random_checkpoint)])
    assert r.exit_code == 0, r.output  # before: a numpy broadcasting error
    assert "changes from 320x240 to 240x180" in text(r)


# 8 ------------------------------------------------------------------------------------------------
def test_exif_orientation_is_applied_on_read(tmp_path, random_checkpoint):
    from PIL import Image

    stored = np.zeros((40, 60, 3), np.uint8)
    stored[:10, :10] = (255, 0, 0)  # red at the stored top left
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: portrait
    path = tmp_path / "portrait.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    upright = read_image(path)
    assert upright.shape == (60, 40, 3)
    assert upright[:10, -10:, 0].mean() > 200 and upright[:10, :10, 0].mean() < 50  # red now at the top right
    r = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "out"), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    assert read_image(tmp_path / "out" / "portrait.png").shape == (60, 40, 3)


# 9 ------------------------------------------------------------------------------------------------
def test_transparency_is_kept_or_its_loss_is_said(tmp_path, random_checkpoint):
    rgba = np.dstack([scene(), np.zeros((96, 128), np.uint8)])
    rgba[:, 64:, 3] = 255  # the left half transparent
    path = tmp_path / "logo.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    r = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "out"), *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    got = cv2.imread(str(tmp_path / "out" / "logo.png"), cv2.IMREAD_UNCHANGED)
    assert got.shape == (96, 128, 4) and np.array_equal(got[..., 3], rgba[..., 3])
    r = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / "logo.jpg"), *model(random_checkpoint)])
    assert r.exit_code == 0 and "transparency is dropped" in text(r), r.output


# 10 -----------------------------------------------------------------------------------------------
def test_a_stream_recording_keeps_the_source_rotation(tmp_path, random_checkpoint):
    plain = write_clip(tmp_path / "plain.mp4", seconds=0.5, width=64, height=48, audio=False)
    rotated = tmp_path / "phone.mp4"
    with av.open(str(plain)) as i, av.open(str(rotated), "w") as o:
        s = o.add_stream_from_template(i.streams.video[0])
        s.set_display_rotation(90)
        for p in i.demux(video=0):
            if p.dts is not None:
                p.stream = s
                o.mux(p)
    rec = tmp_path / "rec.mp4"
    r = runner.invoke(app, ["stream", str(rotated), "--out", str(rec), "--no-pace", *model(random_checkpoint)])
    assert r.exit_code == 0, r.output
    assert frames(rec)[0].rotation == frames(rotated)[0].rotation == 90


# minor --------------------------------------------------------------------------------------------
def test_eval_says_too_small_and_no_video_stream(tmp_path, random_checkpoint):
    write_image(tmp_path / "tiny.png", scene(2, 2))
    tone = tmp_path / "tone.m4a"
    with av.open(str(tone), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 48000
        c.mux(s.encode(frame))
        c.mux(s.encode())
    r = runner.invoke(app, ["eval", str(tmp_path / "tiny.png"), str(tone), *model(random_checkpoint)])
    assert r.exit_code != 0
    assert "2x2 is too small to score" in text(r) and "has no video stream" in text(r), r.output


def test_progress_sees_the_last_frame(clips, tmp_path, random_checkpoint):
    from realtime_color.model.weights import load_checkpoint
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer
    from realtime_color.video.stages import PipelineConfig, colorize_file

    colorizer = Colorizer(open_backend("torch", load_checkpoint(random_checkpoint), device="cpu"), size=64)
    seen = []
    colorize_file(
        clips["ok"], tmp_path / "o.mp4", colorizer, PipelineConfig(), on_poll=lambda p: seen.append(p.stats.frames_out)
    )
    assert seen[-1] == 30  # before: the bar could stop at 29/30
