"""Live sources: the rtcolor stream command (its one path for any number of cameras: cli/cameras.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ..media.sources import SOURCE_HELP
from .app import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    REFERENCE_OPTION,
    SATURATION_OPTION,
    SIZE_OPTION,
    _check_saturation,
    _fail,
    app,
)
from .cameras import LiveOptions
from .hints import HINTS_HELP, check_takes_hints, live_hints
from .video import (
    CODEC_OPTION,
    KEYFRAME_OPTION,
    PRESET_OPTION,
    SMOOTHING_OPTION,
    STATIC_OPTION,
    _check_encoder,
    _temporal,
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
    hints: Path | None = typer.Option(
        None,
        "--hints",
        help=HINTS_HELP + ". Frame-less hints only (a live source has no frame numbers): each holds wherever the "
        "scene still looks as it did on the first frame, so what passes in front of it is not painted its color.",
    ),
    saturation: float | None = SATURATION_OPTION,
    codec: str = CODEC_OPTION,
    crf: int = typer.Option(
        20, "--crf", help="Recordings' quality (x264/x265 CRF, NVENC CQ): lower is better; 0 is lossless."
    ),
    preset: str = PRESET_OPTION,
    allow_hosts: list[str] | None = typer.Option(
        None,
        "--allow-host",
        help="A name the web preview answers to besides its address and localhost (e.g. mybox.lan). "
        "Repeatable. Other Host headers are refused (DNS rebinding).",
    ),
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
    from ..video.cameras import CamerasError, CameraSpec, load_cameras
    from .cameras import stream_cameras

    if segment < 0 or duration < 0 or give_up_after < 0 or fps <= 0:
        _fail("--segment, --duration and --give-up-after must be >= 0 and --fps > 0")
    _check_encoder(codec, crf, preset)
    _check_saturation(saturation)
    temporal = _temporal(keyframe_interval=keyframe_interval, smoothing=smoothing, static_stretch=static_stretch)
    sources = list(sources or []) + ([str(camera)] if camera is not None else [])
    try:
        specs = [CameraSpec(source=s) for s in sources] + (load_cameras(cameras_file) if cameras_file else [])
    except CamerasError as e:
        _fail(str(e))
    if not specs:
        _fail("name a source: rtcolor stream --camera 0, or a URL / file (see --help)")
    if references:
        if len(specs) > 1:
            _fail("--reference belongs to one camera; with several, set reference = [...] per camera in --cameras")
        specs[0].reference = [str(r) for r in references]
    if hints is not None and len(specs) > 1:
        _fail("--hints belongs to one camera; stream one source with it")
    hint_set = live_hints(hints)  # read and checked before anything is opened
    if hints is not None:
        check_takes_hints(model)
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
        allowed_hosts=tuple(allow_hosts or ()),
        saturation=saturation,
        hints=hint_set,
    )
    stream_cameras(specs, outs, opts)
