"""Video files and live sources: rtcolor colorize, rtcolor stream."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from ..segments import DEFAULT_SEGMENT_SECONDS
from ..temporal import DEFAULT_K
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
    err,
)
from .cluster import CLUSTER_HELP, RESOURCES_HELP, SEGMENT_HELP

TEMPORAL_HELP = {
    "keyframe": "Run the network on every K-th frame (and at every scene cut); the frames between carry "
    "the chroma along optical flow. 1: every frame. The default 16 keeps 720p near 50 fps on a 2-core CPU; "
    "use 4-8 for fast, complex motion when there is speed to spare.",
    "smoothing": "Temporal smoothing of the chroma, 0 (off) to 0.95: the weight kept from the motion-"
    "compensated previous frame where it still matches. Reset at scene cuts.",
    "cut": "Scene-cut threshold: L-histogram distance between frames (0-1) that starts a new scene.",
    "static": "In a still scene (under 1% of the picture changed since the last keyframe) the keyframe "
    "interval stretches up to this many times K (K > 1), sparing an idle camera most network calls. 1: off.",
}


KEYFRAME_OPTION = typer.Option(DEFAULT_K, "--keyframe-interval", "-k", help=TEMPORAL_HELP["keyframe"])
STATIC_OPTION = typer.Option(4, "--static-stretch", help=TEMPORAL_HELP["static"])
SMOOTHING_OPTION = typer.Option(0.6, "--smoothing", help=TEMPORAL_HELP["smoothing"])


def _temporal(keyframe_interval: int, smoothing: float, cut_threshold: float, no_flow: bool, static_stretch: int):
    from ..temporal import TemporalConfig

    try:
        return TemporalConfig(
            keyframe_interval=keyframe_interval,
            smoothing=smoothing,
            cut_threshold=cut_threshold,
            flow=not no_flow,
            static_stretch=static_stretch,
        )
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
    keyframe_interval: int = KEYFRAME_OPTION,
    static_stretch: int = STATIC_OPTION,
    smoothing: float = SMOOTHING_OPTION,
    cut_threshold: float = typer.Option(0.3, "--cut-threshold", help=TEMPORAL_HELP["cut"]),
    no_flow: bool = typer.Option(False, "--no-flow", help="Carry chroma in place between keyframes (no optical flow)."),
    codec: str = typer.Option("libx264", "--codec", help="libx264, libx265, or h264_nvenc / hevc_nvenc on NVIDIA."),
    crf: int = typer.Option(18, "--crf", help="Quality (x264/x265 CRF, NVENC CQ): lower is better; 0 is lossless."),
    preset: str = typer.Option("veryfast", "--preset", help="Encoder speed preset (ultrafast ... veryslow)."),
    batch: int = typer.Option(
        0, "--batch", help="Keyframes per network call; 0: 8 on a GPU (fewer, larger calls), 1 on a CPU."
    ),
    compare: bool = typer.Option(False, "--compare", help="Write gray | colour side by side."),
    stats_path: Path | None = typer.Option(None, "--stats", help="Write the run's figures to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
    references: list[Path] | None = REFERENCE_OPTION,
    colour_frames: Path | None = typer.Option(
        None,
        "--colour-frames",
        help="A folder of frames you coloured yourself, named by frame index (000120.png) or time (12.5s.png): "
        "each one's colours are carried through its shot, forwards and backwards; the network fills the rest. "
        "One input video.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Skip inputs whose output is already complete."),
    cluster: str | None = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    cluster_resources: str | None = typer.Option(None, "--cluster-resources", help=RESOURCES_HELP),
    segment_seconds: float = typer.Option(DEFAULT_SEGMENT_SECONDS, "--segment-seconds", help=SEGMENT_HELP),
) -> None:
    """Colorize video files: every frame and timestamp kept, audio copied packet for packet.

    The luma plane passes through untouched; only chroma is added. Output is written under a
    temporary name and renamed when complete; Ctrl-C finalises a playable <name>.partial.<ext>.

    Examples:
      rtcolor colorize archive.mp4 -o archive_color.mp4
      rtcolor colorize reels/ -o colorized/ --keyframe-interval 4 --crf 16
      rtcolor colorize night_cam.mp4 -o out.mp4 --reference day_frame.png
      rtcolor colorize reel.mp4 -o reel_color.mp4 --colour-frames coloured/   (000120.png, 004410.png, ...)
      rtcolor colorize /shared/films/ -o /shared/colour/ --cluster auto --cluster-resources GPU=1
    """

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..media.images import expand_inputs
    from ..media.outputs import OutputError, check_folder, check_output, explain
    from ..media.video import CODECS, VIDEO_SUFFIXES, VideoError
    from ..pipeline import PipelineConfig, colorize_file

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
    if colour_frames is not None and many:
        _fail("--colour-frames belongs to one video (its names are that video's frame numbers); give one input")
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
        temporal=_temporal(keyframe_interval, smoothing, cut_threshold, no_flow, static_stretch),
        batch=batch,
        compare=compare,
        references=_references(references),
    )
    if cluster is not None:  # the workers load the model; this machine only plans, watches and joins
        from .cluster import colorize_on_cluster

        enc = {"codec": codec, "crf": crf, "preset": preset}
        results, failures = colorize_on_cluster(
            paths, output, many, pcfg, model, backend, device, size, enc, cluster, cluster_resources,
            segment_seconds, force, resume, len(unmatched),
        )  # fmt: skip
        _write_stats(stats_path, {"runs": results})
        raise typer.Exit(1 if failures else 0)
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
            if dest.exists() and resume:  # outputs appear under their name only when complete
                _note("skipped", "green", f"{src}: {dest} is complete (--resume)")
                continue
            if dest.exists() and not force:
                raise VideoError(f"{src}: {dest} exists; pass --force to overwrite it")
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VideoError(explain(dest, e)) from None
            check_output(dest)  # this file's name (too long?) in this folder, before its frames
            _fit_references(pcfg.references, src, colorizer.size)  # another view: refused before writing
            if colour_frames is not None:
                pcfg.colour_frames = _colour_frames(colour_frames, src, colorizer.size, pcfg.temporal)
            with Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[fps]:.1f} fps"),
                TimeRemainingColumn(),
                console=err,
            ) as bar:
                task = bar.add_task(src.name, total=None, fps=0.0)
                summary = colorize_file(
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
        except KeyboardInterrupt as e:
            summary = getattr(e, "partial", None)
            if summary:
                results.append(summary)
                _log(f"interrupted: wrote the playable partial file {summary['output']}")
            _write_stats(stats_path, {"runs": results})
            raise typer.Exit(130) from None
        results.append(summary)
        _report(summary)
        if not summary["complete"]:
            failures += 1
    _write_stats(stats_path, {"runs": results})
    if failures:
        raise typer.Exit(1)


def _stream_cameras(sources: list[str], cameras_file: Path | None, references, outs: list[str], opts: dict) -> None:
    from ..cameras import CamerasError, CameraSpec, load_cameras
    from .cameras import stream_cameras

    if references:
        _fail("--reference belongs to one camera; with several, set reference = [...] per camera in --cameras")
    try:
        specs = [CameraSpec(source=s) for s in sources] + (load_cameras(cameras_file) if cameras_file else [])
    except CamerasError as e:
        _fail(str(e))
    ks = opts["keyframe_interval"], opts["smoothing"], 0.3, False, opts["static_stretch"]
    stream_cameras(specs, outs, {**opts, "temporal": _temporal(*ks)})


def _fit_references(refs: list, src: Path, size: int) -> None:
    """Align each --reference to this video's first frame; one that does not match is refused."""
    if not refs:
        return
    import av

    from ..color import luma_to_L_table
    from ..colorizer import inference_shape
    from ..media.video import VideoError
    from ..reference import ReferenceError

    try:
        with av.open(str(src)) as c:
            frame = next(c.decode(video=0))
            full = frame.color_range == 2  # AVCOL_RANGE_JPEG
            lum = luma_to_L_table(full)[frame.to_ndarray(format="gray")]
    except (av.error.FFmpegError, OSError, StopIteration) as e:
        raise VideoError(f"{src}: cannot read its first frame ({e or 'no video frame'})") from None
    shape = inference_shape(*lum.shape, size)
    try:
        for r in refs:
            r.fit(lum, shape)
    except ReferenceError as e:
        raise VideoError(str(e)) from None


def _colour_frames(folder: Path, src: Path, size: int, temporal):
    """Read and check --colour-frames against the video (a first pass finds its shots)."""
    import av

    from ..colour_frames import ColourFrames
    from ..media.video import VideoError
    from ..reference import ReferenceError

    _log(f"{src}: finding the shots of the coloured frames in {folder}")
    try:
        frames = ColourFrames(folder, src, size, temporal)
    except ReferenceError as e:
        raise VideoError(str(e)) from None
    except (av.error.FFmpegError, OSError) as e:  # a damaged video
        raise VideoError(f"{src}: cannot scan it for its shots ({e})") from None
    where = ", ".join(f"frame {k} (shot {frames.shots.shot(k) + 1})" for k, _ in frames.frames)
    _log(f"{len(frames.shots.cuts)} shots; coloured: {where}")
    return frames


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
    sources: list[str] | None = typer.Argument(
        None,
        help="Camera index, /dev/videoN, rtsp:// http:// udp:// URL, file, folder. Several: one process "
        "colorizes them all (one model; --out templates with {name}).",
        metavar="SOURCE...",
    ),
    camera: int | None = typer.Option(None, "--camera", "-c", help="Camera index (same as giving the number)."),
    cameras_file: Path | None = typer.Option(
        None,
        "--cameras",
        help="A TOML file of cameras ([[camera]] with source, and optionally name, reference, keyframe_interval).",
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
    keyframe_interval: int = KEYFRAME_OPTION,
    static_stretch: int = STATIC_OPTION,
    smoothing: float = SMOOTHING_OPTION,
    report_every: float = typer.Option(5.0, "--report-every", help="Seconds between telemetry lines (0: off)."),
    stats_path: Path | None = typer.Option(None, "--stats", help="Write the run's figures to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing recordings (the input never is)."),
    references: list[Path] | None = REFERENCE_OPTION,
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

    from ..media.live import LiveSource
    from ..media.sinks import SinkError, open_sink
    from ..media.sources import SourceError
    from ..media.video import VideoError
    from ..pipeline import Pipeline, PipelineConfig, summarise

    if segment < 0 or duration < 0 or give_up_after < 0 or fps <= 0:
        _fail("--segment, --duration and --give-up-after must be >= 0 and --fps > 0")
    _check_stats(stats_path)
    sources = list(sources or []) + ([str(camera)] if camera is not None else [])
    if cameras_file is not None or len(sources) > 1:
        return _stream_cameras(sources, cameras_file, references, outs, locals())
    if not sources:
        _fail("name a source: rtcolor stream --camera 0, or a URL / file (see --help)")
    source = sources[0]
    log = _log
    pcfg = PipelineConfig(
        temporal=_temporal(keyframe_interval, smoothing, 0.3, False, static_stretch), references=_references(references)
    )
    try:
        src = LiveSource(
            source, pace=not no_pace, loop=loop, fps=fps, opencv=opencv, log=log, give_up_after=give_up_after
        )
    except SourceError as e:
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
    pipe = Pipeline(src, sinks, colorizer, pcfg)
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

    interrupted = False
    try:
        pipe.run(on_poll=telemetry)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        src.close()
        closing_errors = []
        for s in sinks:  # every output is closed, even when one fails (a full disk under a recording)
            try:
                s.close(complete=True)
            except (SinkError, VideoError, OSError) as e:
                closing_errors.append(str(e))
    summary = pipe.stats.summary()
    summary.update(source=source, reconnects=src.reconnects, outputs=outs, **src.outages.summary())
    for s in sinks:
        if getattr(s, "written", None):
            summary.setdefault("recordings", []).extend(str(p) for p in s.written)
    log(
        f"{summary['frames_out']} of {summary['frames_in']} frames out ({summary['dropped']} dropped as stale), "
        f"{summary['fps']:.1f} fps, latency p50 {summary['latency_p50_ms']} ms p95 {summary['latency_p95_ms']} ms, "
        f"{src.reconnects} reconnects, {summary['outages']} outages ({summary['outage_seconds']:.1f} s in all, "
        f"longest {summary['longest_outage_seconds']:.1f} s)"
    )
    problems = src.problems
    if problems:
        summary["problems"] = problems
        _note("warning", "yellow", f"{source}: {summarise(problems)}; the recording holds each frame that decoded")
    if src.gave_up:
        summary["gave_up"] = src.gave_up
    _write_stats(stats_path, summary)
    if src.gave_up:
        _fail(f"{src.gave_up}; gave up (--give-up-after {give_up_after:g})", code=1)
    if pipe.error is not None:
        stage, e = pipe.error
        _fail(f"{stage} stage failed: {e.__class__.__name__}: {e}", code=1)
    if closing_errors:
        _fail("; ".join(closing_errors), code=1)
    if interrupted:
        raise typer.Exit(130)
    if problems:  # frames were lost: a partial run is not a success
        raise typer.Exit(1)
