"""The page's "colorize" action: the real job (``image`` for a picture, ``colorize`` for a video),
run with the hints file into an output the user named, with its progress for the page.

The output is a plain file name, put in the output folder (INPUT's own unless ``--output`` named
another): the page can never write elsewhere. It must not be INPUT or the hints file, and an
existing file is replaced only when the user said so (the page asks). The CLI command that gives
the same result is part of the job's state, so the user can script it.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from dataclasses import replace
from pathlib import Path

from ..errors import RtcolorError
from ..media.images import IMAGE_SUFFIXES
from ..media.video import VIDEO_SUFFIXES
from .session import EditError

MAX_NAME = 200  # characters; a longer output name is almost surely not one a user typed


class Interrupted(RtcolorError):
    """The editor stopped (Ctrl-C) while the job ran: it was cut short and its partial output removed."""

    exit_code = 130


def check_name(name: object, kind: str) -> str:
    """A plain output file name of the input's kind, or EditError saying what is wrong with it."""
    suffixes = IMAGE_SUFFIXES if kind == "picture" else VIDEO_SUFFIXES
    if not isinstance(name, str) or not name.strip():
        raise EditError("name the output file")
    name = name.strip()
    if len(name) > MAX_NAME or any(c in name for c in "/\\\0") or name in (".", "..") or name.startswith("."):
        raise EditError(f"output {name!r}: give a plain file name (no folders); it is written beside the input")
    if Path(name).suffix.lower() not in suffixes:
        raise EditError(f"output {name!r}: name a {' '.join(sorted(suffixes))} file")
    return name


class Job:
    """At most one colorize run at a time, in a thread; ``status()`` is what the page polls."""

    def __init__(self, session, out_dir: Path, cli_options: list[str], log=lambda m: None, default_output=None):
        self.session, self.out_dir, self.cli_options, self.log = session, Path(out_dir), cli_options, log
        self.default_output = default_output
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self._status: dict = {"state": "idle"}

    def default_name(self) -> str:
        """``<stem>_color.png`` beside a picture, ``<stem>_color.mp4`` beside a video (none for a live view)."""
        media = self.session.media
        if media.kind == "live":
            return ""
        if self.default_output:
            return self.default_output
        return f"{media.path.stem}_color{'.png' if media.kind == 'picture' else '.mp4'}"

    def command(self, dest: Path) -> str:
        """The CLI command that gives what the page's colorize gives (for a live view: the stream)."""
        media = self.session.media
        hints = ["--hints", str(self.session.path)]
        if media.kind == "live":
            return shlex.join(["rtcolor", "stream", media.uri, *hints, *self.cli_options])
        verb = "image" if media.kind == "picture" else "colorize"
        return shlex.join(["rtcolor", verb, str(media.path), "-o", str(dest), *hints, *self.cli_options])

    def start(self, name: object, overwrite: bool) -> dict:
        media = self.session.media
        if media.kind == "live":
            raise EditError("a live view is not colorized here; run the command shown (stream --hints)")
        name = check_name(name, media.kind)
        dest = self.out_dir / name
        taken = (media.path, self.session.path)
        if dest.resolve() in {p.resolve() for p in taken} or (
            dest.exists() and any(p.exists() and os.path.samefile(dest, p) for p in taken)  # a hard link too
        ):
            raise EditError(f"output {name!r} is the input or the hints file; choose another name")
        if dest.is_dir():
            raise EditError(f"output {name!r} is a folder; choose another name")
        with self.lock:
            if self.thread is not None and self.thread.is_alive():
                raise EditError("a colorize run is already going; wait for it to finish")
            if dest.exists() and not overwrite:
                return {"state": "exists", "output": str(dest), "message": f"{dest} exists; replace it?"}
            self._status = {"state": "running", "output": str(dest), "done": 0, "total": media.frames,
                            "command": self.command(dest), "started": time.time()}  # fmt: skip
            self.thread = threading.Thread(target=self._run, args=(dest,), name="rtcolor-edit-job", daemon=True)
            self.thread.start()
            return dict(self._status)

    def status(self) -> dict:
        with self.lock:
            return dict(self._status)

    def _update(self, **kw) -> None:
        with self.lock:
            self._status.update(kw)

    def _run(self, dest: Path) -> None:
        try:
            self.log(f"colorizing into {dest}: {self._status['command']}")
            if self.session.media.kind == "picture":
                self._picture(dest)
            else:
                self._video(dest)
        except Interrupted:
            self._update(state="interrupted", message="stopped before the end; nothing was written")
            return
        except Exception as e:  # noqa: BLE001 - any failure is shown on the page and the terminal, in one line
            message = str(e) or type(e).__name__
            self.log(f"colorize failed: {message}")
            self._update(state="failed", message=message)
            return
        self.log(f"wrote {dest}")
        self._update(state="done", message=f"wrote {dest}")

    def _picture(self, dest: Path) -> None:
        from ..media.images import write_image
        from ..media.sources import read_still

        pic = read_still(self.session.media.path)
        colorizer, hints = self.session.colorizer, self.session.hints.hints
        # As `image --hints` does: a model without hint inputs refuses hints (one line on the page).
        result = colorizer.colorize(pic.pixels, hints=hints) if hints else colorizer.colorize(pic.pixels)
        write_image(dest, result, pic.alpha)
        self._update(done=1)

    def _video(self, dest: Path) -> None:
        from ..guidance.hint_tracks import VideoHints, scan_hints
        from ..media.outputs import discard
        from ..media.video import partial_name
        from ..video.stages import PipelineConfig, colorize_file

        hints, src, size = self.session.hints, self.session.media.path, self.session.colorizer.size
        # As `colorize --hints FILE` runs: its batch rule, and frame hints followed through their
        # shots on a first pass (frame-less ones gated on every keyframe).
        on_gpu = str(getattr(self.session.colorizer.backend, "device", "cpu")).startswith("cuda")
        cfg = PipelineConfig(temporal=self.session.temporal, batch=8 if on_gpu else 1)
        if all(h.frameless for h in hints.hints):
            cfg = replace(cfg, hints=VideoHints(hints))
        else:
            cfg = replace(cfg, hints=scan_hints(hints, src, size, cfg.temporal, str(self.session.path))[0])

        def poll(pipe) -> None:
            if self.stopping.is_set():  # the runner treats it as Ctrl-C: drains, finalizes a partial file
                raise KeyboardInterrupt
            self._update(done=pipe.stats.frames_out)

        try:
            result = colorize_file(src, dest, self.session.colorizer, cfg, on_poll=poll)
        except KeyboardInterrupt:  # stopped before the first frame: nothing was written
            raise Interrupted from None
        if not result.complete:
            discard(partial_name(dest))  # the editor's run is whole or nothing
            if self.stopping.is_set():
                raise Interrupted
            raise EditError(f"{dest}: the run did not complete ({'; '.join(result.problems) or result.outcome.value})")
        self._update(done=result.stats.frames_out)

    def stop(self) -> None:
        """Cut a running job short (the editor is stopping) and wait for it to clean up."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=30.0)
