"""`rtcolor stream`'s one path: a set of cameras (one camera is a set of one), one model, a pipeline each.

Whatever the camera count, the same steps in the same order: every output is checked (never an
input, however named; never an existing file without --force) and opened before the model loads;
a model that fails to load closes what was opened; the run's figures go to --stats atomically.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .app import _colorizer, _fail, _log, _note, _references

if TYPE_CHECKING:
    from ..video.temporal import TemporalConfig


@dataclass(frozen=True)
class LiveOptions:
    """What `rtcolor stream` was asked, beside its sources, outputs and references."""

    temporal: TemporalConfig
    model: Path | None = None
    size: int | None = None
    backend: str = "auto"
    device: str = "auto"
    duration: float = 0.0
    segment: float = 0.0
    give_up_after: float = 0.0
    no_pace: bool = False
    loop: bool = False
    fps: float = 5.0
    opencv: bool = False
    report_every: float = 5.0
    stats_path: Path | None = None
    force: bool = False
    codec: str = "libx264"  # how the recordings are encoded (see rtcolor colorize)
    crf: int | None = None
    preset: str = "veryfast"
    allowed_hosts: tuple[str, ...] = ()  # names the web preview answers to besides its address
    saturation: float | None = None  # the network's colorfulness (None: the model's calibrated one)
    hints: object = None  # guidance.hints.HintSet: frame-less hints, for one camera (cli/hints.live_hints)


def input_files(sources: list[str]):
    """The sources that are files (or folders of pictures), as an ``outputs.Inputs``: never written."""
    from ..media.outputs import Inputs

    return Inputs(Path(s) for s in sources if Path(s).exists())


def _outputs(outs: list[str], names: list[str], inputs) -> list[list[str]]:
    """Per camera, its outputs (templates filled in); refuses what several cameras cannot share, an
    output that is an input and one file named twice, before anything is opened."""
    from urllib.parse import urlparse

    from ..media.outputs import OutputError

    one = len(names) == 1
    per: list[list[str]] = [[] for _ in names]
    seen: dict[Path, str] = {}
    folders: set[Path] = set()
    for out in outs:
        scheme = urlparse(out).scheme
        if out == "display" and not one:
            _fail("--out display shows one camera; with several, use --out http://127.0.0.1:8080 (a grid of all)")
        if scheme == "http":
            continue  # one server for all, a channel per camera (below)
        if "{name}" not in out and not one:
            _fail(f"--out {out} would be written by every camera; put {{name}} in it, e.g. rec/{{name}}.mp4")
        if out == "display" or (len(scheme) > 1 and scheme != "file"):  # a window, a push: no file
            for mine, name in zip(per, names, strict=True):
                mine.append(out.replace("{name}", name))
            continue
        for i, name in enumerate(names):
            path = out.replace("{name}", name)
            try:
                inputs.refuse(path, "--out")
            except OutputError as e:
                _fail(str(e))
            key = Path(path).resolve()
            if key in seen:
                _fail(f"--out {path} is named twice ({seen[key]} and {out}); give each output its own name")
            seen[key] = out
            per[i].append(path)
            if "{name}" in out:  # a template names a folder per site: made, as -o folders are
                folders.add(Path(path).parent)
    for folder in sorted(folders):  # after every check: a refused run makes nothing
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            _fail(f"--out: cannot make folder {folder}: {e.strerror or e}")
    return per


class _Opened:
    """What a run opened (sources, sinks per camera, the web server): closed together on failure."""

    def __init__(self):
        self.sources: list = []
        self.sinks_of: list[list] = []
        self.server = None

    def abandon(self) -> None:
        """Close everything unfinished (nothing recorded yet is kept), quietly: the caller reports why."""
        for s in [x for group in self.sinks_of for x in group]:
            try:
                s.close(complete=False)
            except Exception:  # noqa: BLE001 - the reason for abandoning is what the user must see
                pass
        for src in self.sources:
            src.close()
        if self.server is not None:
            self.server.close()


def stream_cameras(specs, outs: list[str], opts: LiveOptions) -> None:
    """Run every camera of ``specs`` (cameras.CameraSpec; one or more) until the duration, Ctrl-C,
    q in the window or the end of finite sources."""
    from dataclasses import replace

    from ..guidance.hint_tracks import VideoHints
    from ..media.sinks import SinkError, open_sink
    from ..media.sources import Policy, SourceError, open_source, parse_source
    from ..media.video import VideoError
    from ..runtime.backends.batching import BatchingBackend
    from ..video.cameras import CameraSet, name_cameras
    from ..video.stages import PipelineConfig, colorize_pipeline
    from .video import _check_stats

    specs = name_cameras(specs)
    names = [s.name for s in specs]
    one = len(specs) == 1
    inputs = input_files([s.source for s in specs])
    _check_stats(opts.stats_path, inputs)
    per_out = _outputs(outs, names, inputs)
    http = [o for o in outs if o.startswith("http://")]
    refs = [_references([Path(r) for r in s.reference]) for s in specs]
    opened, cams_holder, policies = _Opened(), [], []

    def log_for(name):
        return _log if one else (lambda m: _log(f"[{name}] {m}"))

    try:
        for spec in specs:
            parsed = parse_source(spec.source)
            # Read as a live source: reopened when it fails, pictures stamped with the capture clock (a
            # recording keeps real time, --loop included). A file run flat out loses nothing, though:
            # its frames go through the pipeline under the file policy.
            policies.append(Policy.FILE if parsed.kind == "file" and opts.no_pace else Policy.LIVE)
            opened.sources.append(
                open_source(
                    parsed,
                    Policy.LIVE,
                    pace=not opts.no_pace or parsed.kind != "file",  # --no-pace is for files
                    loop=opts.loop,
                    fps=opts.fps,
                    opencv=opts.opencv,
                    log=log_for(spec.name),
                    give_up_after=opts.give_up_after,
                )
            )
        if http:  # outputs before the model: a bad --out fails before it is loaded
            opened.server = open_sink(http[0], log=_log, allowed_hosts=opts.allowed_hosts)
        for spec, mine in zip(specs, per_out, strict=True):
            sinks: list = []
            opened.sinks_of.append(sinks)
            for o in mine:
                sinks.append(
                    open_sink(
                        o,
                        segment_minutes=opts.segment,
                        on_quit=lambda: cams_holder[0].stop(),
                        log=log_for(spec.name),
                        force=opts.force,
                        protect=inputs,
                        codec=opts.codec,
                        crf=opts.crf,
                        preset=opts.preset,
                    )
                )
            if opened.server is not None:
                sinks.append(opened.server.channel("" if one else spec.name))
        colorizer = _colorizer(opts.model, opts.backend, opts.device, opts.size, opts.saturation)
    except (SourceError, SinkError, VideoError) as e:
        opened.abandon()
        _fail(str(e))
    except BaseException:  # the model did not load (an RtcolorError), or Ctrl-C: nothing is left open
        opened.abandon()
        raise
    batching = BatchingBackend(colorizer.backend, callers=len(specs))
    colorizer = replace(colorizer, backend=batching)
    pipes = []
    for spec, sinks, ref, policy in zip(specs, opened.sinks_of, refs, policies, strict=True):
        k = spec.keyframe_interval
        temporal = replace(opts.temporal, keyframe_interval=k) if k else opts.temporal
        hints = VideoHints(opts.hints) if opts.hints is not None else None  # gated against this camera's view
        pcfg = PipelineConfig(temporal=temporal, references=ref, hints=hints)
        pipes.append(colorize_pipeline(colorizer, sinks, pcfg, policy))
    cams = CameraSet(names, pipes, opened.sources)
    cams_holder.append(cams)
    if not one:
        _log(f"{len(specs)} cameras: " + ", ".join(f"{s.name} ({s.source})" for s in specs))
    interrupted, closing_errors = _run(cams, opened, opts, one)
    batching.close()
    from .streamstats import finish

    finish(specs, cams, opened, batching, outs, opts, interrupted, closing_errors)


def _run(cams, opened: _Opened, opts: LiveOptions, one: bool) -> tuple[bool, list[str]]:
    """Run the set until it ends; every output is finished and closed even after a second Ctrl-C."""
    from ..media.sinks import SinkError
    from ..media.video import VideoError
    from .signals import finishing
    from .streamstats import Telemetry

    if opts.duration > 0:
        timer = threading.Timer(opts.duration, cams.stop)
        timer.daemon = True
        timer.start()
    telemetry = Telemetry(cams, opened.sources, opts.report_every, one)
    interrupted = False
    cams.start()
    try:
        while cams.running():
            time.sleep(0.2)
            for src, sinks in zip(opened.sources, opened.sinks_of, strict=True):
                for s in sinks:  # the preview says "reconnecting" while the camera is away
                    if hasattr(s, "set_state"):
                        s.set_state(src.outages.state.value)
            telemetry.tick()
    except KeyboardInterrupt:
        interrupted = True
    cams.stop()
    while cams.running():  # the pipelines drain what they hold into the sinks before those close
        try:
            cams.join(0.2)
        except KeyboardInterrupt:
            interrupted = True  # a second Ctrl-C: finish draining first
    closing_errors: list[str] = []
    unfinished = [s for group in opened.sinks_of for s in group]
    try:  # Ctrl-C now waits for the files to be finalized (a third press abandons them)
        with finishing(pending=[str(s.path) for s in unfinished if hasattr(s, "path")]) as asked:
            for src, sinks in zip(opened.sources, opened.sinks_of, strict=True):
                src.close()
                for s in sinks:  # every output is closed, even when one fails (a full disk under a recording)
                    try:
                        s.close(complete=True)
                    except (SinkError, VideoError, OSError) as e:
                        closing_errors.append(str(e))
                    unfinished.remove(s)
                    if str(getattr(s, "path", "")) in asked.pending:
                        asked.pending.remove(str(s.path))
    except KeyboardInterrupt:
        for s in unfinished:  # abandoned: no temporary file is left behind
            getattr(s, "abort", lambda: None)()
        raise
    return interrupted or asked.count > 0, closing_errors


def warn_problems(name: str, problems: list[str]) -> None:
    from ..video.pipeline import summarize

    _note("warning", "yellow", f"{name}: {summarize(problems)}; the recording holds each frame that decoded")
