"""`rtcolor colorize --cluster`: the same files as on one machine, made by a Ray cluster's workers."""

from __future__ import annotations

import time
from pathlib import Path

from .app import _fail, _log, _note, err

CLUSTER_HELP = (
    "Spread the work over a Ray cluster: auto (the cluster this machine joined with `ray start`), local or "
    "local:N (Ray on this machine, N workers), ray://HOST:PORT (Ray Client) or HOST:PORT (the head node). "
    "Inputs, outputs and --model must be paths every worker can see (shared storage), and rtcolor must be "
    "installed on every node. Needs Ray: pip install 'rtcolor\\[cluster]'."  # \[: not rich markup
)
RESOURCES_HELP = "What each task asks the cluster for, e.g. GPU=1 (one GPU per task) or CPU=2. Default CPU=1."
SEGMENT_HELP = (
    "With --cluster: a video longer than this is cut at keyframes into segments of about this length, "
    "colorized by several workers (each after a short warm-up, so there is no seam) and joined without "
    "re-encoding."
)


def colorize_on_cluster(
    paths: list[Path],
    output: Path,
    many: bool,
    pcfg,
    choice,
    encoder,
    where,
    force: bool,
    resume: bool,
    failures: int = 0,
) -> tuple[list[dict], int]:
    """Colorize ``paths`` on the cluster; returns one summary per file (for --stats) and how many
    files failed. ``choice`` is the model (``ModelChoice``), ``encoder`` the recordings'
    ``EncoderSettings``, ``where`` the ``ClusterSettings``. Exits 130 on Ctrl-C (finished outputs
    kept, no half files)."""
    import typer
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ..video.cluster import ClusterError, FileJob, WorkerOptions, import_ray, run

    if pcfg.references or pcfg.color_frames is not None:
        _fail("--reference and --color-frames are not supported with --cluster yet; run without --cluster")
    if where.segment_seconds <= 0:
        _fail(f"--segment-seconds {where.segment_seconds:g} must be > 0")
    try:
        import_ray()
    except ClusterError as e:
        _fail(str(e))
    from ..media.outputs import Inputs

    jobs, inputs = [], Inputs(paths)
    for src in paths:
        dest = output / src.name if many else output
        if inputs.holding(dest) is not None:
            _note("failed", "red", f"{src}: {Inputs.message(dest, inputs.holding(dest), 'its output')}")
        elif any(j.dest.resolve() == dest.resolve() for j in jobs):
            _note("failed", "red", f"{src}: another input already writes {dest} (same file name)")
        elif dest.exists() and resume:
            _note("skipped", "green", f"{src}: {dest} is complete (--resume)")
            continue
        elif dest.exists() and not force:
            _note("failed", "red", f"{src}: {dest} exists; pass --force to overwrite it, or --resume to skip it")
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            jobs.append(FileJob(src, dest))
            continue
        failures += 1
    opts = WorkerOptions(choice, pcfg, encoder)
    results: list[dict] = []

    def done(job) -> None:
        seconds = time.monotonic() - job.started
        summary = {"input": str(job.src), "output": str(job.dest), "complete": job.error is None}
        summary.update(segments=len(job.segments), frames_out=sum(r["frames"] for r in job.results.values()))
        summary.update(seconds=round(seconds, 3), workers=sorted({r["worker"] for r in job.results.values()}))
        if job.error is not None:
            summary["problems"] = [job.error]
            _note("failed", "red", job.error if str(job.src) in job.error else f"{job.src}: {job.error}")
        else:
            _log(f"{job.dest}: {summary['frames_out']} frames, {len(job.segments)} segments, {seconds:.1f}s")
        results.append(summary)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    columns += (TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(f"{len(jobs)} files on {where.address}", total=None, fps=0.0)

        def progress(frames: int, total: int, fps: float) -> None:
            bar.update(task, completed=frames, total=total or None, fps=fps)

        try:
            run(jobs, opts, where, on_progress=progress, on_done=done)
        except ClusterError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _log(f"interrupted: {sum(r['complete'] for r in results)} finished outputs kept, unfinished parts removed")
            raise typer.Exit(130) from None
    return results, failures + sum(not r["complete"] for r in results)
