"""TensorRT engine builds: the pure parts here; the build itself is marked and needs TensorRT + CUDA."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.runtime.backends.trt import default_engine_dir
from realtime_color.runtime.engine import Profile, engine_name, fp16_layer_fraction, list_engines, parse_shape

runner = CliRunner()


def test_shapes_and_profile_checks():
    assert parse_shape("8x288x512") == (8, 288, 512)
    assert parse_shape("144x256") == (1, 144, 256)
    with pytest.raises(ValueError, match="BATCHxHEIGHTxWIDTH"):
        parse_shape("1x2x3x4")
    with pytest.raises(ValueError, match="multiples of 16"):
        Profile(max=(8, 500, 512))
    with pytest.raises(ValueError, match="min <= opt <= max"):
        Profile(min=(1, 64, 64), opt=(1, 32, 64), max=(8, 512, 512))
    assert Profile().tensor_shapes()[2] == (8, 1, 512, 512)


def test_engine_name_holds_the_cache_key():
    ident = {"tensorrt": "10.3.0", "gpu": "NVIDIA Jetson AGX Orin", "compute_capability": "8.7"}
    a = engine_name("ab" * 32, ident, "fp16", Profile())
    assert a == "rtcolor_abababababab_nvidia-jetson-agx-orin_sm87_trt10.3.0_fp16_1x64x64-1x144x256-8x512x512"
    # every part of the key changes the name
    assert engine_name("cd" * 32, ident, "fp16", Profile()) != a
    assert engine_name("ab" * 32, {**ident, "tensorrt": "11.4.0"}, "fp16", Profile()) != a
    assert engine_name("ab" * 32, {**ident, "compute_capability": "9.0"}, "fp16", Profile()) != a
    assert engine_name("ab" * 32, ident, "fp32", Profile()) != a
    assert engine_name("ab" * 32, ident, "fp16", Profile(max=(4, 512, 512))) != a
    assert engine_name("ab" * 32, ident, "fp16", Profile(opt=(1, 288, 512))) != a


def test_fp16_check_reads_the_inspector_json():
    def layer(fmt):
        return {"Name": "conv", "Outputs": [{"Name": "x", "Format/Datatype": fmt}]}

    half = json.dumps({"Layers": [layer("Half"), layer("Channel major FP16 format where channel % 8 == 0")]})
    assert fp16_layer_fraction(half) == 1.0
    mixed = json.dumps({"Layers": [layer("Row major linear FP32"), layer("Half")]})
    assert fp16_layer_fraction(mixed) == 0.5
    assert fp16_layer_fraction(json.dumps({"Layers": ["conv names only"]})) == 0.0
    # TensorRT 11 splits the field in two
    trt11 = {"Name": "conv", "Outputs": [{"Name": "x", "Format": "Channel major (kHWC8)", "DataType": "Half"}]}
    assert fp16_layer_fraction(json.dumps({"Layers": [trt11, layer("Row major linear FP32 format")]})) == 0.5


def test_info_lists_engines_and_their_validity(tmp_path, monkeypatch):
    engines = tmp_path / "engines"
    monkeypatch.setenv("RTCOLOR_ENGINE_DIR", str(engines))
    engines.mkdir()
    meta = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7", "precision": "fp16"}
    (engines / "a.json").write_text(json.dumps(meta))
    (engines / "a.engine").write_bytes(b"plan")
    (engines / "b.json").write_text(json.dumps(meta))  # no plan beside it
    rows = {r["engine"]: r["status"] for r in list_engines(engines)}
    assert rows[str(engines / "b.engine")] == "sidecar without its .engine file"
    assert "valid" in rows[str(engines / "a.engine")] or "cannot check" in rows[str(engines / "a.engine")]
    r = runner.invoke(app, ["info"])
    squeezed = "".join(r.output.split())  # rich folds long paths at the console width
    assert r.exit_code == 0 and "a.engine" in r.output and f"enginecache:{engines}" in squeezed
    monkeypatch.delenv("RTCOLOR_ENGINE_DIR")
    r = runner.invoke(app, ["info", "--engine-dir", str(engines)])
    assert r.exit_code == 0 and "a.engine" in r.output


def test_the_engine_cache_is_per_user_not_per_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("RTCOLOR_ENGINE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_engine_dir() == tmp_path / "xdg" / "rtcolor" / "engines"
    monkeypatch.chdir(tmp_path)
    assert default_engine_dir().is_absolute()  # not engines/ under whatever folder rtcolor runs in
    monkeypatch.setenv("RTCOLOR_ENGINE_DIR", str(tmp_path / "mine"))
    assert default_engine_dir() == tmp_path / "mine"


def test_info_from_another_folder_finds_an_engine_built_from_the_project_root(tmp_path):
    """An engine put into the cache by a run in the project root (a fake plan and its sidecar:
    TensorRT cannot run here) is listed by `rtcolor info` run from an unrelated folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "RTCOLOR_ENGINE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    env["PYTHONPATH"] = str(root)
    place = (
        "from realtime_color.runtime.backends.trt import default_engine_dir\n"
        "from realtime_color.model.checkpoint import ModelFile\n"
        "from realtime_color.runtime.engine import Profile, engine_name, store_engine\n"
        "ident = {'tensorrt': '10.3.0', 'gpu': 'NVIDIA Jetson AGX Orin', 'compute_capability': '8.7'}\n"
        "stem = engine_name(ModelFile.open().sha256, ident, 'fp16', Profile())\n"
        "print(store_engine(default_engine_dir(), stem, b'plan', {**ident, 'precision': 'fp16'}))\n"
    )
    built = subprocess.run([sys.executable, "-c", place], cwd=root, env=env, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    plan = Path(built.stdout.strip())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = subprocess.run(
        [sys.executable, "-m", "realtime_color.cli", "info"], cwd=elsewhere, env=env, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    squeezed = "".join(r.stdout.split())  # rich folds long paths at the console width
    assert plan.parent == tmp_path / "xdg" / "rtcolor" / "engines" and plan.is_file()
    assert f"engine{plan}:fp16forNVIDIAJetsonAGXOrin" in squeezed, r.stdout


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_build_engine_without_tensorrt_says_how_to_get_it(random_checkpoint):
    r = runner.invoke(app, ["build-engine", "--model", random_checkpoint])
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "pip install 'rtcolor[tensorrt]'" in text or "needs a CUDA GPU" in text


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available(), reason="needs TensorRT and CUDA"
)
def test_build_engine_fp16_and_parity(tmp_path, random_checkpoint):
    r = runner.invoke(
        app,
        ["build-engine", "--model", random_checkpoint, "--engine-dir", str(tmp_path), "--max-shape", "2x288x512"],
    )
    assert r.exit_code == 0, r.output
    side = next(tmp_path.glob("rtcolor_*.json"))
    meta = json.loads(side.read_text())
    assert meta["precision"] == "fp16" and meta["fp16_layer_fraction"] >= 0.5
    assert "OK" in r.output  # the parity line
