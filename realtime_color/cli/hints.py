"""--hints as the coloring commands read it: every hints file is read and
checked before any output is opened (a bad one is one line naming the file, the entry and the
field), and each command gets the hints in the shape it uses."""

from __future__ import annotations

from pathlib import Path

from .app import _log, _note

HINTS_HELP = (
    'A JSON file of color hints, {"hints": [{"x": 0.42, "y": 0.61, "color": "#7a9b3c"}, ...]}: x, y are '
    "fractions of the width and height from the top-left corner, color an sRGB #rrggbb whose chroma is used; "
    "optional size (the patch's side in source pixels)"
)


def check_takes_hints(model: Path | None) -> None:
    """Refuse --hints for a model without hint inputs now, from its header, before anything is opened."""
    from ..model.checkpoint import ModelFile
    from ..runtime.backends.base import NoHintsError

    ckpt = ModelFile.open(model)
    if not ckpt.takes_hints:
        raise NoHintsError(
            f"--hints: the model {ckpt.path} takes no hints (it was trained without hint inputs); "
            "use a model trained with hint inputs (--model), or drop --hints"
        )


def image_hints(option: Path, pictures: list[Path]) -> dict[Path, tuple]:
    """Per picture, its hints: one file for every picture, or a folder of ``<stem>.json`` (a
    picture without one gets none). Every file is checked here, before the model loads."""
    from ..guidance.hints import HintsError, load_hints

    if option.is_dir():
        files = {p: option / f"{p.stem}.json" for p in pictures}
        found = {p: f for p, f in files.items() if f.is_file()}
        stems = {p.stem for p in pictures}
        for stray in sorted(option.glob("*.json")):
            if stray.stem not in stems:
                _note("warning", "yellow", f"--hints {stray}: no input picture is named {stray.stem}.*")
        if not found:
            _note("warning", "yellow", f"--hints {option}: holds no <stem>.json for any input picture")
        loaded = {p: load_hints(f) for p, f in found.items()}
    else:
        one = load_hints(option)  # a missing file is a NotFoundError: one line naming it
        loaded = {p: one for p in pictures}
        found = dict.fromkeys(pictures, option)
    out = {}
    for p, hs in loaded.items():
        for i, h in enumerate(hs.hints):
            if h.frame not in (None, 0) or h.time not in (None, 0):
                at = f"frame {h.frame}" if h.frame is not None else f"time {h.time:g} s"
                raise HintsError(f"{found[p]}: hint {i}: {at}: a picture has one frame (frame and time are for video)")
        out[p] = hs.hints
    return out


def read_hints(option: Path | None):
    """The hints file of a video command (``HintSet``), checked entry by entry; None without one."""
    if option is None:
        return None
    from ..guidance.hints import load_hints

    return load_hints(option)


def live_hints(option: Path | None):
    """``stream --hints``: the file's ``HintSet``, frame-less hints only (a live source has no
    frame numbers); each camera gates them against its first frame (hint_tracks.VideoHints).
    None without a file."""
    hints = read_hints(option)
    if hints is None:
        return None
    from ..guidance.hints import HintsError

    for i, h in enumerate(hints.hints):
        if not h.frameless:
            at = f"frame {h.frame}" if h.frame is not None else f"time {h.time:g} s"
            raise HintsError(
                f"{option}: hint {i}: {at}: stream takes frame-less hints only (a live source has no frame "
                "numbers); remove frame and time, or colorize the recording with rtcolor colorize --hints"
            )
    _log(f"{option}: {len(hints)} hints, gated against the first frame")
    return hints


def video_hints(hints, option: Path, src: Path, size: int, temporal):
    """The hints of one video for the pipeline. Frame hints need a first pass over the video (its
    shots, and their points followed through them); a hint past its end is refused there."""
    import av

    from ..guidance.hint_tracks import VideoHints, scan_hints
    from ..media.video import VideoError

    if all(h.frameless for h in hints.hints):
        return VideoHints(hints)
    _log(f"{src}: finding the shots of the hints in {option} and following their points")
    try:
        vh, shots = scan_hints(hints, src, size, temporal, str(option))
    except (av.error.FFmpegError, OSError) as e:  # a damaged video
        raise VideoError(f"{src}: cannot scan it for its shots ({e})") from None
    spans: dict[int, list[int]] = {}
    for index, found in vh.tracks.positions.items():
        for k, _, _ in found:
            spans.setdefault(vh.tracks.numbers[k], []).append(index)
    reach = ", ".join(f"hint {n}: frames {min(f)}-{max(f)}" for n, f in sorted(spans.items())[:8])
    more = f" and {len(spans) - 8} more" if len(spans) > 8 else ""
    _log(f"{len(shots.cuts)} shots; followed through their shots: {reach}{more}")
    return vh
