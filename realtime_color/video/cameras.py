"""Several cameras in one process: one model, one pipeline per camera, keyframes batched across them.

Each camera keeps what a single ``rtcolor stream`` has: its own capture thread and live policy
(stale frames dropped, never queued), its own temporal state (keyframes, flow, cuts, reference)
and outputs, so a slow or dead camera never stalls the others. What they share is the network:
one model in memory, and keyframes that fall due together go through it as one batch
(backends/batching.py).

Cameras come from the command line (``rtcolor stream SRC SRC ...``) or from a TOML file
(``--cameras cams.toml``)::

    [[camera]]
    name = "gate"                     # optional: default from the source (file stem, host and path)
    source = "rtsp://10.0.0.5/stream"
    reference = ["gate_day.png"]      # optional: known colors of this view
    keyframe_interval = 8             # optional: this camera's own

Outputs are templates: ``rec/{name}.mp4`` gives every camera its recording.
"""

from __future__ import annotations

import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from ..errors import RtcolorError

FIELDS = {"name", "source", "reference", "keyframe_interval"}


class CamerasError(RtcolorError, ValueError):
    """A cameras file or a camera list that cannot be used, naming the camera and the fix."""


@dataclass
class CameraSpec:
    source: str
    name: str = ""
    reference: list[str] = field(default_factory=list)
    keyframe_interval: int | None = None


def default_name(source: str) -> str:
    """A short, file-safe name: camera 0 -> cam0, /dev/video2 -> video2, clip.mp4 -> clip,
    rtsp://10.0.0.5/live/1 -> 10.0.0.5_live_1."""
    if source.isdigit():
        return f"cam{source}"
    parsed = urlparse(source)
    if parsed.scheme and parsed.scheme not in ("file",) and len(parsed.scheme) > 1:
        text = (parsed.hostname or parsed.scheme) + (parsed.path or "")
        if parsed.scheme == "synth":
            text = "synth"
    else:
        text = Path(source).stem or Path(source).name
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("_") or "camera"


def name_cameras(specs: list[CameraSpec]) -> list[CameraSpec]:
    """Give every camera a name, unique among them (a second 'gate' becomes 'gate_2')."""
    seen: dict[str, int] = {}
    for spec in specs:
        base = spec.name or default_name(spec.source)
        seen[base] = seen.get(base, 0) + 1
        spec.name = base if seen[base] == 1 else f"{base}_{seen[base]}"
    return specs


def load_cameras(path: Path) -> list[CameraSpec]:
    """Read a cameras file (TOML, see the module docstring)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as e:
        raise CamerasError(f"--cameras {path}: {e.strerror or e}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CamerasError(f"--cameras {path}: not valid TOML ({e})") from None
    cams = data.get("camera")
    if not isinstance(cams, list) or not cams:
        raise CamerasError(f'--cameras {path}: no [[camera]] tables (each needs source = "...")')
    specs = []
    for i, cam in enumerate(cams, 1):
        unknown = set(cam) - FIELDS
        if unknown:
            raise CamerasError(
                f"--cameras {path}: camera {i} has unknown keys {sorted(unknown)} (known: {sorted(FIELDS)})"
            )
        if not isinstance(cam.get("source"), str | int):
            raise CamerasError(f'--cameras {path}: camera {i} needs source = "rtsp://..." (or a file, or 0)')
        refs = cam.get("reference", [])
        k = cam.get("keyframe_interval")
        if k is not None and (not isinstance(k, int) or k < 1):
            raise CamerasError(f"--cameras {path}: camera {i}: keyframe_interval must be a whole number >= 1")
        specs.append(
            CameraSpec(
                source=str(cam["source"]),
                name=str(cam.get("name", "")),
                reference=[refs] if isinstance(refs, str) else list(refs),
                keyframe_interval=k,
            )
        )
    return specs


class CameraSet:
    """The pipelines of several cameras, run on threads; ``stop`` ends them all."""

    def __init__(self, names: list[str], pipelines: list, sources: list):
        self.names, self.pipelines, self.sources = names, pipelines, sources
        self.threads: list[threading.Thread] = []
        self.results: list = [None] * len(pipelines)  # each camera's pipeline.RunResult

    def start(self) -> None:
        for i, name in enumerate(self.names):
            t = threading.Thread(target=self._run, args=(i,), name=f"rtcolor-cam-{name}", daemon=True)
            t.start()
            self.threads.append(t)

    def _run(self, i: int) -> None:
        self.results[i] = self.pipelines[i].run(self.sources[i])

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        for pipe in self.pipelines:
            pipe.stop()

    def join(self, timeout: float = 30.0) -> None:
        for t in self.threads:
            t.join(timeout)
