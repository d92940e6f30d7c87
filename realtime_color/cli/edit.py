"""rtcolor edit: place color hints in the browser, saved to a hints file the other commands read."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import typer

from .app import (
    BACKEND_OPTION,
    DEVICE_OPTION,
    MODEL_OPTION,
    SATURATION_OPTION,
    SIZE_OPTION,
    _check_saturation,
    _colorizer,
    _fail,
    _log,
    _note,
    app,
    out,
)


def _cli_options(model: Path | None, backend: str, size: int | None, saturation: float | None) -> list[str]:
    """The options of this run that the equivalent image / colorize / stream command needs too."""
    words = []
    if model is not None:
        words += ["--model", str(model)]
    if backend != "auto":
        words += ["--backend", backend]
    if size is not None:
        words += ["--size", str(size)]
    if saturation is not None:
        words += ["--saturation", f"{saturation:g}"]
    return words


def _check_hints_path(hints: Path, input_text: str) -> None:
    if hints.is_dir():
        _fail(f"--hints {hints} is a folder; name a .json file (it is created if missing)")
    if hints.suffix.lower() != ".json":
        _fail(f"--hints {hints}: name a .json file (e.g. {hints.with_suffix('.json').name})")
    if Path(input_text).exists() and hints.exists() and Path(input_text).resolve() == hints.resolve():
        _fail(f"--hints {hints} is the input; choose another name")
    if not hints.parent.is_dir():
        _fail(f"--hints {hints}: the folder {hints.parent} does not exist; create it first")


@app.command()
def edit(
    input_text: str = typer.Argument(
        ..., metavar="INPUT", help="A picture, a video file, or a live source (camera index, rtsp://, http://, udp://)."
    ),
    hints: Path = typer.Option(..., "--hints", help="The hints file to edit (.json): loaded if present, else created."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="The colorize action's default output; the page writes only there or beside it. "
        "Default: <input>_color.png / .mp4 beside the input.",
    ),
    port: int = typer.Option(0, "--port", help="Port to serve on (0: a free one)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on. Other than 127.0.0.1: a warning."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Print the URL only; do not open a browser."),
    model: Path | None = MODEL_OPTION,
    size: int | None = SIZE_OPTION,
    backend: str = BACKEND_OPTION,
    device: str = DEVICE_OPTION,
    saturation: float | None = SATURATION_OPTION,
) -> None:
    """Paint a few dots: place color hints in the browser, for image, colorize and stream.

    1. rtcolor edit photo.jpg --hints photo.json
       (prints the page's URL with its token and opens it; FILE is created if missing)
    2. Click where you know the color, then pick it: the swatches are the
       network's likeliest colors at that point; the picker takes any. Drag
       moves a hint, right-click or Delete removes it, Ctrl+Z / Ctrl+Y undo
       and redo. Each change updates the picture and writes FILE at once.
    3. rtcolor image photo.jpg -o out/ --hints photo.json   (the same result)

    A video: scrub its frames; the cuts between shots are marked. A hint belongs
    to its frame and is carried through that shot only. "colorize" on the page
    runs the real job into the output you name, and shows the command:
      rtcolor colorize reel.mp4 -o reel_color.mp4 --hints reel.json

    A live camera (0, rtsp://...): hints hold for the fixed view:
      rtcolor edit rtsp://cam.lan/live --hints cam.json
      rtcolor stream rtsp://cam.lan/live --hints cam.json

    Safety: every request needs the URL's token; only INPUT, FILE and the
    output you name are touched. Serves 127.0.0.1 (--host warns). Ctrl-C stops.
    """
    from ..editor.inputs import InputError, open_input
    from ..editor.jobs import Job, check_name
    from ..editor.server import EditorServer
    from ..editor.session import EditError, Session
    from ..errors import RtcolorError
    from ..media.guard import is_loopback
    from ..video.temporal import TemporalConfig

    _check_hints_path(hints, input_text)
    if not 0 <= port <= 65535:
        _fail(f"--port {port} must be between 0 (a free port) and 65535")
    _check_saturation(saturation)
    colorizer = _colorizer(model, backend, device, size, saturation)
    temporal = TemporalConfig()
    try:
        media = open_input(input_text, colorizer.size, temporal, log=_log)
    except InputError as e:
        _fail(str(e))
    try:
        session = Session(media, colorizer, hints, temporal, log=_log)  # a bad hints file: one line, exit 2
        out_dir = Path(input_text).parent if media.kind != "live" else Path.cwd()
        if output is not None:
            if media.kind == "live":
                _fail("-o names the colorize action's output; a live view has none (use stream --out)")
            try:
                check_name(output.name, media.kind)
            except EditError as e:
                _fail(f"-o {output}: {e}")
            out_dir = output.parent
        options = _cli_options(model, backend, size, saturation)
        job = Job(session, out_dir, options, _log, default_output=output.name if output is not None else None)
        try:
            server = EditorServer(session, job, host, port, log=_log)
        except OSError as e:
            _fail(f"cannot serve on {host}:{port}: {e.strerror or e}; choose another --port or --host")
    except BaseException:
        media.close()
        raise
    if not is_loopback(host):
        _note(
            "warning",
            "yellow",
            f"serving on {host}: anyone who reaches it with the token can read {input_text} and write {hints}",
        )
    try:
        session.create()
    except RtcolorError as e:  # a folder that cannot be written
        server.close()
        media.close()
        _fail(str(e))
    server.start()
    out.print(f"hints editor for {input_text}, saving to {hints}; open:", markup=False, highlight=False)
    out.print(server.url, markup=False, highlight=False, soft_wrap=True)
    out.print("Ctrl-C stops it.", highlight=False)
    if not no_browser:
        _open_browser(server.url)
    try:
        while True:  # the server runs in its threads; this one waits for Ctrl-C (or SIGTERM, read as one)
            time.sleep(0.5)
    except KeyboardInterrupt:
        _log("stopping")
    finally:
        server.close()
        media.close()
    _log(f"hints saved in {hints}")


def _open_browser(url: str) -> None:
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        _log("no browser found here: open the URL above in one")
        return
    threading.Thread(target=webbrowser.open, args=(url,), name="rtcolor-edit-browser", daemon=True).start()
