"""`rtcolor bench` end to end on a tiny clip: every row timed, JSON complete, nothing left behind."""

from __future__ import annotations

import json
import tempfile

from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.synth import write_clip

runner = CliRunner()


def test_bench_json_rows_and_no_temporary_files_left(tmp_path, random_checkpoint, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where bench puts its clip and outputs
    clip = write_clip(tmp_path / "c.mp4", seconds=1.0, width=96, height=64, audio=False)
    # 48x32 is WxH, as every size on the command line; --batch (before 0.2) still works beside --batch-size
    args = ["bench", "--backend", "torch", "--net-size", "48x32", "--batch", "1", "--batch-size", "2", "--runs", "2"]
    args += ["--model", random_checkpoint, "--clip", str(clip), "--naive-frames", "3", "--no-peers", "--json"]
    args += ["--whole-runs", "1"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    result = json.loads(r.stdout[r.stdout.index("{") :])
    model_rows = result["rows"]
    assert [(row["backend"], row["batch"], row["height"], row["width"]) for row in model_rows] == [
        ("torch", 1, 32, 48),
        ("torch", 2, 32, 48),
    ]
    assert all(row["median_ms"] > 0 for row in model_rows)
    jobs = result["end_to_end"]
    assert len(jobs) == 3 and all(job["fps"] > 0 and job["clip"] == str(clip) for job in jobs)
    assert [job["frames"] for job in jobs] == [30, 30, 3]  # transcode and ours: the whole clip; naive: 3
    whole = {row["name"].split(",")[0].split(" (")[0]: row for row in result["whole_process"]}
    assert set(whole) == {"rtcolor image", "plain decode + libx264 veryfast", "rtcolor colorize"}
    ours = whole["rtcolor colorize"]
    assert ours["frames"] == 30 and 0 < ours["first_output_s"] < ours["seconds"] and ours["x_transcode"] > 0
    assert list(scratch.iterdir()) == []  # 720p runs left 127 MB per run in /tmp before


def test_bench_refuses_a_bad_clip_before_timing(tmp_path):
    r = runner.invoke(app, ["bench", "--clip", str(tmp_path / "missing.mp4")])
    assert r.exit_code == 2 and "no such file" in " ".join(r.output.split()) and "ms" not in r.output
