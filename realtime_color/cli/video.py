"""Video files and live sources: rtcolor colorize, rtcolor stream."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..media.sources import SOURCE_HELP
from ..temporal import TemporalConfig
from . import BACKEND_OPTION, DEVICE_OPTION, MODEL_OPTION, SIZE_OPTION, _colorizer, _fail, _log, _note, app, err

_T = TemporalConfig  # the defaults below are the config's, read from it (never written here)
TEMPORAL_HELP = {
    "keyframe": "Run the network on every K-th frame (and at every scene cut); the frames between carry "
    "the chroma along optical flow. 1: every frame. The default keeps 720p near 50 fps on a 2-core CPU; "
    f"use 4-8 for fast, complex motion when there is speed to spare. Default: {_T.keyframe_interval}.",
    "smoothing": "Temporal smoothing of the chroma, 0 (off) to 0.95: the weight kept from the motion-"
    f"compensated previous frame where it still matches. Reset at scene cuts. Default: {_T.smoothing}.",
    "cut": "Scene-cut threshold: L-histogram distance between frames (0-1) that starts a new scene. "
    f"Default: {_T.cut_threshold}.",
    "static": "In a still scene (under 1% of the picture changed since the last keyframe) the keyframe "
    "interval stretches up to this many times K (K > 1), sparing an idle camera most network calls. 1: off. "
    f"Default: {_T.static_stretch}.",
}

# None: the config's default. Only what the user typed overrides it.
KEYFRAME_OPTION = typer.Option(None, "--keyframe-interval", "-k", help=TEMPORAL_HELP["keyframe"], show_default=False)
STATIC_OPTION = typer.Option(None, "--static-stretch", help=TEMPORAL_HELP["static"], show_default=False)
SMOOTHING_OPTION = typer.Option(None, "--smoothing", help=TEMPORAL_HELP["smoothing"], show_default=False)
CUT_OPTION = typer.Option(None, "--cut-threshold", help=TEMPORAL_HELP["cut"], show_default=False)
NO_FLOW_OPTION = typer.Option(False, "--no-flow", help="Carry chroma in place between keyframes (no optical flow).")


def _temporal(**overrides) -> TemporalConfig:
    """The temporal config with what the user typed (options left at None keep the config's default)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.pop("no_flow", False):
        given["method"] = "still"
    try:
        return TemporalConfig(**given)
    except ValueError as e:
        _fail(str(e))


def _poll_progress(bar, task):
    def poll(pipe) -> None:
        s = pipe.stats
        elapsed = max(1e-6, time.monotonic() - s.started)
        total = pipe.source.info.frames or None  # the header the source already read
        bar.update(task, total=total, completed=s.frames_out, fps=s.frames_out / elapsed)

    return poll


@app.command()
def colorize(
    inputs: list[str] = typer.Argument(..., help="Video files, folders or globs."),
    output_arg: str = typer.Option(
        ...,
        "-o",
        "--output",
        help="Output file for one input; a folder (created if needed) for several, or when it ends with '/'.",
    ),
    model: Path | None = MODEL_OPTION,
    size: int | None = SIZE_OPTION,
    backend: str = BACKEND_OPTION,
    device: str = DEVICE_OPTION,
    keyframe_interval: int | None = KEYFRAME_OPTION,
    static_stretch: int | None = STATIC_OPTION,
    smoothing: float | None = SMOOTHING_OPTION,
    cut_threshold: float | None = CUT_OPTION,
    no_flow: bool = NO_FLOW_OPTION,
    codec: str = typer.Option("libx264", "--codec", help="libx264, libx265, or h264_nvenc / hevc_nvenc on NVIDIA."),
    crf: int = typer.Option(18, "--crf", help="Quality (x264/x265 CRF, NVENC CQ): lower is better; 0 is lossless."),
    preset: str = typer.Option("veryfast", "--preset", help="Encoder speed preset (ultrafast ... veryslow)."),
    batch: int = typer.Option(
        0, "--batch", help="Keyframes per network call; 0: 8 on a GPU (fewer, larger calls), 1 on a CPU."
    ),
    compare: bool = typer.Option(False, "--compare", help="Write gray | colour side by side."),
    stats_path: Path | None = typer.Option(None, "--stats", help="Write the run's figures to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
) -> None:
    """Colorize video files: every frame and timestamp kept, audio copied packet for packet.

    The luma plane passes through untouched; only chroma is added. Output is written under a
    temporary name and renamed when complete; Ctrl-C finalises a playable <name>.partial.<ext>.

    Examples:
      rtcolor colorize archive.mp4 -o archive_color.mp4
      rtcolor colorize reels/ -o colorized/ --keyframe-interval 4 --crf 16
    """

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..media.images import expand_inputs
    from ..media.outputs import OutputError, check_folder, check_output, explain
    from ..media.video import CODECS, VIDEO_SUFFIXES, VideoError
    from ..pipeline import Outcome
    from ..stages import PipelineConfig, colorize_file

    if codec not in CODECS:
        _fail(f"--codec {codec!r} is not supported; choose one of {', '.join(CODECS)}")
    presets = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
    if codec.startswith("lib") and preset not in presets:
        _fail(f"--preset {preset!r} is not an x264/x265 preset; choose one of {', '.join(presets)}")
    if not 0 <= crf <= 51:
        _fail(f"--crf {crf} must be between 0 (lossless) and 51")
    _check_stats(stats_path)
    paths, unmatched = expand_inputs(inputs, suffixes=VIDEO_SUFFIXES)
    for item in unmatched:
        _note("skipped", "red", f"{item}: no such file, or a folder/glob with no videos")
    if not paths:
        _fail("no input videos found")
    output = Path(output_arg)
    many = len(paths) > 1 or any(Path(i).is_dir() for i in inputs)
    if many and output.exists() and not output.is_dir():
        _fail(f"-o {output} is a file, but there are several inputs; name a folder")
    if not many and (output.is_dir() or output_arg.endswith(("/", "\\"))):
        output = output / paths[0].name
    try:  # every output location is checked before the model loads and the first frame is read
        if many:
            check_folder(output, "-o")
        elif output.parent.exists() and not output.is_dir():  # a missing folder is created below
            check_output(output, "-o")
    except OutputError as e:
        _fail(str(e))
    pcfg = PipelineConfig(
        temporal=_temporal(
            keyframe_interval=keyframe_interval,
            smoothing=smoothing,
            cut_threshold=cut_threshold,
            no_flow=no_flow,
            static_stretch=static_stretch,
        ),
        batch=batch,
        compare=compare,
    )
    colorizer = _colorizer(model, backend, device, size)
    if batch <= 0:
        pcfg.batch = 8 if str(getattr(colorizer.backend, "device", "cpu")).startswith("cuda") else 1
    inputs_resolved = {p.resolve() for p in paths}
    taken: set[Path] = set()
    results, failures = [], len(unmatched)
    for src in paths:
        dest = output / src.name if many else output
        try:
            if dest.resolve() in inputs_resolved:
                raise VideoError(f"{src}: its output {dest} would overwrite an input; choose another -o")
            if dest.resolve() in taken:  # a/clip.mp4 and b/clip.mp4 into one folder
                raise VideoError(f"{src}: another input already wrote {dest} (same file name)")
            taken.add(dest.resolve())
            if dest.exists() and not force:
                raise VideoError(f"{src}: {dest} exists; pass --force to overwrite it")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VideoError(explain(dest, e)) from None
            check_output(dest)  # this file's name (too long?) in this folder, before its frames
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]:.1f} fps"),
                TimeRemainingColumn(),
                console=err,
            ) as bar:
                task = bar.add_task(src.name, total=None, fps=0.0)
                result = colorize_file(
                    src,
                    dest,
                    colorizer,
                    pcfg,
                    codec=codec,
                    crf=crf,
                    preset=preset,
                    on_poll=_poll_progress(bar, task),
                )
        except (VideoError, OSError) as e:  # one line per failed file; the others still run
            _note("failed", "red", f"{src}: {e}" if str(src) not in str(e) else str(e))
            failures += 1
            continue
        except KeyboardInterrupt:  # before the first frame: nothing was written
            _write_stats(stats_path, {"runs": results})
            raise typer.Exit(130) from None
        summary = result.summary()
        results.append(summary)
        if result.outcome is Outcome.INTERRUPTED:
            _log(f"interrupted: wrote the playable partial file {result.output}")
            _write_stats(stats_path, {"runs": results})
            raise typer.Exit(130)
        _report(summary)
        if not result.complete:
            failures += 1
    _write_stats(stats_path, {"runs": results})
    if failures:
        raise typer.Exit(1)


def _report(s: dict) -> None:
    for w in s.get("warnings", []):
        _note("warning", "yellow", f"{s['input']}: {w}")
    stages = ", ".join(f"{k} {v:.1f}s" for k, v in s["stage_seconds"].items())
    _log(
        f"{s['output']}: {s['frames_out']} frames in {s['seconds']:.1f}s ({s['fps']:.1f} fps), "
        f"{s['keyframes']} keyframes, {s['scene_cuts']} scene cuts; busy time per stage: {stages}"
    )
    if s["problems"]:
        from ..pipeline import summarise

        _note("warning", "yellow", f"{s['input']}: {summarise(s['problems'])}; the output holds what could be decoded")


def _check_stats(path: Path | None) -> None:
    """A --stats file is JSON by name, so it can never be a video this run reads or writes; and
    its folder is checked now, not after the video was written."""
    if path is None:
        return
    if path.suffix.lower() != ".json" or path.is_dir():
        _fail(f"--stats {path}: name a .json file")
    from ..media.outputs import OutputError, check_output

    try:
        check_output(path, "--stats")
    except OutputError as e:
        _fail(str(e))


def _write_stats(path: Path | None, data: dict) -> None:
    import json

    if path is None:
        return
    from ..media.images import atomic_write

    try:
        atomic_write(path, json.dumps(data, indent=2))
    except OSError as e:  # checked at the start; a disk that filled since is reported, plainly
        _fail(str(e), code=1)


@app.command()
def stream(
    source: str | None = typer.Argument(None, help=SOURCE_HELP),
    camera: int | None = typer.Option(None, "--camera", "-c", help="Camera index (same as giving the number)."),
    outs: list[str] = typer.Option(
        ["display"],
        "--out",
        "-o",
        help="display, FILE.mp4 (recording), http://127.0.0.1:PORT (web preview), udp://HOST:PORT. Repeatable.",
    ),
    duration: float = typer.Option(0.0, "--duration", help="Stop after this many seconds (0: until Ctrl-C / q)."),
    segment: float = typer.Option(0.0, "--segment", help="Roll recordings every N minutes (0: one file)."),
    no_pace: bool = typer.Option(False, "--no-pace", help="Files: run flat out instead of at their frame rate."),
    loop: bool = typer.Option(False, "--loop", help="Files and picture folders: start again at the end."),
    fps: float = typer.Option(5.0, "--fps", help="Picture folders: pictures per second."),
    opencv: bool = typer.Option(False, "--opencv", help="Open http(s) URLs with OpenCV (MJPEG cameras)."),
    model: Path | None = MODEL_OPTION,
    size: int | None = SIZE_OPTION,
    backend: str = BACKEND_OPTION,
    device: str = DEVICE_OPTION,
    keyframe_interval: int | None = KEYFRAME_OPTION,
    static_stretch: int | None = STATIC_OPTION,
    smoothing: float | None = SMOOTHING_OPTION,
    report_every: float = typer.Option(5.0, "--report-every", help="Seconds between telemetry lines (0: off)."),
    stats_path: Path | None = typer.Option(None, "--stats", help="Write the run's figures to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing recordings (the input never is)."),
) -> None:
    """Colorize a live camera or stream: stays current (stale frames are dropped, never queued).

    A source that drops is reopened with backoff while the outputs stay up. Telemetry (fps in and
    out, drops, capture-to-output latency p50/p95) is printed every few seconds and at the end.

    Examples:
      rtcolor stream --camera 0                                 (window; q quits)
      rtcolor stream rtsp://cam.local/stream --out night.mp4 --segment 60 --out http://127.0.0.1:8080
      rtcolor stream clip.mp4 --out rec.mp4 --duration 8
    """
    import threading

    from ..media.sinks import SinkError, open_sink
    from ..media.sources import Policy, SourceError, open_source, parse_source
    from ..media.video import VideoError
    from ..pipeline import Outcome, summarise
    from ..stages import PipelineConfig, colorize_pipeline

    if segment < 0 or duration < 0 or fps <= 0:
        _fail("--segment and --duration must be >= 0 and --fps > 0")
    _check_stats(stats_path)
    if camera is not None:
        source = str(camera)
    if source is None:
        _fail("name a source: rtcolor stream --camera 0, or a URL / file (see --help)")
    log = _log
    pcfg = PipelineConfig(
        temporal=_temporal(keyframe_interval=keyframe_interval, smoothing=smoothing, static_stretch=static_stretch)
    )
    try:
        spec = parse_source(source)
        # Read as a live source: reopened when it fails, pictures stamped with the capture clock (a
        # recording keeps real time, --loop included). A file run flat out loses nothing, though:
        # its frames go through the pipeline under the file policy.
        policy = Policy.FILE if spec.kind == "file" and no_pace else Policy.LIVE
        pace = not no_pace or spec.kind != "file"  # --no-pace is for files; pictures keep --fps
        src = open_source(spec, Policy.LIVE, pace=pace, loop=loop, fps=fps, opencv=opencv, log=log)
    except (SourceError, VideoError) as e:
        _fail(str(e))
    pipe_holder: list = []
    sinks = []
    try:  # outputs first: a bad --out fails before the model is loaded
        for uri in outs:
            sinks.append(
                open_sink(
                    uri,
                    segment_minutes=segment,
                    on_quit=lambda: pipe_holder[0].stop(),
                    log=log,
                    force=force,
                    protect=frozenset({Path(source).resolve()} if Path(source).is_file() else ()),
                )
            )
    except (SinkError, VideoError) as e:
        for s in sinks:
            s.close(complete=False)
        src.close()
        _fail(str(e))
    try:
        colorizer = _colorizer(model, backend, device, size)
    except typer.Exit:
        for s in sinks:
            s.close(complete=False)
        src.close()
        raise
    pipe = colorize_pipeline(colorizer, sinks, pcfg, policy)
    pipe_holder.append(pipe)
    if duration > 0:
        timer = threading.Timer(duration, pipe.stop)
        timer.daemon = True
        timer.start()
    last = {"t": time.monotonic(), "in": 0, "out": 0}

    def telemetry(p) -> None:
        now = time.monotonic()
        if report_every <= 0 or now - last["t"] < report_every:
            return
        s, dt = p.stats, now - last["t"]
        fresh = s.frames_out - last["out"]  # one latency is recorded per frame out
        p50, p95 = (s.latency_ms(q, recent=fresh) for q in (50, 95))
        log(
            f"in {(s.frames_in - last['in']) / dt:.1f} fps, out {fresh / dt:.1f} fps, dropped {s.dropped}, "
            f"latency p50 {p50 or 0:.0f} ms p95 {p95 or 0:.0f} ms"
        )
        last.update(t=now, **{"in": s.frames_in, "out": s.frames_out})

    try:
        result = pipe.run(src, on_poll=telemetry)
    finally:
        src.close()
        closing_errors = []
        for s in sinks:  # every output is closed, even when one fails (a full disk under a recording)
            try:
                s.close(complete=True)
            except (SinkError, VideoError, OSError) as e:
                closing_errors.append(str(e))
    reconnects = getattr(src, "reconnects", 0)
    result.input, result.problems = source, list(src.problems)
    if result.source_error and spec.kind in ("file", "images"):
        result.problems.append(f"reading failed before the end: {result.source_error}")
    summary = result.stats.summary()
    summary.update(source=source, reconnects=reconnects, outputs=outs)
    for s in sinks:
        if getattr(s, "written", None):
            summary.setdefault("recordings", []).extend(str(p) for p in s.written)
    log(
        f"{summary['frames_out']} of {summary['frames_in']} frames out ({summary['dropped']} dropped as stale), "
        f"{summary['fps']:.1f} fps, latency p50 {summary['latency_p50_ms']} ms p95 {summary['latency_p95_ms']} ms, "
        f"{reconnects} reconnects"
    )
    if result.problems:
        summary["problems"] = result.problems
        text = f"{source}: {summarise(result.problems)}; the recording holds each frame that decoded"
        _note("warning", "yellow", text)
    _write_stats(stats_path, summary)
    if result.failure is not None:
        _fail(result.failure, code=1)
    if closing_errors:
        _fail("; ".join(closing_errors), code=1)
    if result.outcome is Outcome.INTERRUPTED:
        raise typer.Exit(130)
    if result.problems:  # frames were lost: a partial run is not a success
        raise typer.Exit(1)
