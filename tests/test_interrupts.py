"""Ctrl-C and SIGTERM: before the first frame nothing is left; after it a playable partial; a
second Ctrl-C while finalizing waits for the file and still exits 130; a third says what was lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import av
import pytest

from realtime_color.cli.signals import finishing
from realtime_color.media.synth import write_clip
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.video.stages import PipelineConfig, colorize_file
from realtime_color.video.temporal import TemporalConfig


def test_ctrl_c_before_the_first_frame_leaves_no_file(tmp_path, monkeypatch, random_checkpoint):
    from realtime_color.media.video import FileSink
    from realtime_color.model.weights import load_checkpoint
    from realtime_color.runtime.backends import open_backend

    clip = write_clip(tmp_path / "in.mp4", seconds=1.0, width=64, height=48, audio=True)
    out = tmp_path / "out" / "x.mp4"
    out.parent.mkdir()
    monkeypatch.setattr(FileSink, "write", lambda self, pic: None)  # no frame reaches the encoder in time

    def ctrl_c(pipe):
        raise KeyboardInterrupt

    colorizer = Colorizer(open_backend("torch", load_checkpoint(random_checkpoint), device="cpu"), size=64)
    cfg = PipelineConfig(temporal=TemporalConfig(keyframe_interval=1))
    with pytest.raises(KeyboardInterrupt):
        colorize_file(clip, out, colorizer, cfg, on_poll=ctrl_c)
    assert list(out.parent.iterdir()) == []  # no partial, no temporary file


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_second_signal_while_finishing_waits_and_a_third_abandons(sig, capsys):
    lines = []
    before = signal.getsignal(signal.SIGINT)  # whatever an earlier in-process command left
    with finishing(log=lines.append, pending=["rec.mp4"]) as asked:
        os.kill(os.getpid(), sig)
        time.sleep(0.05)  # the handler runs between bytecodes: this block goes on
        done = True
    assert done and asked.count == 1 and "finishing the output files first" in lines[0]
    lines.clear()
    with pytest.raises(KeyboardInterrupt):
        with finishing(log=lines.append, pending=["rec.mp4"]):
            os.kill(os.getpid(), sig)
            time.sleep(0.05)
            os.kill(os.getpid(), sig)
            time.sleep(0.05)
            pytest.fail("the third signal should have ended the block")
    assert "lost: rec.mp4" in lines[-1]
    assert signal.getsignal(signal.SIGINT) is before  # put back as it was


def run_cli(cwd, *args):
    env = {**os.environ, "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "realtime_color", *args]
    return subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.slow
def test_ctrl_c_at_start_and_twice_after_the_first_frame(tmp_path, random_checkpoint):
    write_clip(tmp_path / "clip.mp4", seconds=30.0, width=160, height=96, audio=True)
    args = ["colorize", "clip.mp4", "-o", "out.mp4", "--model", random_checkpoint, "--backend", "torch"]
    args += ["--preset", "ultrafast"]  # no lookahead: packets reach the file from the first frames
    p = run_cli(tmp_path, *args)
    time.sleep(0.3)  # importing, or loading the model: nothing is written yet
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130 and "Traceback" not in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["clip.mp4"], err

    p = run_cli(tmp_path, *args)
    deadline = time.monotonic() + 120
    while not any(x.name.startswith(".out") and x.stat().st_size > 1000 for x in tmp_path.iterdir()):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()[1]
        time.sleep(0.05)  # frames are being written
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130 and "Traceback" not in err, err
    assert sorted(x.name for x in tmp_path.iterdir()) == ["clip.mp4", "out.partial.mp4"], err
    with av.open(str(tmp_path / "out.partial.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("cameras", [1, 2])
def test_stream_twice_interrupted_finishes_its_recordings(tmp_path, random_checkpoint, cameras):
    srcs = [f"synth://?fps=15&size=160x96&seed={i}" for i in range(cameras)]
    out = "rec.mp4" if cameras == 1 else "rec_{name}.mp4"
    args = ["stream", *srcs, "--out", out, "--model", random_checkpoint, "--backend", "torch", "--preset", "ultrafast"]
    p = run_cli(tmp_path, *args, "--report-every", "0")
    deadline = time.monotonic() + 120
    while not any(x.name.startswith(".rec") and x.stat().st_size > 1000 for x in tmp_path.iterdir()):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()[1]
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=120)[1]
    assert p.returncode == 130 and "Traceback" not in err, err
    recs = sorted(x for x in tmp_path.iterdir() if x.suffix == ".mp4")
    assert len(recs) == cameras and not any(x.name.startswith(".") for x in tmp_path.iterdir()), err
    for rec in recs:
        with av.open(str(rec)) as c:
            assert sum(1 for _ in c.decode(video=0)) >= 1
