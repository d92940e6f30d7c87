"""One error base: every exception class rtcolor defines derives from RtcolorError, and the CLI
turns any of them into one line and a non-zero exit status."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import realtime_color
from realtime_color.errors import ConfigError, RtcolorError


def _modules():
    for info in pkgutil.walk_packages(realtime_color.__path__, "realtime_color."):
        if info.name.endswith("__main__"):
            continue
        yield info.name


def test_every_project_exception_derives_from_rtcolor_error():
    found = []
    for name in _modules():
        module = importlib.import_module(name)  # imported here, not at collection: test_lean stays torch-free
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found.append(cls)
                assert issubclass(cls, RtcolorError), f"{name}.{cls.__name__} does not derive from RtcolorError"
    names = {c.__name__ for c in found}
    assert {"CheckpointError", "BackendError", "BackboneError", "VideoError", "OutputError", "ConfigError"} <= names


def test_errors_keep_the_builtin_bases_callers_catch():
    from realtime_color.media.outputs import OutputError
    from realtime_color.model.checkpoint import CheckpointError
    from realtime_color.runtime.backends import BackendError

    assert issubclass(CheckpointError, ValueError) and issubclass(BackendError, RuntimeError)
    assert issubclass(OutputError, OSError) and issubclass(ConfigError, ValueError)


def test_config_errors_name_fields_and_let_the_caller_spell_them():
    class Cfg:
        crop, cache_crops, freeze_stages = 20, 5, 0

    with pytest.raises(ConfigError) as e:
        ConfigError.check(
            Cfg(),
            {
                "crop": (False, "a multiple of 16"),
                "cache_crops": (False, "0, or positive with {freeze_stages} 1..5"),
                "freeze_stages": (True, "0 to 5"),
            },
        )
    assert str(e.value) == (
        "crop 20 must be a multiple of 16; cache_crops 5 must be 0, or positive with freeze_stages 1..5"
    )
    assert e.value.spelled(lambda f: "--" + f.replace("_", "-")) == (
        "--crop 20 must be a multiple of 16; --cache-crops 5 must be 0, or positive with --freeze-stages 1..5"
    )


def test_the_cli_turns_any_rtcolor_error_into_one_line(monkeypatch):
    from typer.testing import CliRunner

    from realtime_color.cli import app
    from realtime_color.model import checkpoint

    def broken(path=None):
        raise checkpoint.CheckpointError("model file x.safetensors does not exist")

    monkeypatch.setattr(checkpoint.ModelFile, "open", staticmethod(broken))
    r = CliRunner().invoke(app, ["image", __file__, "-o", "unused.png"])
    assert r.exit_code == 2 and "error: model file x.safetensors does not exist" in r.output
    assert "Traceback" not in r.output
