"""What `rtcolor stream` says while it runs and when it ends: telemetry lines, the --stats file, the exit status.

One camera keeps its flat figures (``frames_out``, ``latency_p95_ms``, ``recordings`` ...);
several give ``cameras: {name: figures}`` and the totals.
"""

from __future__ import annotations

import time

import typer

from .app import _fail, _log


class Telemetry:
    """Lines every ``report_every`` seconds: per camera its state, rates, drops and latency."""

    def __init__(self, cams, sources: list, report_every: float, one: bool):
        self.cams, self.sources, self.every, self.one = cams, sources, report_every, one
        self.t = time.monotonic()
        self.last = [(0, 0) for _ in sources]  # frames in, frames out at the last line

    def tick(self) -> None:
        now = time.monotonic()
        if self.every <= 0 or now - self.t < self.every:
            return
        dt, total_in, total_out = now - self.t, 0, 0
        for i, (name, pipe, src) in enumerate(zip(self.cams.names, self.cams.pipelines, self.sources, strict=True)):
            s, (was_in, was_out) = pipe.stats, self.last[i]
            fresh = s.frames_out - was_out  # one latency is recorded per frame out
            p50, p95 = (s.latency_ms(q, recent=fresh) for q in (50, 95))
            o, state = src.outages.summary(), src.outages.state.value
            away = f" for {src.outages.down_for():.0f} s" if state in ("reconnecting", "connecting") else ""
            tag = "" if self.one else f"[{name}] "
            age = s.samples.get("keyframe_age_ms")  # live: how old the colors shown are (network beside the stream)
            aged = f", colors {age[-1]:.0f} ms old" if age else ""
            _log(
                f"{tag}{state}{away}: in {(s.frames_in - was_in) / dt:.1f} fps, out {fresh / dt:.1f} fps, "
                f"dropped {s.dropped}, latency p50 {p50 or 0:.0f} ms p95 {p95 or 0:.0f} ms{aged}, "
                f"outages {o['outages']} ({o['outage_seconds']:.0f} s)"
            )
            self.last[i] = (s.frames_in, s.frames_out)
            total_in, total_out = total_in + s.frames_in, total_out + s.frames_out
        if not self.one:
            _log(f"all cameras: {total_out} of {total_in} frames out")
        self.t = now


def _camera(spec, pipe, result, src, sinks, outs: list[str]) -> dict:
    """One camera's figures, and its problems (frames a file lost)."""
    one = pipe.stats.summary()
    one.update(source=spec.source, reconnects=getattr(src, "reconnects", 0), outputs=outs, **src.outages.summary())
    rec = [str(p) for s in sinks for p in getattr(s, "written", [])]
    if rec:
        one["recordings"] = rec
    problems = list(getattr(src, "problems", []))
    if result is not None and result.source_error and src.spec.kind in ("file", "images"):
        problems.append(f"reading failed before the end: {result.source_error}")
    if problems:
        one["problems"] = problems
    if src.gave_up:
        one["gave_up"] = src.gave_up
    return one


def finish(specs, cams, opened, batching, outs, opts, interrupted: bool, closing_errors: list[str]) -> None:
    """Print the summary, write --stats (atomically), and exit with the run's status."""
    from .cameras import warn_problems
    from .video import _write_stats

    one = len(specs) == 1
    figures = {}
    for spec, pipe, result, src, sinks in zip(
        specs, cams.pipelines, cams.results, opened.sources, opened.sinks_of, strict=True
    ):
        figures[spec.name] = _camera(spec, pipe, result, src, sinks, outs)
        f = figures[spec.name]
        tag = "" if one else f"[{spec.name}] "
        _log(
            f"{tag}{f['frames_out']} of {f['frames_in']} frames out ({f['dropped']} dropped as stale), "
            f"{f['fps']:.1f} fps, latency p50 {f['latency_p50_ms']} ms p95 {f['latency_p95_ms']} ms, "
            f"{f['reconnects']} reconnects, {f['outages']} outages ({f['outage_seconds']:.1f} s in all, "
            f"longest {f['longest_outage_seconds']:.1f} s)"
        )
        if f.get("problems"):
            warn_problems(spec.source, f["problems"])
    if one:
        summary = next(iter(figures.values()))
    else:
        summary = {
            "cameras": figures,
            "frames_in": sum(c["frames_in"] for c in figures.values()),
            "frames_out": sum(c["frames_out"] for c in figures.values()),
        }
        _log(f"in all: {summary['frames_out']} of {summary['frames_in']} frames out")
    mean = round(batching.rows / batching.calls, 2) if batching.calls else 0.0
    summary.update(network_calls=batching.calls, mean_batch=mean)
    _write_stats(opts.stats_path, summary)
    tag = (lambda n: "") if one else (lambda n: f"{n}: ")
    failed = [f"{tag(n)}{r.failure}" for n, r in zip(cams.names, cams.results, strict=True) if r and r.failure]
    gave_up = [f"{tag(n)}{s.gave_up}" for n, s in zip(cams.names, opened.sources, strict=True) if s.gave_up]
    if gave_up:
        failed.append(f"{'; '.join(gave_up)}; gave up (--give-up-after {opts.give_up_after:g})")
    if failed or closing_errors:
        _fail("; ".join(failed + closing_errors), code=1)
    if interrupted:
        raise typer.Exit(130)
    if any(f.get("problems") for f in figures.values()):  # frames were lost: a partial run is not a success
        raise typer.Exit(1)
