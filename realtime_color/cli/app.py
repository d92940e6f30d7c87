"""The typer app and what its commands share: the option declarations used by several commands,
the renamed options, one-line failures, output checks, the model choice. Every command module
imports from here (never from the package), so the package imports its commands without a cycle."""

from __future__ import annotations

import functools
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from ..errors import ConfigError, RtcolorError

# Options renamed in 0.2 (the product's US spelling; one name per knob across commands); the old
# names still work, unlisted in --help. An old name is read as the new one only by a command that
# has the new option and not the old (docs/architecture: "Option names").
RENAMED_OPTIONS = {
    "--colour-frames": "--color-frames",
    "--min-colourfulness": "--min-colorfulness",
    # rtcolor adapt, now spelled as rtcolor train spells the same knobs
    "--base": "--init",
    "--minutes": "--max-minutes",
    "--steps": "--max-steps",
    "--frozen-stages": "--freeze-stages",
    # one name per option across commands: -o/--output for what a command writes, --batch-size
    "--out": "--output",
    "--batch": "--batch-size",
}


def renamed(arg: str, known: set[str] | None = None) -> str:
    """``arg`` with an old option name written as its new one; with ``known`` (the command's option
    names) only where the command has the new option and not the old."""
    name, eq, value = arg.partition("=")
    new = RENAMED_OPTIONS.get(name)
    if new is None or (known is not None and (new not in known or name in known)):
        return arg
    return new + eq + value


class _Group(TyperGroup):
    """Reads an old option name as its new one before the command parses its arguments."""

    def parse_args(self, ctx, args):
        name = next((a for a in args if not a.startswith("-")), None)
        command = self.commands.get(name) if name else None
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)} if command else None
        return super().parse_args(ctx, [renamed(a, known) for a in args])


class _App(typer.Typer):
    """The typer app whose every command turns an ``RtcolorError`` into one line and its exit
    status, in this one place (the test runner calls commands without going through ``main``)."""

    def command(self, *args, **kwargs):
        register = super().command(*args, **kwargs)

        def decorator(f):
            @functools.wraps(f)  # typer reads the options from the wrapped signature
            def run(*a, **kw):
                try:
                    return f(*a, **kw)
                except RtcolorError as e:
                    _fail(option_message(e), e.exit_code)

            register(run)
            return f

        return decorator


# Config fields whose option is not simply --field-name.
_OPTION_NAMES = {"inference_size": "--size", "data": "DATA", "sources": "SOURCES", "checkpoints": "CHECKPOINTS"}


def option_name(field: str) -> str:
    """How the config field ``field`` is spelled on the command line (``batch_size`` -> ``--batch-size``)."""
    return _OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def option_message(e: RtcolorError) -> str:
    """The error's text, with config fields named as the options that set them."""
    return e.spelled(option_name) if isinstance(e, ConfigError) else str(e)


app = _App(
    cls=_Group,
    help="Real-time colorization of gray video, cameras and images (VGG16 autoencoder, Lab).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

MODEL_HELP = "Checkpoint (.safetensors) to use; the bundled default model when omitted."
BACKEND_HELP = (
    "Runtime: auto (TensorRT engine > torch CUDA fp16 > ONNX Runtime int8 on CPUs with VNNI or arm64 dot product"
    " > ONNX Runtime fp32), torch, onnxruntime (fp32), onnxruntime-int8, tensorrt."
)
SIZE_HELP = "Inference size: the long side (pixels) of the picture the network sees; ab is upsampled to full size."

# The options every colorizing command shares, declared once (typer only reads these).
MODEL_OPTION = typer.Option(None, "--model", "-m", help=MODEL_HELP)
SIZE_OPTION = typer.Option(None, "--size", help=SIZE_HELP + " Default: the model's (256).")
BACKEND_OPTION = typer.Option("auto", "--backend", help=BACKEND_HELP)
DEVICE_OPTION = typer.Option("auto", "--device", help="cpu, cuda, cuda:N or auto.")
REFERENCE_OPTION = typer.Option(
    None,
    "--reference",
    help="A color picture of the same view (repeatable; e.g. a daytime frame of this camera): its colors "
    "are kept wherever the scene's structure matches it, and the network colors what moved or changed.",
)


def _references(paths: list[Path] | None) -> list:
    """Load --reference pictures (a bad one fails here, before anything is written)."""
    if not paths:
        return []
    from ..guidance.reference import Reference, ReferencePictureError

    try:
        return [Reference(p) for p in paths]
    except ReferencePictureError as e:
        _fail(str(e))


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        out.print(f"rtcolor {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Real-time colorization of gray video, cameras and images (VGG16 autoencoder, Lab)."""


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _check_output(path: Path, option: str, suffix: str, force: bool, inputs: tuple[Path | None, ...] = ()) -> None:
    """Refuse an output that is a folder, has the wrong kind of name, is an input, or already
    exists without --force: a new model or export must not silently replace anything."""
    if path.is_dir():
        _fail(f"{option} {path} is a folder; name a {suffix} file")
    if path.suffix.lower() != suffix:
        _fail(f"{option} {path}: name a {suffix} file (e.g. {path.with_suffix(suffix).name})")
    from ..media.outputs import Inputs

    hit = Inputs(inputs).holding(path)
    if hit is not None:
        _fail(Inputs.message(path, hit, option))
    if path.exists() and not force:
        _fail(f"{option} {path} exists; pass --force to replace it, or choose another name")


def _note(tag: str, style: str, message: str) -> None:
    """A tagged line (skipped, failed, warning); the message is printed as is, never as markup."""
    err.print(f"[{style}]{tag}[/] {escape(message)}", highlight=False)


def _log(message: str) -> None:
    err.print(message, markup=False, highlight=False)


SATURATION_OPTION = typer.Option(
    None,
    "--saturation",
    help="How colorful the network's colors are: 0 gray, 1 the model's calibrated output (the default), up to 2.",
    show_default=False,
)


def _check_saturation(value: float | None) -> float | None:
    """--saturation as given (None: the model's own), or one line naming the bad value; checked
    before anything is opened."""
    from ..runtime.colorizer import MAX_SATURATION, check_saturation

    try:
        return None if value is None else check_saturation(value)
    except ValueError:
        _fail(f"--saturation {value:g} must be between 0 (gray) and {MAX_SATURATION:g} (1: the model's own colors)")


def _colorizer(model: Path | None, backend: str, device: str, size: int | None, saturation: float | None = None):
    """The colorizer of the shared --model/--backend/--device/--size (and --saturation) options."""
    return _open_choice(_choice(model, backend, device, size, saturation))


def _choice(model: Path | None, backend: str, device: str, size: int | None, saturation: float | None = None):
    """The shared model options as one ``ModelChoice`` (a bad --size is refused here, in one line)."""
    from ..runtime.colorizer import ModelChoice, check_size

    if size is not None:
        try:
            check_size(size)
        except ValueError as e:
            _fail(str(e))
    return ModelChoice(str(model) if model else None, backend, device, size, saturation)


def _open_choice(choice):
    # A bad model or runtime is an RtcolorError: one line from the command wrapper.
    seen = _INTERRUPTS[0]
    colorizer = choice.open(log=_log)
    if _INTERRUPTS[0] != seen:  # a Ctrl-C taken for a failed runtime (it fell back to the next): still a Ctrl-C
        raise KeyboardInterrupt
    return colorizer


# Ctrl-C / SIGTERM received so far (main's handler counts them): a library that swallows one cannot hide it
_INTERRUPTS = [0]
