"""No output of any command replaces one of its inputs, however it is named: the stream command for
1, 2 and 4 cameras, with and without --force, through a symlink and a hard link; and what is opened
before a model that fails to load is closed again."""

from __future__ import annotations

import os
import socket

import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.outputs import Inputs, OutputError
from realtime_color.media.synth import write_clip

runner = CliRunner()


def clips(folder, n):
    return [write_clip(folder / f"c{i}.mp4", seconds=0.3, width=64, height=48, audio=False) for i in range(n)]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_inputs_know_a_file_by_any_name(tmp_path):
    a = tmp_path / "a.mp4"
    a.write_bytes(b"x")
    (tmp_path / "sym.mp4").symlink_to(a)
    os.link(a, tmp_path / "hard.mp4")
    inputs = Inputs([a, "0", "rtsp://cam/x"])
    for name in ("a.mp4", "sym.mp4", "hard.mp4", "./a.mp4"):
        assert inputs.holding(tmp_path / name) == a, name
    assert inputs.holding(tmp_path / "b.mp4") is None
    with pytest.raises(OutputError, match=r"hard\.mp4 would overwrite an input, .*a\.mp4 \(the same file\)"):
        inputs.refuse(tmp_path / "hard.mp4", "--out")
    assert Inputs([tmp_path / "sym.mp4"]).holding(a) == tmp_path / "sym.mp4"  # the input named by its link


@pytest.mark.parametrize("n", [1, 2, 4])
@pytest.mark.parametrize("force", [False, True])
def test_stream_never_records_over_an_input(tmp_path, monkeypatch, n, force):
    monkeypatch.chdir(tmp_path)
    srcs = clips(tmp_path, n)
    before = [p.read_bytes() for p in srcs]
    (tmp_path / "linked").symlink_to(tmp_path, target_is_directory=True)  # a folder that is the inputs' folder
    (tmp_path / "hard").mkdir()
    for p in srcs:
        os.link(p, tmp_path / "hard" / p.name)
    (tmp_path / "sym.mp4").symlink_to(srcs[0])
    names = [p.name for p in srcs]
    extra = ["--force"] if force else []
    outs = ["{name}.mp4", "linked/{name}.mp4", "hard/{name}.mp4"] + (["sym.mp4", "c0.mp4"] if n == 1 else [])
    for out in outs:
        r = runner.invoke(app, ["stream", *names, "--out", out, "--duration", "1", *extra])
        text = flat(r.output)
        assert r.exit_code == 2 and "would overwrite an input" in text and "c0.mp4" in text, (out, r.output)
        assert [p.read_bytes() for p in srcs] == before, out
    # an input named through its link is still that file
    r = runner.invoke(app, ["stream", "sym.mp4", *names[1:], "--out", "{name}.mp4" if n > 1 else "c0.mp4", *extra])
    assert r.exit_code == 2 and "would overwrite an input" in flat(r.output), r.output
    # --stats is a destination too
    os.link(srcs[0], tmp_path / "stats.json")
    r = runner.invoke(app, ["stream", *names, "--out", "rec/{name}.mp4", "--stats", "stats.json", *extra])
    assert r.exit_code == 2 and "--stats stats.json would overwrite an input" in flat(r.output), r.output
    assert [p.read_bytes() for p in srcs] == before
    assert not (tmp_path / "rec").exists()  # refused before anything was made


def test_the_reported_command_refuses_and_keeps_both_inputs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a, b = (write_clip(tmp_path / f"{n}.mp4", seconds=0.3, width=64, height=48, audio=False) for n in "ab")
    before = a.read_bytes(), b.read_bytes()
    r = runner.invoke(app, ["stream", "a.mp4", "b.mp4", "--out", "{name}.mp4", "--force"])
    assert r.exit_code == 2 and "--out a.mp4 would overwrite an input, a.mp4" in flat(r.output), r.output
    assert (a.read_bytes(), b.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]


def test_one_output_named_twice_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    clips(tmp_path, 2)
    r = runner.invoke(app, ["stream", "c0.mp4", "c1.mp4", "--out", "r/{name}.mp4", "--out", "r/./{name}.mp4"])
    assert r.exit_code == 2 and "is named twice" in flat(r.output), r.output


@pytest.mark.parametrize("n", [1, 2])
def test_a_model_that_fails_to_load_closes_every_output(tmp_path, monkeypatch, n):
    monkeypatch.chdir(tmp_path)
    srcs = clips(tmp_path, n)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model at all")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = "rec/{name}.mp4" if n > 1 else "rec.mp4"
    args = ["stream", *map(str, srcs), "--out", out, "--out", f"http://127.0.0.1:{port}", "--model", str(bad)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2 and "error" in r.output and "Traceback" not in r.output, r.output
    with socket.socket() as s:  # the preview's port is free again
        s.bind(("127.0.0.1", port))
    left = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert left == sorted(["bad.safetensors", *(p.name for p in srcs)]), left
