"""Naming threads where the operating system shows them, for every part that runs its own.

The pipeline's stages, a camera's reader and a backend's batcher each hold a core; ``top -H`` and
``/proc/PID/task`` show which one only if the native thread carries a name.
"""

from __future__ import annotations

import sys


def name_native_thread(name: str) -> None:
    """Give the calling thread ``name`` where the OS shows it (Linux: ``top -H``, ``/proc/PID/task``;
    15 characters at most), so an operator sees which stage holds a core. Python < 3.14 does not."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        pr_set_name = 15  # prctl(PR_SET_NAME): names the calling thread, no handle needed
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_name, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass
