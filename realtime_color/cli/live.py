"""Live sources: rtcolor stream (one camera, or several in one process: cli/cameras.py)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape

from ..media.sources import SOURCE_HELP
from . import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    REFERENCE_OPTION,
    SIZE_OPTION,
    _colorizer,
    _fail,
    _log,
    _note,
    _references,
    app,
)
from .cameras import LiveOptions
from .video import (
    CODEC_OPTION,
    KEYFRAME_OPTION,
    PRESET_OPTION,
    SMOOTHING_OPTION,
    STATIC_OPTION,
    _check_encoder,
    _check_stats,
    _temporal,
    _write_stats,
)


@app.command()
def stream(
    sources: list[str] | None = typer.Argument(
        None,
        help=SOURCE_HELP + " Several: one process colorizes them all (one model; --out templates with {name}).",
        metavar="SOURCE...",
    ),
    camera: int | None = typer.Option(None, "--camera", "-c", help="Camera index (same as giving the number)."),
    cameras_file: Path | None = typer.Option(
        None,
        "--cameras",
        help=escape(
            "A TOML file of cameras ([[camera]] with source, and optionally name, reference, keyframe_interval)."
        ),
    ),
    outs: list[str] = typer.Option(
        ["display"],
        "--out",
        "-o",
        help="display, FILE.mp4 (recording), http://127.0.0.1:PORT (web preview), udp://HOST:PORT. Repeatable.",
    ),
    duration: float = typer.Option(0.0, "--duration", help="Stop after this many seconds (0: until Ctrl-C / q)."),
    segment: float = typer.Option(0.0, "--segment", help="Roll recordings every N minutes (0: one file)."),
    give_up_after: float = typer.Option(
        0.0,
        "--give-up-after",
        help="Network sources: end with exit code 1 after this many seconds without a frame, at start or "
        "in an outage (0: keep reconnecting until stopped).",
    ),
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
    references: list[Path] | None = REFERENCE_OPTION,
    codec: str = CODEC_OPTION,
    crf: int = typer.Option(
        20, "--crf", help="Recordings' quality (x264/x265 CRF, NVENC CQ): lower is better; 0 is lossless."
    ),
    preset: str = PRESET_OPTION,
) -> None:
    """Colorize a live camera or stream: stays current (stale frames are dropped, never queued).

    A camera or stream that drops, stalls or is not up yet is reopened with backoff while the
    outputs stay up (--give-up-after bounds the wait); each outage is logged with its start and
    length. Telemetry (source state, fps in and out, drops, capture-to-output latency p50/p95,
    outages) is printed every few seconds and at the end.

    Examples:
      rtcolor stream --camera 0                                 (window; q quits)
      rtcolor stream rtsp://cam.local/stream --out night.mp4 --segment 60 --out http://127.0.0.1:8080
      rtcolor stream clip.mp4 --out rec.mp4 --duration 8
      rtcolor stream rtsp://cam.local/night --reference cam_day.png --out rec.mp4
      rtcolor stream rtsp://gate/s rtsp://yard/s --out rec/{name}.mp4 --out http://127.0.0.1:8080  (a grid)
    """
    import threading

    from ..media.sinks import SinkError, open_sink
    from ..media.sources import Policy, SourceError, open_source, parse_source
    from ..media.video import VideoError
    from ..video.pipeline import Outcome, summarize
    from ..video.stages import PipelineConfig, colorize_pipeline

    if segment < 0 or duration < 0 or give_up_after < 0 or fps <= 0:
        _fail("--segment, --duration and --give-up-after must be >= 0 and --fps > 0")
    _check_stats(stats_path)
    _check_encoder(codec, crf, preset)
    temporal = _temporal(keyframe_interval=keyframe_interval, smoothing=smoothing, static_stretch=static_stretch)
    sources = list(sources or []) + ([str(camera)] if camera is not None else [])
    if cameras_file is not None or len(sources) > 1:
        opts = LiveOptions(
            temporal=temporal,
            model=model,
            size=size,
            backend=backend,
            device=device,
            duration=duration,
            segment=segment,
            give_up_after=give_up_after,
            no_pace=no_pace,
            loop=loop,
            fps=fps,
            opencv=opencv,
            report_every=report_every,
            stats_path=stats_path,
            force=force,
            codec=codec,
            crf=crf,
            preset=preset,
        )
        return _stream_cameras(sources, cameras_file, references, outs, opts)
    if not sources:
        _fail("name a source: rtcolor stream --camera 0, or a URL / file (see --help)")
    source = sources[0]
    log = _log
    pcfg = PipelineConfig(temporal=temporal, references=_references(references))
    try:
        spec = parse_source(source)
        # Read as a live source: reopened when it fails, pictures stamped with the capture clock (a
        # recording keeps real time, --loop included). A file run flat out loses nothing, though:
        # its frames go through the pipeline under the file policy.
        policy = Policy.FILE if spec.kind == "file" and no_pace else Policy.LIVE
        pace = not no_pace or spec.kind != "file"  # --no-pace is for files; pictures keep --fps
        src = open_source(
            spec, Policy.LIVE, pace=pace, loop=loop, fps=fps, opencv=opencv, log=log, give_up_after=give_up_after
        )
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
                    codec=codec,
                    crf=crf,
                    preset=preset,
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
        state = src.outages.state.value
        for sink in sinks:  # the preview says "reconnecting" while the camera is away
            if hasattr(sink, "set_state"):
                sink.set_state(state)
        now = time.monotonic()
        if report_every <= 0 or now - last["t"] < report_every:
            return
        s, dt = p.stats, now - last["t"]
        fresh = s.frames_out - last["out"]  # one latency is recorded per frame out
        p50, p95 = (s.latency_ms(q, recent=fresh) for q in (50, 95))
        o = src.outages.summary()
        away = f" for {src.outages.down_for():.0f} s" if state in ("reconnecting", "connecting") else ""
        log(
            f"{state}{away}: in {(s.frames_in - last['in']) / dt:.1f} fps, out {fresh / dt:.1f} fps, "
            f"dropped {s.dropped}, latency p50 {p50 or 0:.0f} ms p95 {p95 or 0:.0f} ms, "
            f"outages {o['outages']} ({o['outage_seconds']:.0f} s)"
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
    summary.update(source=source, reconnects=reconnects, outputs=outs, **src.outages.summary())
    for s in sinks:
        if getattr(s, "written", None):
            summary.setdefault("recordings", []).extend(str(p) for p in s.written)
    log(
        f"{summary['frames_out']} of {summary['frames_in']} frames out ({summary['dropped']} dropped as stale), "
        f"{summary['fps']:.1f} fps, latency p50 {summary['latency_p50_ms']} ms p95 {summary['latency_p95_ms']} ms, "
        f"{reconnects} reconnects, {summary['outages']} outages ({summary['outage_seconds']:.1f} s in all, "
        f"longest {summary['longest_outage_seconds']:.1f} s)"
    )
    if result.problems:
        summary["problems"] = result.problems
        text = f"{source}: {summarize(result.problems)}; the recording holds each frame that decoded"
        _note("warning", "yellow", text)
    if src.gave_up:
        summary["gave_up"] = src.gave_up
    _write_stats(stats_path, summary)
    if src.gave_up:
        _fail(f"{src.gave_up}; gave up (--give-up-after {give_up_after:g})", code=1)
    if result.failure is not None:
        _fail(result.failure, code=1)
    if closing_errors:
        _fail("; ".join(closing_errors), code=1)
    if result.outcome is Outcome.INTERRUPTED:
        raise typer.Exit(130)
    if result.problems:  # frames were lost: a partial run is not a success
        raise typer.Exit(1)


def _stream_cameras(
    sources: list[str], cameras_file: Path | None, references, outs: list[str], opts: LiveOptions
) -> None:
    from ..video.cameras import CamerasError, CameraSpec, load_cameras
    from .cameras import stream_cameras

    if references:
        _fail("--reference belongs to one camera; with several, set reference = [...] per camera in --cameras")
    try:
        specs = [CameraSpec(source=s) for s in sources] + (load_cameras(cameras_file) if cameras_file else [])
    except CamerasError as e:
        _fail(str(e))
    stream_cameras(specs, outs, opts)
