"""rtcolor colorize --cluster on a local Ray cluster: a folder of clips and a long clip in segments.

The cluster is ``ray.init(num_cpus=2)`` on 127.0.0.1, started once for the module: a real raylet
that schedules every segment as a task on separate worker processes (at most 2 at a time), with
the same object store, task retries and cancellation as a multi-node cluster; only the network
between nodes is missing, and the paths are shared because the nodes are one machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.synth import write_clip
from realtime_color.media.video import VideoError

from .test_segments import SEGMENT_S, psnr, read_video, seam_ok, short_gop_clip

runner = CliRunner()

_NO_RAY = textwrap.dedent(
    """
    import json, sys
    class Hide:  # Ray is found nowhere, as on a machine without the [cluster] extra
        def __init__(self, inner):
            self.inner = inner
        def find_spec(self, name, path=None, target=None):
            return None if name.split(".")[0] == "ray" else self.inner.find_spec(name, path, target)
    if sys.argv[1] == "hide":
        sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
    from realtime_color.cli import main
    sys.argv = ["rtcolor", "colorize", *json.loads(sys.argv[2])]
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    print(json.dumps({"exit": code, "ray": "ray" in sys.modules}))
    """
)


def _cli(mode: str, args: list[str], cwd) -> tuple[dict, str]:
    env = {**os.environ, "COLUMNS": "200"}  # one line is one line, not wrapped at 80 columns
    r = subprocess.run(
        [sys.executable, "-c", _NO_RAY, mode, json.dumps(args)], capture_output=True, text=True, cwd=cwd, env=env
    )
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_without_ray_cluster_fails_in_one_line_and_nothing_else_imports_ray(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", seconds=0.4, width=64, height=48, fps=10)
    common = [str(clip), "-o", str(tmp_path / "o.mp4"), "--backend", "onnxruntime"]
    report, stderr = _cli("hide", [*common, "--cluster", "local"], Path(__file__).parents[1])
    assert report["exit"] == 2 and "pip install 'rtcolor[cluster]'" in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
    report, stderr = _cli("show", common, Path(__file__).parents[1])  # Ray installed, not asked for
    assert report == {"exit": 0, "ray": False}, stderr


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("in")
    for i in range(2):
        write_clip(folder / f"short{i}.mp4", seconds=1.2, width=160, height=96, fps=25, seed=i + 1)
    short_gop_clip(folder / "long.mp4")
    return folder


ARGS = ["--backend", "onnxruntime", "--segment-seconds", str(SEGMENT_S)]


def test_cluster_colorizes_a_folder_and_a_long_clip_without_a_seam(ray_cluster, clips, tmp_path):
    out = tmp_path / "out"
    stats = tmp_path / "stats.json"
    r = runner.invoke(app, ["colorize", str(clips), "-o", str(out), "--cluster", "local", *ARGS, "--stats", str(stats)])
    assert r.exit_code == 0, r.output
    runs = {Path(s["input"]).name: s for s in json.loads(stats.read_text())["runs"]}
    assert runs["long.mp4"]["segments"] >= 3 and runs["short0.mp4"]["segments"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["long.mp4", "short0.mp4", "short1.mp4"]  # no parts left
    for src in clips.glob("*.mp4"):
        t_in, _, audio_in, _ = read_video(src)
        t_out, uv, audio_out, _ = read_video(out / src.name)  # decodes
        assert t_out == t_in and audio_out == audio_in and audio_in
    # The seam, at the default quality (CRF 18): a part's first frame is an IDR, as at each of the
    # source's keyframes in a single run, and its encoder saw the frames around it (segments.py).
    from realtime_color.video.segments import plan_segments

    segs = plan_segments(clips / "long.mp4", SEGMENT_S)
    seams = [sum(s.frames for s in segs[:i]) for i in range(1, len(segs))]
    _, uv, _, _ = read_video(out / "long.mp4")
    ok, why = seam_ok(uv, seams)
    assert ok, why
    single = tmp_path / "single.mp4"
    r = runner.invoke(app, ["colorize", str(clips / "long.mp4"), "-o", str(single), "--backend", "onnxruntime"])
    assert r.exit_code == 0, r.output
    _, uv_one, _, _ = read_video(single)
    assert min(psnr(a, b) for a, b in zip(uv, uv_one, strict=True)) >= 35.0
    # --resume: the complete outputs are skipped, not redone and not refused
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    r = runner.invoke(app, ["colorize", str(clips), "-o", str(out), "--cluster", "local", "--resume", *ARGS])
    assert r.exit_code == 0 and r.output.count("--resume") == 3, r.output
    assert before == {p.name: p.stat().st_mtime_ns for p in out.iterdir()}


def test_a_worker_that_cannot_see_an_input_fails_it_clearly(tmp_path):
    from realtime_color.runtime.colorizer import ModelChoice
    from realtime_color.video.cluster import WorkerOptions, run_segment
    from realtime_color.video.segments import Segment
    from realtime_color.video.stages import PipelineConfig

    seg = Segment(0, None, None, None, 10, 1)
    opts = WorkerOptions(ModelChoice(backend="onnxruntime", device="cpu"), PipelineConfig())
    with pytest.raises(VideoError, match="every worker sees"):
        run_segment(opts, str(tmp_path / "not-mounted-here.mp4"), str(tmp_path / "p.mp4"), seg)


def _segment_workers() -> list[int]:
    """Ray worker processes running a segment now (Ray titles them ray::run_segment)."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and (d / "cmdline").read_bytes().startswith(b"ray::run_segment"):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_a_killed_worker_s_segment_is_run_again(ray_cluster, clips, tmp_path):
    import threading

    from realtime_color.media.video import EncoderSettings
    from realtime_color.runtime.colorizer import ModelChoice
    from realtime_color.video.cluster import ClusterSettings, FileJob, WorkerOptions, run
    from realtime_color.video.stages import PipelineConfig

    job = FileJob(clips / "long.mp4", tmp_path / "long.mp4")
    choice = ModelChoice(backend="onnxruntime", device="cpu")
    opts = WorkerOptions(choice, PipelineConfig(), EncoderSettings(crf=30))
    seen: list[int] = []
    result: dict = {}

    def go():
        try:
            where = ClusterSettings(segment_seconds=SEGMENT_S)
            result["jobs"] = run([job], opts, where, on_progress=lambda d, t, f: seen.append(d))
        except BaseException as e:  # noqa: BLE001 - the assertion below shows it
            result["error"] = e

    t = threading.Thread(target=go, daemon=True)
    t.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and t.is_alive() and time.monotonic() < deadline:
        busy = _segment_workers()
        if busy and seen and seen[-1] > 0:  # mid-job: frames done, a segment still running
            killed = busy[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.1)
    t.join(120)
    assert killed is not None, "no worker was caught mid-segment"
    assert "error" not in result, result.get("error")
    assert job.error is None, job.error
    t_in, _, audio_in, _ = read_video(job.src)
    t_out, _, audio_out, _ = read_video(job.dest)
    assert t_out == t_in and audio_out == audio_in
    assert all(str(killed) not in w for r in job.results.values() for w in [r["worker"]])


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signalled_job_keeps_finished_outputs_and_leaves_no_parts(sig, tmp_path):
    """The real signal to the real command (its own Ray): exit 130, the outputs joined before it
    decode, nothing else in the folder (no parts, no half file), no Ray stack dump."""
    pytest.importorskip("ray")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        short_gop_clip(folder / f"c{i}.mp4", seconds=10.0, seed=i)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "realtime_color.cli", "colorize", str(folder), "-o", str(out), "--cluster", "local"]
    proc = subprocess.Popen(
        [*cmd, *ARGS[:2], "--segment-seconds", "3"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        start_new_session=True,  # not the test run's own Ctrl-C
    )
    lines = []
    for line in proc.stderr:  # the first output joined: the job is half way
        lines.append(line)
        if " frames, " in line:
            break
    proc.send_signal(sig)
    rest = proc.communicate(timeout=120)[1]
    text = "".join(lines) + rest
    assert proc.returncode == 130, text
    assert "SIGTERM received" not in text and "Traceback" not in text, text
    finished = sorted(p.name for p in out.iterdir())
    assert 1 <= len(finished) < 3 and all(p.startswith("c") and p.endswith(".mp4") for p in finished), finished
    for name in finished:
        assert read_video(out / name)[0] == read_video(folder / name)[0]
    assert not [p for p in tmp_path.rglob("*") if "rtcolor" in p.name or p.suffix == ".partial"]
