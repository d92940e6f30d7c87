"""TensorRT engine builds: the pure parts here; the build itself is marked and needs TensorRT + CUDA."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.engine import Profile, engine_name, fp16_layer_fraction, list_engines, parse_shape

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
    assert a == "rtcolor_abababababab_nvidia-jetson-agx-orin_sm87_trt10.3.0_fp16_b8_512x512"
    # every part of the key changes the name
    assert engine_name("cd" * 32, ident, "fp16", Profile()) != a
    assert engine_name("ab" * 32, {**ident, "tensorrt": "11.4.0"}, "fp16", Profile()) != a
    assert engine_name("ab" * 32, {**ident, "compute_capability": "9.0"}, "fp16", Profile()) != a
    assert engine_name("ab" * 32, ident, "fp32", Profile()) != a
    assert engine_name("ab" * 32, ident, "fp16", Profile(max=(4, 512, 512))) != a


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
    monkeypatch.chdir(tmp_path)
    engines = tmp_path / "engines"
    engines.mkdir()
    meta = {"tensorrt": "10.3.0", "gpu": "Orin", "compute_capability": "8.7", "precision": "fp16"}
    (engines / "a.json").write_text(json.dumps(meta))
    (engines / "a.engine").write_bytes(b"plan")
    (engines / "b.json").write_text(json.dumps(meta))  # no plan beside it
    rows = {r["engine"]: r["status"] for r in list_engines(engines)}
    assert rows[str(engines / "b.engine")] == "sidecar without its .engine file"
    assert "valid" in rows[str(engines / "a.engine")] or "cannot check" in rows[str(engines / "a.engine")]
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and "a.engine" in r.output


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
