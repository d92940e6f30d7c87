"""`rtcolor image` end to end on generated pictures, a bad file among good ones included."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.images import read_image, write_image

runner = CliRunner()


def test_folder_with_a_bad_file(image_dir, tmp_path, random_checkpoint):
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    out = tmp_path / "out"
    r = runner.invoke(
        app, ["image", str(image_dir), "-o", str(out), "--model", random_checkpoint, "--backend", "torch"]
    )
    assert r.exit_code == 1, r.output
    assert "broken.jpg" in r.output
    assert sorted(p.name for p in out.iterdir()) == ["photo0.png", "photo1.png", "photo2.png"]
    img = read_image(out / "photo0.png")
    assert img.shape == (96, 128, 3)


def test_default_model_compare_glob_and_16bit(tmp_path):
    src = tmp_path / "src"
    g16 = (np.linspace(0, 65535, 48 * 64).reshape(48, 64)).astype(np.uint16)
    write_image(src / "deep.png", g16)
    write_image(src / "plain.png", (g16 // 257).astype(np.uint8))
    out = tmp_path / "o"
    r = runner.invoke(
        app, ["image", str(src / "*.png"), "-o", str(out), "--compare", "--backend", "torch", "--size", "64"]
    )
    assert r.exit_code == 0, r.output
    deep = read_image(out / "deep.png")
    assert deep.dtype == np.uint16 and deep.shape == (48, 128, 3)
    plain = read_image(out / "plain.png")
    assert plain.shape == (48, 128, 3)
    assert np.array_equal(plain[:, :64, 0], plain[:, :64, 1])  # left half is the gray input


def test_existing_output_needs_force_and_inputs_are_never_overwritten(image_dir, random_checkpoint):
    before = (image_dir / "photo0.png").read_bytes()
    r = runner.invoke(
        app,
        [
            "image",
            str(image_dir / "photo0.png"),
            "-o",
            str(image_dir),
            "--model",
            random_checkpoint,
            "--backend",
            "torch",
            "--force",
        ],
    )
    assert r.exit_code == 1 and "overwrite an input" in r.output
    assert (image_dir / "photo0.png").read_bytes() == before


def test_existing_output_is_kept_without_force(image_dir, tmp_path, random_checkpoint):
    out = tmp_path / "o"
    out.mkdir()
    (out / "photo1.png").write_bytes(b"keep me")
    r = runner.invoke(
        app,
        ["image", str(image_dir / "photo1.png"), "-o", str(out), "--model", random_checkpoint, "--backend", "torch"],
    )
    assert r.exit_code == 1 and "--force" in r.output
    assert (out / "photo1.png").read_bytes() == b"keep me"


def test_missing_input_and_bad_model_exit_nonzero(tmp_path, image_dir):
    r = runner.invoke(app, ["image", str(tmp_path / "nothing.png"), "-o", str(tmp_path / "o")])
    assert r.exit_code != 0 and "no input images" in r.output
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    r = runner.invoke(app, ["image", str(image_dir), "-o", str(tmp_path / "o"), "--model", str(bad)])
    assert r.exit_code == 2 and "not a readable safetensors" in r.output
    for size in ("0", "100000"):  # refused before any model is loaded or file written
        r = runner.invoke(app, ["image", str(image_dir), "-o", str(tmp_path / "o"), "--size", size])
        assert r.exit_code == 2 and f"inference size {size} is out of range" in r.output
    assert not (tmp_path / "o").exists()


def test_an_unforeseen_failure_is_one_line_not_a_traceback(monkeypatch, capsys):
    import realtime_color.cli as cli

    def out_of_memory():
        raise MemoryError("cannot allocate 40 GB")

    monkeypatch.setattr(cli, "app", out_of_memory)
    monkeypatch.delenv("RTCOLOR_TRACEBACK", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 1
    printed = capsys.readouterr().err
    assert "unexpected MemoryError: cannot allocate 40 GB" in printed and "Traceback" not in printed
    monkeypatch.setenv("RTCOLOR_TRACEBACK", "1")
    with pytest.raises(MemoryError):
        cli.main()


def test_export_and_info_commands(tmp_path, random_checkpoint):
    onnx_path = tmp_path / "m.onnx"
    r = runner.invoke(app, ["export", "-o", str(onnx_path), "--model", random_checkpoint])
    assert r.exit_code == 0, r.output
    assert onnx_path.is_file() and "parity vs PyTorch fp32" in r.output and "OK" in r.output
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and "backend torch" in r.output and "default model" in r.output
    # the bundled model's calibrated figures, at the T and gain it runs with
    assert "over gray, CIEDE2000" in " ".join(r.output.split())
    from realtime_color.runtime.backends.ort import cpu_has_fast_int8

    assert ("the CPU default here" in r.output) == cpu_has_fast_int8()  # says whether auto uses int8


def test_new_models_and_exports_never_replace_a_file_silently(tmp_path, image_dir, random_checkpoint):
    """train, adapt and export refuse, before any work: a folder, the wrong kind of name (a photo
    among the training data), an input, or an existing file without --force."""
    from realtime_color.model.weights import default_model_path

    photo = image_dir / "photo1.png"
    photo_bytes = photo.read_bytes()
    old = tmp_path / "old.safetensors"
    old.write_bytes(b"yesterday's model")
    onnx_file = tmp_path / "m.onnx"
    onnx_file.write_bytes(b"an older export")
    base = ["--backbone", "none", "--epochs", "1"]
    cases = [
        (["train", str(image_dir), "--out", str(photo), *base], "name a .safetensors file"),
        (["train", str(image_dir), "--out", str(tmp_path), *base], "is a folder"),
        (["train", str(image_dir), "--out", str(old), *base], "exists; pass --force"),
        (["train", str(image_dir), "--out", str(tmp_path / "n.safetensors"), "--size", "9", *base], "out of range"),
        (["adapt", str(image_dir), "--out", random_checkpoint, "--base", random_checkpoint, "--force"], "an input"),
        (["adapt", str(image_dir), "--out", str(old)], "exists; pass --force"),
        (["adapt", str(image_dir), "--out", str(default_model_path()), "--force"], "an input"),  # the base
        (["export", "-o", str(onnx_file), "--model", random_checkpoint], "exists; pass --force"),
        (["export", "-o", str(tmp_path / "m.safetensors"), "--model", random_checkpoint], "name a .onnx file"),
    ]
    for args, message in cases:
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and message in " ".join(r.output.split()), (args, r.output)
    assert photo.read_bytes() == photo_bytes and old.read_bytes() == b"yesterday's model"
    assert onnx_file.read_bytes() == b"an older export" and not (tmp_path / "n.safetensors").exists()
    r = runner.invoke(app, ["export", "-o", str(onnx_file), "--model", random_checkpoint, "--force"])
    assert r.exit_code == 0 and onnx_file.read_bytes()[:8] != b"an older"


def test_a_full_disk_fails_each_picture_plainly_and_leaves_no_partial_file(tmp_path, image_dir, monkeypatch):
    from pathlib import Path

    real = Path.write_bytes

    def full(self, data):
        real(self, data[: len(data) // 2])  # half of it fits
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    out = tmp_path / "o"
    r = runner.invoke(app, ["image", str(image_dir / "photo1.png"), "-o", str(out), "--backend", "torch"])
    assert r.exit_code == 1 and "photo1.png: No space left on device" in " ".join(r.output.split())
    assert list(out.iterdir()) == []


def test_bad_knobs_are_named_with_their_rule_before_any_work(tmp_path, image_dir, random_checkpoint):
    out, onnx_out, model = str(tmp_path / "m.safetensors"), str(tmp_path / "m.onnx"), ["--model", random_checkpoint]
    cases = [
        (
            ["train", str(image_dir), "--out", out, "--epochs", "0", "--batch-size", "0", "--crop", "20"],
            ["--epochs 0 must be at least 1", "--batch-size 0 must be at least 1", "--crop 20 must be a multiple"],
        ),
        (["train", str(image_dir), "--out", out, "--val-fraction", "1.5"], ["--val-fraction 1.5 must be between"]),
        (["train", str(image_dir), "--out", out, "--loss", "huberish"], ["--loss 'huberish' must be mse, huber"]),
        (["adapt", str(image_dir), "--out", out, "--crop", "0", "--minutes", "0"], ["--max-minutes 0.0", "--crop 0"]),
        (["export", "-o", onnx_out, "--opset", "5", *model], ["--opset 5 is too old"]),
        (["export", "-o", onnx_out, "--opset", "99", *model], ["export at opset 99 failed"]),
        (["eval", str(image_dir), "--sample-every", "0", *model], ["--sample-every 0 must be at least 1"]),
        (["build-engine", "--max-shape", "foo", *model], ["shape 'foo' must look like BATCHxHEIGHTxWIDTH"]),
    ]
    for args, messages in cases:
        r = runner.invoke(app, args)
        text = " ".join(r.output.split())
        assert r.exit_code == 2 and all(m in text for m in messages), (args, r.output[-500:])
    assert [p.name for p in tmp_path.iterdir()] == [image_dir.name]  # nothing written


def test_one_input_to_a_named_picture(tmp_path, image_dir, random_checkpoint):
    common = ["--model", random_checkpoint, "--backend", "torch"]
    deep = tmp_path / "deep.png"
    write_image(deep, (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16))
    r = runner.invoke(app, ["image", str(deep), "-o", str(tmp_path / "shot.jpg"), *common])
    assert r.exit_code == 0, r.output
    shot = read_image(tmp_path / "shot.jpg")  # 16-bit in, 8-bit JPEG out (JPEG holds 8 bits)
    assert shot.shape == (40, 60, 3) and shot.dtype == np.uint8
    r = runner.invoke(app, ["image", str(image_dir), "-o", str(tmp_path / "all.png"), *common])
    assert r.exit_code == 2 and "name a folder" in " ".join(r.output.split())
    assert not (tmp_path / "all.png").exists()


def test_help_and_option_errors_do_not_load_torch():
    """`rtcolor --help` and a mistyped option answer at once: the CLI imports PyTorch only for
    commands that run a model (--help took 1.6 s on the 2-core machine, now 0.2 s)."""
    import subprocess
    import sys

    code = "import sys, realtime_color.cli; print([m for m in ('torch', 'av', 'onnxruntime') if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_version():
    from realtime_color import __version__

    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"rtcolor {__version__}"


def test_bracketed_words_in_option_help_survive_rich_markup():
    """Rich reads "[cluster]" as a markup tag and drops it: `pip install 'rtcolor[cluster]'` once
    showed as `pip install 'rtcolor'`. Every bracketed word an option's help holds is shown."""
    import re

    from typer.main import get_command

    group = get_command(app)
    checked = 0
    for name, command in group.commands.items():
        shown = runner.invoke(app, [name, "--help"], env={"COLUMNS": "500"}).output
        flat = " ".join(shown.replace("│", " ").split())
        for param in command.params:
            for word in re.findall(r"\[+[a-z_]+\]+", (getattr(param, "help", None) or "").replace("\\", "")):
                assert word in flat, f"rtcolor {name} --help lost {word!r}"
                checked += 1
    assert checked >= 2  # [cluster] (colorize) and [[camera]] (stream) at least
