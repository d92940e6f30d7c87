"""`rtcolor stream` with several cameras: one process, one model, a pipeline per camera."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import _colorizer, _fail, _log, _references

if TYPE_CHECKING:
    from ..video.temporal import TemporalConfig


@dataclass(frozen=True)
class LiveOptions:
    """What `rtcolor stream` was asked, beside its sources, outputs and references: shared by the
    one-camera path (cli/live.py) and the many-camera one (here)."""

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


def _outputs(outs: list[str], names: list[str]) -> list[list[str]]:
    """Per camera, its outputs from the templates; refuses what several cameras cannot share."""
    from urllib.parse import urlparse

    per = [[] for _ in names]
    for out in outs:
        scheme = urlparse(out).scheme
        if out == "display":
            _fail("--out display shows one camera; with several, use --out http://127.0.0.1:8080 (a grid of all)")
        if scheme == "http":
            continue  # one server for all, a channel per camera (below)
        if "{name}" not in out:
            _fail(f"--out {out} would be written by every camera; put {{name}} in it, e.g. rec/{{name}}.mp4")
        for i, name in enumerate(names):
            per[i].append(out.replace("{name}", name))
            if not scheme:  # a recording template names a folder per site: made, as -o folders are
                try:
                    Path(per[i][-1]).parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    _fail(f"--out {out}: cannot make folder {Path(per[i][-1]).parent}: {e.strerror or e}")
    return per


def stream_cameras(specs, outs: list[str], opts: LiveOptions) -> None:
    """Run every camera of ``specs`` (cameras.CameraSpec) until the duration, Ctrl-C or the end of
    finite sources."""
    from dataclasses import replace

    from ..media.sinks import SinkError, open_sink
    from ..media.sources import Policy, SourceError, open_source
    from ..media.video import VideoError
    from ..runtime.backends.batching import BatchingBackend
    from ..video.cameras import CameraSet, name_cameras
    from ..video.stages import PipelineConfig, colorize_pipeline

    specs = name_cameras(specs)
    names = [s.name for s in specs]
    per_out = _outputs(outs, names)
    http = [o for o in outs if o.startswith("http://")]
    refs = [_references([Path(r) for r in s.reference]) for s in specs]
    sources, sinks_of, server = [], [], None

    def log_for(name):
        return lambda m: _log(f"[{name}] {m}")

    try:
        for spec in specs:
            sources.append(
                open_source(
                    spec.source,
                    Policy.LIVE,
                    pace=not opts.no_pace,
                    loop=opts.loop,
                    fps=opts.fps,
                    opencv=opts.opencv,
                    log=log_for(spec.name),
                    give_up_after=opts.give_up_after,
                )
            )
        if http:
            server = open_sink(http[0], log=_log)
        for spec, mine in zip(specs, per_out, strict=True):
            sinks = [
                open_sink(
                    o,
                    segment_minutes=opts.segment,
                    log=log_for(spec.name),
                    force=opts.force,
                    codec=opts.codec,
                    crf=opts.crf,
                    preset=opts.preset,
                )
                for o in mine
            ]
            if server is not None:
                sinks.append(server.channel(spec.name))
            sinks_of.append(sinks)
    except (SourceError, SinkError, VideoError) as e:
        for s in [x for group in sinks_of for x in group]:
            s.close(complete=False)
        for src in sources:
            src.close()
        if server is not None:
            server.close()
        _fail(str(e))
    colorizer = _colorizer(opts.model, opts.backend, opts.device, opts.size)
    batching = BatchingBackend(colorizer.backend, callers=len(specs))
    colorizer = replace(colorizer, backend=batching)
    base = opts.temporal
    pipes = []
    for spec, sinks, ref in zip(specs, sinks_of, refs, strict=True):
        temporal = replace(base, keyframe_interval=spec.keyframe_interval) if spec.keyframe_interval else base
        pipes.append(
            colorize_pipeline(colorizer, sinks, PipelineConfig(temporal=temporal, references=ref), Policy.LIVE)
        )
    cams = CameraSet(names, pipes, sources)
    _log(f"{len(specs)} cameras: " + ", ".join(f"{s.name} ({s.source})" for s in specs))
    if opts.duration > 0:
        timer = threading.Timer(opts.duration, cams.stop)
        timer.daemon = True
        timer.start()
    interrupted, last = False, time.monotonic()
    cams.start()
    try:
        while cams.running():
            time.sleep(0.2)
            for src, sinks in zip(sources, sinks_of, strict=True):
                for s in sinks:
                    if hasattr(s, "set_state"):
                        s.set_state(src.outages.state.value)
            if opts.report_every > 0 and time.monotonic() - last >= opts.report_every:
                last = time.monotonic()
                _telemetry(names, pipes, sources)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        cams.stop()
        cams.join()
        closing_errors = []
        for src, sinks in zip(sources, sinks_of, strict=True):
            src.close()
            for s in sinks:
                try:
                    s.close(complete=True)
                except (SinkError, VideoError, OSError) as e:
                    closing_errors.append(str(e))
        batching.close()
    summary = _summary(names, specs, pipes, sources, sinks_of, batching)
    _telemetry(names, pipes, sources, final=True)
    if opts.stats_path:
        Path(opts.stats_path).write_text(json.dumps(summary, indent=2))
    failed = [f"{n}: {r.failure}" for n, r in zip(names, cams.results, strict=True) if r is not None and r.failure]
    failed += [f"{n}: {s.gave_up}" for n, s in zip(names, sources, strict=True) if s.gave_up]
    if failed or closing_errors:
        _fail("; ".join(failed + closing_errors), code=1)
    if interrupted:
        import typer

        raise typer.Exit(130)


def _telemetry(names, pipes, sources, final: bool = False) -> None:
    total_in = total_out = 0
    for name, pipe, src in zip(names, pipes, sources, strict=True):
        s = pipe.stats
        total_in, total_out = total_in + s.frames_in, total_out + s.frames_out
        _log(
            f"[{name}] {src.outages.state.value}: {s.frames_out} of {s.frames_in} frames out, dropped {s.dropped}, "
            f"latency p50 {s.latency_ms(50) or 0:.0f} ms p95 {s.latency_ms(95) or 0:.0f} ms, "
            f"outages {src.outages.summary()['outages']}"
        )
    _log(f"{'all cameras' if not final else 'in all'}: {total_out} of {total_in} frames out")


def _summary(names, specs, pipes, sources, sinks_of, batching) -> dict:
    cams = {}
    for name, spec, pipe, src, sinks in zip(names, specs, pipes, sources, sinks_of, strict=True):
        one = pipe.stats.summary()
        one.update(source=spec.source, reconnects=src.reconnects, **src.outages.summary())
        rec = [str(p) for s in sinks for p in getattr(s, "written", [])]
        if rec:
            one["recordings"] = rec
        cams[name] = one
    return {
        "cameras": cams,
        "frames_in": sum(c["frames_in"] for c in cams.values()),
        "frames_out": sum(c["frames_out"] for c in cams.values()),
        "network_calls": batching.calls,
        "mean_batch": round(batching.rows / batching.calls, 2) if batching.calls else 0.0,
    }
