"""The ``rtcolor`` command: parses options, builds a config, calls the library.

One typer app; the commands live in ``video`` (colorize), ``live`` (stream), ``stills`` (image,
export, info), ``training`` (train, adapt), ``models`` (calibrate, average) and ``measure`` (bench,
eval). No logic of their own beyond turning options into calls.
"""

from __future__ import annotations

import os
import sys
import threading

from rich.markup import escape

from ..model.checkpoint import TORCH_EXTRA
from .app import _INTERRUPTS, RENAMED_OPTIONS, app, err, option_message, option_name, renamed  # noqa: F401

# isort: split
# Registration order is the order of `rtcolor --help`: the video jobs first, then stills, training
# and models, then measuring (the editor beside the stills).
from . import video  # noqa: F401,I001
from . import live  # noqa: F401
from . import stills  # noqa: F401
from . import edit  # noqa: F401
from . import training  # noqa: F401
from . import models  # noqa: F401
from . import measure  # noqa: F401


def _interrupt(signum, frame) -> None:
    _INTERRUPTS[0] += 1
    raise KeyboardInterrupt  # SIGTERM finalizes outputs exactly like Ctrl-C


def _exiting() -> None:
    """The outputs are final: a Ctrl-C from now on ends the run at once with 130. Python resets its
    signal handlers before the native libraries (onnxruntime, torch) finish tearing down, and a
    Ctrl-C then killed the process by the signal itself; from the last exit handler on it is ignored."""
    import atexit
    import signal

    def now(signum, frame):
        os._exit(130)

    def ignore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # left alone by Python's own teardown

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, now)
        signal.signal(signal.SIGTERM, now)
        atexit.register(ignore)


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _interrupt)
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: `rtcolor stream ... &` followed by `kill -INT` would record on forever.
    signal.signal(signal.SIGINT, _interrupt)
    try:
        app()
    except KeyboardInterrupt:
        _exiting()
        err.print("interrupted")
        sys.exit(130)
    except OSError as e:
        if os.environ.get("RTCOLOR_TRACEBACK") or not getattr(e, "filename", None):
            _unexpected(e)
        from ..media.outputs import explain  # a file the commands did not foresee: still one plain line

        err.print(f"[bold red]error:[/] {escape(explain(e.filename, e, 'use'))}", highlight=False)
        sys.exit(1)
    except Exception as e:  # what no command foresaw (out of memory, a driver fault): one line, not a traceback
        if isinstance(e, ModuleNotFoundError) and (e.name or "").split(".")[0] in ("torch", "torchvision"):
            # The inference commands run on ONNX Runtime alone; training, export and GPUs need PyTorch.
            err.print(
                f"[bold red]error:[/] this needs PyTorch, which is not installed: {escape(TORCH_EXTRA)}",
                highlight=False,
            )
            sys.exit(2)
        _unexpected(e)
    finally:
        _exiting()


def _unexpected(e: Exception) -> None:
    if os.environ.get("RTCOLOR_TRACEBACK"):
        raise e
    err.print(f"[bold red]error:[/] unexpected {type(e).__name__}: {escape(str(e))}", highlight=False)
    err.print("set RTCOLOR_TRACEBACK=1 to see where it happened, and please report it", highlight=False)
    sys.exit(1)


if __name__ == "__main__":
    main()
