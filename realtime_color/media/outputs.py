"""Where results are written: one place that checks an output location before any work, names
temporary files so they fit wherever the final name fits, and turns the OS's refusal into one
line naming the path, the reason and the fix. Every writer and every clean-up goes through here.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from ..errors import RtcolorError

_FIXES = {  # errno -> what the user can do about it
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.EROFS: "choose another folder",
    errno.ENOSPC: "free some space or choose another folder",
    errno.EDQUOT: "free some space or choose another folder",
    errno.EACCES: "choose a folder you can write to",
    errno.EPERM: "choose a folder you can write to",
    errno.ENOENT: "create the folder first",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "name a file",
}


class OutputError(RtcolorError, OSError):
    """An output that cannot be written; its text names the path, the reason and the fix."""


def reason(e: BaseException) -> str:
    """What went wrong and the fix: ``Read-only file system (read-only; choose another folder)``."""
    code = getattr(e, "errno", None)
    text = (os.strerror(code) if isinstance(code, int) and code > 0 else None) or str(e)
    fix = _FIXES.get(code)
    return f"{text} ({fix})" if fix else text


def explain(path: str | Path, e: BaseException, verb: str = "write") -> str:
    """``cannot write OUT/clip.mp4: Read-only file system (read-only; choose another folder)``."""
    return f"cannot {verb} {path}: {reason(e)}"


def discard(path: str | Path | None) -> None:
    """Remove a temporary file, quietly. A clean-up must never hide the failure it cleans up
    after: a name that could not be created ("too long", "read-only") cannot be removed either."""
    if path is None:
        return
    try:
        os.unlink(path)
    except OSError:
        pass


def name_max(folder: str | Path) -> int:
    """The longest file name (bytes) the file system under ``folder`` takes (255 on most)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:  # a folder to be created: ask its parent
        folder = folder.parent
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return 255


def sibling(path: str | Path, prefix: str = "", infix: str = "") -> Path:
    """``path``'s folder / prefix + stem + infix + suffix, with the stem shortened (and a short hash
    of the full name added, so two long names stay apart) when that would pass the file system's
    limit: a temporary or partial name must fit wherever the final name fits."""
    path = Path(path)
    limit = name_max(path.parent)
    stem, suffix = path.stem, path.suffix
    name = f"{prefix}{stem}{infix}{suffix}"
    if len(name.encode()) <= limit:
        return path.with_name(name)
    tag = "~" + hashlib.sha1(path.name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
    room = limit - len(f"{prefix}{tag}{infix}{suffix}".encode())
    short = stem.encode("utf-8", "surrogateescape")[: max(room, 0)].decode("utf-8", "ignore")
    return path.with_name(f"{prefix}{short}{tag}{infix}{suffix}")


def temp_path(path: str | Path, tag: str) -> Path:
    """The hidden temporary name a result is written under before it is renamed into place."""
    return sibling(path, prefix=".", infix=f".{tag}")


def _probe(path: Path, label: str) -> None:
    """Create and remove the temporary file a writer would use next to ``path``."""
    probe = temp_path(path, f"rtcolor-check-{os.getpid()}")
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except OSError as e:
        raise OutputError(f"cannot write {label}: {reason(e)}") from None
    discard(probe)


def check_output(path: str | Path, option: str = "") -> None:
    """Raise OutputError unless a file can be created at ``path`` (its folder exists, is a folder,
    takes the name and can be written to). Checked before the work, by creating and removing a
    temporary file beside it, so a read-only or missing folder fails in a second, not after an
    hour of video."""
    path = Path(path)
    label = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise OutputError(f"{label} is a folder; name a file")
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"cannot write {label}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise OutputError(f"cannot write {label}: {folder} is a file, not a folder")
    if len(path.name.encode("utf-8", "surrogateescape")) > name_max(folder):
        raise OutputError(f"cannot write {label}: {reason(OSError(errno.ENAMETOOLONG, 'name too long'))}")
    _probe(path, label)


def check_folder(folder: str | Path, option: str = "", create: bool = True) -> None:
    """Check that files can be written in ``folder`` (OutputError if not). ``create``: make it now;
    otherwise a missing folder is judged by the nearest folder above it, where it will be made."""
    folder = Path(folder)
    label = f"{option} {folder}" if option else str(folder)
    if create:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"cannot create the output folder {label}: {reason(e)}") from None
    target = folder
    while not target.exists() and target != target.parent:
        target = target.parent
    if not target.is_dir():
        raise OutputError(f"cannot write in {label}: {target} is a file, not a folder")
    _probe(target / "probe", label)


class Inputs:
    """The files a command reads, known by their resolved path and, where they exist, by their
    device and inode, so that no output replaces one of them under another name: a symlink, a
    hard link, ``./a.mp4`` for ``a.mp4``, a template that expands to an input's name."""

    def __init__(self, paths=()):
        self._by_path: dict[Path, Path] = {}
        self._by_id: dict[tuple[int, int], Path] = {}
        for p in paths:
            self.add(p)

    def add(self, path: str | Path | None) -> None:
        if path is None:
            return
        path = Path(path)
        try:
            self._by_path.setdefault(path.resolve(), path)
            st = os.stat(path)  # follows symlinks: the file itself
        except (OSError, RuntimeError, ValueError):  # not a file (a camera index, a URL) or a loop
            return
        self._by_id.setdefault((st.st_dev, st.st_ino), path)

    def holding(self, dest: str | Path) -> Path | None:
        """The input that writing ``dest`` would replace (same file, however named), or None."""
        dest = Path(dest)
        try:
            hit = self._by_path.get(dest.resolve())
        except (OSError, RuntimeError, ValueError):
            hit = None
        if hit is not None:
            return hit
        try:
            st = os.stat(dest)
        except (OSError, ValueError):
            return None
        return self._by_id.get((st.st_dev, st.st_ino))

    def refuse(self, dest: str | Path, option: str = "") -> None:
        """Raise OutputError when ``dest`` is one of the inputs: one line naming both."""
        hit = self.holding(dest)
        if hit is not None:
            raise OutputError(self.message(dest, hit, option))

    @staticmethod
    def message(dest: str | Path, hit: str | Path, option: str = "") -> str:
        label = f"{option} {dest}" if option else str(dest)
        alias = "" if str(hit) == str(dest) else " (the same file)"
        return f"{label} would overwrite an input, {hit}{alias}; choose another name (--force never replaces an input)"
