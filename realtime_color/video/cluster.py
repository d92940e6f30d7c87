"""Colorizing on a Ray cluster: every segment of every file is one Ray task.

Ray is an optional extra and is imported only here, only when a cluster is asked for. The driver
(the machine running ``rtcolor colorize --cluster``) plans the segments (``segments.py``), submits
one task per segment, shows one progress bar for all of them, and joins each file's parts as soon
as they are all done. The workers need the same paths as the driver (shared storage): a worker
that cannot read an input or write next to its output fails that file with a line saying so, and
the other files go on.

Failures: a worker process or node that dies is a system failure, and Ray runs its task again
(``max_retries``) on whichever worker is free; a task that raises (a damaged file, an unreadable
path) fails its file at once, since running it again would fail the same way. Ctrl-C cancels the
tasks and removes the parts of the files not yet joined: finished outputs stay, half files don't.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RtcolorError
from ..media.outputs import temp_path
from ..media.video import EncoderSettings, VideoError
from ..runtime.colorizer import ModelChoice
from .segments import DEFAULT_SEGMENT_SECONDS, DEFAULT_WARMUP_SECONDS, Segment, join_parts, part_path, plan_segments
from .stages import PipelineConfig

RAY_EXTRA = "pip install 'rtcolor[cluster]'"
DEFAULT_RETRIES = 3  # runs of a segment whose worker died, beyond the first


class ClusterError(RtcolorError):
    """A cluster that cannot be used as asked: the text names the value and the fix."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def init_options(address: str) -> dict:
    """``ray.init`` keywords for --cluster: auto (the cluster this machine belongs to, started with
    ``ray start``), local / local:N (a private Ray on this machine, N worker CPUs), ray://HOST:PORT
    (Ray Client) or HOST:PORT (a head node's GCS address)."""
    if address == "auto" or address.startswith("ray://"):
        return {"address": address}
    if address == "local":
        return {}
    m = re.fullmatch(r"local:(\d+)", address)
    if m and int(m.group(1)) > 0:
        return {"num_cpus": int(m.group(1))}
    if re.fullmatch(r"[\w.\-]+:\d+", address) or re.fullmatch(r"\[[0-9a-fA-F:]+\]:\d+", address):
        return {"address": address}
    raise ClusterError(f"--cluster {address!r}: use auto, local, local:N, ray://HOST:PORT or HOST:PORT")


def task_resources(text: str | None) -> dict:
    """``--cluster-resources GPU=1,CPU=2,big_disk=1`` -> Ray task options. Default: one CPU a task."""
    opts: dict = {"num_cpus": 1}
    custom = {}
    for item in filter(None, (text or "").replace(" ", "").split(",")):
        name, _, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not name or amount < 0:
            raise ClusterError(f"--cluster-resources {item!r}: write NAME=AMOUNT, e.g. GPU=1 or CPU=2")
        key = {"CPU": "num_cpus", "GPU": "num_gpus"}.get(name.upper())
        if key:
            opts[key] = amount
        else:
            custom[name] = amount
    if custom:
        opts["resources"] = custom
    return opts


@dataclass(frozen=True)
class ClusterSettings:
    """Where and how finely the work is spread: the Ray address (``init_options``), what each task
    asks for (``task_resources``), the segment length and warm-up, and the retries of a segment
    whose worker died."""

    address: str = "auto"
    resources: str | None = None
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    warmup_seconds: float = DEFAULT_WARMUP_SECONDS
    retries: int = DEFAULT_RETRIES


@dataclass(frozen=True)
class WorkerOptions:
    """What a worker needs to build its colorizer and encoder (the model path must be shared too)."""

    choice: ModelChoice
    pipeline: PipelineConfig  # batch 0: chosen by the worker's device
    encoder: EncoderSettings = field(default_factory=EncoderSettings)


def run_segment(opts: WorkerOptions, src: str, part: str, segment: Segment, progress=None, key=None) -> dict:
    """The body of one Ray task: colorize ``segment`` of ``src`` into ``part``.

    Each task opens its own colorizer: no state outlives it in the worker process. A segment is
    minutes of video (``DEFAULT_SEGMENT_SECONDS``), against well under a second to load a model."""

    where = f"worker {socket.gethostname()} (pid {os.getpid()})"
    if not os.access(src, os.R_OK):
        raise VideoError(f"{src}: {where} cannot read it; inputs must be on storage every worker sees")
    if not os.access(Path(part).parent, os.W_OK):
        raise VideoError(f"{part}: {where} cannot write there; outputs must be on storage every worker sees")
    from .segments import colorize_segment

    colorizer = opts.choice.open()  # a GPU task sees its own GPU
    cfg = opts.pipeline.for_device(getattr(colorizer.backend, "device", "cpu"))  # as on one machine
    last = [0.0]

    def report(frames: int) -> None:
        now = time.monotonic()
        if progress is not None and now - last[0] > 0.5:  # a message per half second, not per frame
            last[0] = now
            progress.report.remote(key, frames)

    summary = colorize_segment(src, part, segment, colorizer, cfg, opts.encoder, report)
    if progress is not None:
        progress.report.remote(key, summary["frames"])
    summary["worker"] = where
    return summary


class Progress:
    """A Ray actor holding frames done per segment; a rerun segment restarts its own count."""

    def __init__(self):
        self.done: dict = {}

    def report(self, key, frames: int) -> None:
        self.done[key] = frames

    def total(self) -> int:
        return sum(self.done.values())


@dataclass
class FileJob:
    """One input, its output, its segments and the parts done so far."""

    src: Path
    dest: Path
    segments: list[Segment] = field(default_factory=list)
    results: dict = field(default_factory=dict)  # segment index -> summary
    error: str | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def parts_dir(self) -> Path:
        return temp_path(self.dest, "rtcolor-parts")

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)

    def exact(self) -> bool:
        """Whether the frame counts were counted (a demux pass), not estimated from the header."""
        return len(self.segments) > 1


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # RayTaskError: the worker's own exception
    if cause is not None:
        e = cause
    text = str(e).strip().splitlines()
    return text[-1] if isinstance(e, VideoError) or not text else f"{type(e).__name__}: {text[-1]}"


def run(
    jobs: list[FileJob],
    opts: WorkerOptions,
    where: ClusterSettings | None = None,
    on_progress=None,
    on_done=None,
) -> list[FileJob]:
    """Colorize ``jobs`` on the cluster. ``on_progress(done, total, fps)`` is called about twice a
    second, ``on_done(job)`` when a file is joined or failed (``job.error``). Returns the jobs.
    KeyboardInterrupt cancels the tasks, removes unjoined parts, and propagates."""
    ray = import_ray()
    where = where or ClusterSettings()
    task_opts = task_resources(where.resources)  # a bad value fails before Ray starts
    started_ray = not ray.is_initialized()  # a library caller (a test) may have started Ray already
    if started_ray:
        handlers = _signal_handlers()
        try:
            ray.init(**init_options(where.address), include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise ClusterError(f"--cluster {where.address}: cannot connect to Ray: {_one_line(e)}") from None
        finally:
            _restore(handlers)
    try:
        return _run(ray, jobs, opts, task_opts, where, on_progress, on_done)
    finally:
        if started_ray:
            ray.shutdown()


def _signal_handlers() -> dict:
    import signal

    return {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


def _restore(handlers: dict) -> None:
    """Put back the SIGINT/SIGTERM handlers ``ray.init`` replaced (its core dumps a stack and exits
    1 on SIGTERM): a terminated job then cleans up like Ctrl-C does and exits 130."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers (and Ray's were not installed from another)
    for sig, handler in handlers.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)


def _run(ray, jobs, opts, task_opts, where: ClusterSettings, on_progress, on_done):
    task = ray.remote(run_segment).options(max_retries=where.retries, **task_opts)
    progress = ray.remote(num_cpus=0)(Progress).remote()
    pending: dict = {}  # ObjectRef -> (job, segment)
    live: list[FileJob] = []
    try:
        for job in jobs:
            try:
                job.segments = plan_segments(job.src, where.segment_seconds, where.warmup_seconds)
                shutil.rmtree(job.parts_dir, ignore_errors=True)  # an earlier run's, interrupted
                job.parts_dir.mkdir(parents=True)
            except (VideoError, OSError) as e:
                _finish(job, str(e), on_done)
                continue
            live.append(job)
            for seg in job.segments:
                part = str(part_path(job.parts_dir, seg))
                ref = task.remote(opts, str(job.src), part, seg, progress, (str(job.dest), seg.index))
                pending[ref] = (job, seg)
        total, t0 = sum(j.frames for j in live), time.monotonic()
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0.5)
            for ref in ready:
                job, seg = pending.pop(ref)
                if job.error is not None:
                    continue
                try:
                    job.results[seg.index] = ray.get(ref)
                except (ray.exceptions.RayError, VideoError) as e:
                    _cancel(ray, pending, job)
                    _finish(job, _one_line(e), on_done)
                    continue
                if len(job.results) == len(job.segments):
                    _join(job, on_done)
            if on_progress is not None:
                done = ray.get(progress.total.remote())
                on_progress(done, total, done / max(1e-6, time.monotonic() - t0))
    except BaseException:  # Ctrl-C: finished outputs stay; no half file, no parts left behind
        for ref in pending:
            ray.cancel(ref, force=True)
        for job in live:
            shutil.rmtree(job.parts_dir, ignore_errors=True)
        raise
    return jobs


def _cancel(ray, pending: dict, job: FileJob) -> None:
    for ref, (j, _) in list(pending.items()):
        if j is job:
            ray.cancel(ref, force=True)
            del pending[ref]


def _join(job: FileJob, on_done) -> None:
    parts = [(part_path(job.parts_dir, s), job.results[s.index]["first_pts"]) for s in job.segments]
    try:
        join_parts(job.src, parts, job.dest, job.frames if job.exact() else None)
    except (VideoError, OSError) as e:
        _finish(job, str(e), on_done)
        return
    shutil.rmtree(job.parts_dir, ignore_errors=True)
    _finish(job, None, on_done)


def _finish(job: FileJob, error: str | None, on_done) -> None:
    job.error = error
    if error is not None:
        shutil.rmtree(job.parts_dir, ignore_errors=True)
    if on_done is not None:
        on_done(job)
