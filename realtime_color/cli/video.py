"""Video files: rtcolor colorize (on this machine, or spread over a Ray cluster)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import typer

from ..video.segments import DEFAULT_SEGMENT_SECONDS
from ..video.temporal import TemporalConfig
from .app import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    REFERENCE_OPTION,
    SATURATION_OPTION,
    SIZE_OPTION,
    _check_saturation,
    _choice,
    _colorizer,
    _fail,
    _log,
    _note,
    _references,
    app,
    err,
)
from .cluster import CLUSTER_HELP, RESOURCES_HELP, SEGMENT_HELP
from .hints import HINTS_HELP, check_takes_hints, read_hints, video_hints

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
CODEC_OPTION = typer.Option("libx264", "--codec", help="libx264, libx265, or h264_nvenc / hevc_nvenc on NVIDIA.")
PRESET_OPTION = typer.Option(
    "veryfast",
    "--preset",
    help="Encoder speed preset (ultrafast ... veryslow): faster presets spend less CPU for larger files.",
)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


def _check_encoder(codec: str, crf: int | None, preset: str) -> None:
    """--codec, --crf and --preset as the encoders take them, or one line naming the bad one."""
    from ..media.video import CODECS

    if codec not in CODECS:
        _fail(f"--codec {codec!r} is not supported; choose one of {', '.join(CODECS)}")
    if codec.startswith("lib") and preset not in X264_PRESETS:
        _fail(f"--preset {preset!r} is not an x264/x265 preset; choose one of {', '.join(X264_PRESETS)}")
    if crf is not None and not 0 <= crf <= 51:
        _fail(f"--crf {crf} must be between 0 (lossless) and 51")


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
    codec: str = CODEC_OPTION,
    crf: int = typer.Option(18, "--crf", help="Quality (x264/x265 CRF, NVENC CQ): lower is better; 0 is lossless."),
    preset: str = PRESET_OPTION,
    batch: int = typer.Option(
        0, "--batch-size", help="Keyframes per network call; 0: 8 on a GPU (fewer, larger calls), 1 on a CPU."
    ),
    compare: bool = typer.Option(False, "--compare", help="Write gray | color side by side."),
    stats_path: Path | None = typer.Option(None, "--stats", help="Write the run's figures to this JSON file."),
    force: bool = typer.Option(False, "--force", help="Overwrite existing outputs (inputs are never overwritten)."),
    references: list[Path] | None = REFERENCE_OPTION,
    color_frames: Path | None = typer.Option(
        None,
        "--color-frames",
        help="A folder of frames you colored yourself, named by frame index (000120.png) or time (12.5s.png): "
        "each one's colors are carried through its shot, forwards and backwards; the network fills the rest. "
        "One input video.",
    ),
    hints: Path | None = typer.Option(
        None,
        "--hints",
        help=HINTS_HELP + ', and "frame" (index from 0) or "time" (seconds): such a hint holds in that frame\'s '
        "shot, its point followed forwards and backwards, never past a scene cut. A hint without either holds on "
        "every frame (a fixed camera) wherever the scene still looks as it did on the first frame.",
    ),
    saturation: float | None = SATURATION_OPTION,
    resume: bool = typer.Option(False, "--resume", help="Skip inputs whose output is already complete."),
    cluster: str | None = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    cluster_resources: str | None = typer.Option(None, "--cluster-resources", help=RESOURCES_HELP),
    segment_seconds: float = typer.Option(DEFAULT_SEGMENT_SECONDS, "--segment-seconds", help=SEGMENT_HELP),
) -> None:
    """Colorize video files: every frame and timestamp kept, audio copied packet for packet.

    The luma plane passes through untouched; only chroma is added. Output is written under a
    temporary name and renamed when complete; Ctrl-C finalizes a playable <name>.partial.<ext>.

    Examples:
      rtcolor colorize archive.mp4 -o archive_color.mp4
      rtcolor colorize reels/ -o colorized/ --keyframe-interval 4 --crf 16
      rtcolor colorize night_cam.mp4 -o out.mp4 --reference day_frame.png
      rtcolor colorize reel.mp4 -o reel_color.mp4 --color-frames colored/   (000120.png, 004410.png, ...)
      rtcolor colorize reel.mp4 -o reel_color.mp4 --hints reel_hints.json  (the coat in frame 120 is red)
      rtcolor colorize /shared/films/ -o /shared/color/ --cluster auto --cluster-resources GPU=1
    """

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..media.images import expand_inputs
    from ..media.outputs import Inputs, OutputError, check_folder, check_output, explain
    from ..media.video import VIDEO_SUFFIXES, EncoderSettings, VideoError
    from ..video.pipeline import Outcome
    from ..video.stages import PipelineConfig, colorize_file
    from .signals import finishing

    _check_encoder(codec, crf, preset)
    _check_saturation(saturation)
    hint_set = read_hints(hints)  # read and checked entry by entry before anything else is opened
    paths, unmatched = expand_inputs(inputs, suffixes=VIDEO_SUFFIXES)
    _check_stats(stats_path, Inputs(paths))
    for item in unmatched:
        _note("skipped", "red", f"{item}: no such file, or a folder/glob with no videos")
    if not paths:
        _fail("no input videos found")
    output = Path(output_arg)
    many = len(paths) > 1 or any(Path(i).is_dir() for i in inputs)
    if color_frames is not None and many:
        _fail("--color-frames belongs to one video (its names are that video's frame numbers); give one input")
    if hint_set is not None and many and not all(h.frameless for h in hint_set.hints):
        _fail(f"--hints {hints} has hints with a frame or time, which belong to one video; give one input")
    if hint_set is not None and cluster is not None:
        _fail("--hints is not supported with --cluster yet; colorize on this machine")
    if hint_set is not None:
        check_takes_hints(model)
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
        references=_references(references),
    )
    choice, encoder = _choice(model, backend, device, size, saturation), EncoderSettings(codec, crf, preset)
    if cluster is not None:  # the workers load the model; this machine only plans, watches and joins
        from ..video.cluster import ClusterSettings
        from .cluster import colorize_on_cluster

        where = ClusterSettings(cluster, cluster_resources, segment_seconds)
        results, failures = colorize_on_cluster(
            paths, output, many, pcfg, choice, encoder, where, force, resume, len(unmatched)
        )
        _write_stats(stats_path, {"runs": results})
        raise typer.Exit(1 if failures else 0)
    colorizer = _colorizer(model, backend, device, size, saturation)  # the same choice, opened here
    pcfg = pcfg.for_device(getattr(colorizer.backend, "device", "cpu"))
    inputs_known = Inputs(paths)
    taken: set[Path] = set()
    results, failures = [], len(unmatched)
    for src in paths:
        dest = output / src.name if many else output
        try:
            if inputs_known.holding(dest) is not None:
                raise VideoError(f"{src}: {Inputs.message(dest, inputs_known.holding(dest), 'its output')}")
            if dest.resolve() in taken:  # a/clip.mp4 and b/clip.mp4 into one folder
                raise VideoError(f"{src}: another input already wrote {dest} (same file name)")
            taken.add(dest.resolve())
            if dest.exists() and resume:  # outputs appear under their name only when complete
                _note("skipped", "green", f"{src}: {dest} is complete (--resume)")
                continue
            if dest.exists() and not force:
                raise VideoError(f"{src}: {dest} exists; pass --force to overwrite it")
            job = pcfg  # this video's own settings: the shared ones are never changed
            if hint_set is not None:  # a hint past the end is refused here, before the output's folder is made
                job = replace(job, hints=video_hints(hint_set, hints, src, colorizer.size, pcfg.temporal))
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VideoError(explain(dest, e)) from None
            check_output(dest)  # this file's name (too long?) in this folder, before its frames
            _fit_references(pcfg.references, src, colorizer.size)  # another view: refused before writing
            if color_frames is not None:
                job = replace(job, color_frames=_color_frames(color_frames, src, colorizer.size, pcfg.temporal))
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
                    job,
                    encoder,
                    on_poll=_poll_progress(bar, task),
                    finishing=lambda name: finishing(pending=[name]),
                )
        except (VideoError, OSError) as e:  # one line per failed file; the others still run
            _note("failed", "red", f"{src}: {e}" if str(src) not in str(e) else str(e))
            failures += 1
            continue
        except KeyboardInterrupt:  # before the first frame (or abandoned while finalized): no file
            _log(f"interrupted before a frame of {src} was finished: nothing was written for it")
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


def _fit_references(refs: list, src: Path, size: int) -> None:
    """Align each --reference to this video's first frame; one that does not match is refused."""
    if not refs:
        return
    from ..color import luma_to_L_table
    from ..guidance.reference import ReferencePictureError, fit_references
    from ..media.frames import Policy, Status
    from ..media.sources import open_source
    from ..media.video import VideoError
    from ..runtime.colorizer import inference_shape

    source = open_source(src, Policy.FILE, kind="file")  # the same factory and decoder as the job
    try:
        status, pic, note = source.read()
        while status in (Status.PACKET, Status.EMPTY, Status.SKIPPED):
            status, pic, note = source.read()
    finally:
        source.close()
    if status is not Status.FRAME:
        raise VideoError(f"{src}: cannot read its first frame ({note or 'no video frame'})")
    lum = luma_to_L_table(pic.full_range)[pic.y]
    shape = inference_shape(*lum.shape, size)
    try:
        fit_references(refs, shape, lambda: lum)
    except ReferencePictureError as e:
        raise VideoError(str(e)) from None


def _color_frames(folder: Path, src: Path, size: int, temporal):
    """Read and check --color-frames against the video (a first pass finds its shots)."""
    import av

    from ..guidance.colored_frames import ColorFrames
    from ..guidance.reference import ReferencePictureError
    from ..media.video import VideoError

    _log(f"{src}: finding the shots of the colored frames in {folder}")
    try:
        frames = ColorFrames(folder, src, size, temporal)
    except ReferencePictureError as e:
        raise VideoError(str(e)) from None
    except (av.error.FFmpegError, OSError) as e:  # a damaged video
        raise VideoError(f"{src}: cannot scan it for its shots ({e})") from None
    where = ", ".join(f"frame {k} (shot {frames.shots.shot(k) + 1})" for k, _ in frames.frames)
    _log(f"{len(frames.shots.cuts)} shots; colored: {where}")
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
        from ..video.pipeline import summarize

        _note("warning", "yellow", f"{s['input']}: {summarize(s['problems'])}; the output holds what could be decoded")


def _check_stats(path: Path | None, inputs=None) -> None:
    """A --stats file is JSON by name, so it is rarely a video this run reads or writes (``inputs``,
    an ``outputs.Inputs``, catches the rest: a link to one); its folder is checked now, not after
    the video was written."""
    if path is None:
        return
    if path.suffix.lower() != ".json" or path.is_dir():
        _fail(f"--stats {path}: name a .json file")
    from ..media.outputs import OutputError, check_output

    try:
        if inputs is not None:
            inputs.refuse(path, "--stats")
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
