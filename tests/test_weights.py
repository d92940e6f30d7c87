"""Checkpoints: round trip, the bundled default, refusal of corrupt, truncated and mismatched files."""

from __future__ import annotations

import json
import urllib.error

import pytest
import torch
from safetensors.torch import save_file

from realtime_color.model.backbones import BackboneError, load_backbone
from realtime_color.model.network import ColorizerNet
from realtime_color.model.weights import (
    CheckpointError,
    default_model_path,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
)


def test_round_trip_fp32_and_fp16(tmp_path):
    torch.manual_seed(0)
    model = ColorizerNet().eval()
    x = torch.rand(1, 1, 32, 48)
    with torch.inference_mode():
        want = model(x)
    for half in (False, True):
        path = save_checkpoint(model, tmp_path / f"m{half}.safetensors", {"inference_size": 192}, half=half)
        ck = load_checkpoint(path)
        assert ck.inference_size == 192 and len(ck.sha256) == 64
        assert read_metadata(path)["dtype"] == ("float16" if half else "float32")
        with torch.inference_mode():
            got = ck.model(x)
        torch.testing.assert_close(got, want, atol=2e-2 if half else 1e-6, rtol=0)


def test_a_resaved_checkpoint_describes_its_network_not_the_header_it_copied(tmp_path):
    """Re-saving with a new temperature (rtcolor calibrate) passes the old header as meta; the
    file must record the config it is given, or it would load with the old one."""
    from dataclasses import replace

    from realtime_color.model.network import ModelConfig, build_model

    torch.manual_seed(0)
    path = save_checkpoint(build_model(ModelConfig(ab_bins=5, temperature=0.38)), tmp_path / "m.safetensors")
    ck = load_checkpoint(path)
    calibrated = replace(ck.model.config, temperature=0.6)
    again = save_checkpoint(ck.model, tmp_path / "m2.safetensors", dict(ck.meta, chroma_gain=1.2), config=calibrated)
    assert read_metadata(again)["model_config"]["temperature"] == 0.6
    assert ck.model.config.temperature == 0.38  # the model it was given is unchanged
    reloaded = load_checkpoint(again)
    assert reloaded.model.config.temperature == 0.6 and reloaded.chroma_gain == 1.2


def test_bundled_default_is_small_fp16_and_self_describing():
    path = default_model_path()
    assert path.is_file() and path.stat().st_size <= 40e6
    meta = read_metadata(path)
    assert meta["dtype"] == "float16"
    assert meta["model_config"]["arch"] == "vgg16-unet"
    assert meta["training"]["val_images"]
    # its validation figures at the temperature and gain it runs with (the calibration's row)
    sweep = meta["metrics"]["temperature_calibration"]["sweep"]
    row = sweep[f"{meta['model_config']['temperature']},{meta['chroma_gain']}"]
    assert row["pictures"] > 0 and row["ciede"] < row["ciede_gray"] and row["psnr_gain"] > 0


def test_truncated_file_is_refused(random_checkpoint, tmp_path):
    data = open(random_checkpoint, "rb").read()
    bad = tmp_path / "cut.safetensors"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_checkpoint(bad)


def test_garbage_and_missing_files_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00not a model at all" * 10)
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(junk)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_foreign_safetensors_without_metadata_is_refused(tmp_path):
    p = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(p))
    with pytest.raises(CheckpointError, match="not an rtcolor checkpoint"):
        load_checkpoint(p)


def test_mismatched_tensors_are_refused(random_checkpoint, tmp_path):
    from safetensors.torch import load_file

    meta = read_metadata(random_checkpoint)
    tensors = load_file(random_checkpoint)
    wrong = dict(tensors)
    wrong["head.weight"] = torch.zeros(3, 32, 1, 1)
    p = tmp_path / "shape.safetensors"
    save_file(wrong, str(p), metadata={"rtcolor": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="shape"):
        load_checkpoint(p)
    missing = {k: v for k, v in tensors.items() if k != "head.bias"}
    p2 = tmp_path / "missing.safetensors"
    save_file(missing, str(p2), metadata={"rtcolor": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(p2)
    nan = dict(tensors)
    nan["head.bias"] = torch.full_like(tensors["head.bias"], float("nan"))
    p3 = tmp_path / "nan.safetensors"
    save_file(nan, str(p3), metadata={"rtcolor": json.dumps(meta)})
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(p3)


def test_imagenet_offline_error_names_cache_and_fix(monkeypatch):
    from torchvision.models import VGG16_Weights

    def offline(self, *a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(type(VGG16_Weights.IMAGENET1K_V1), "get_state_dict", offline)
    with pytest.raises(BackboneError) as e:
        load_backbone("imagenet")
    msg = str(e.value)
    assert "checkpoints" in msg and "--backbone FILE" in msg


def test_backbone_file_loads_with_weights_only(tmp_path):
    from torchvision.models import vgg16

    p = tmp_path / "vgg.pth"
    # its conv layers only (58 MB; the classifier's 470 MB are not read)
    torch.save({k: v for k, v in vgg16(weights=None).state_dict().items() if k.startswith("features.")}, p)
    bb = load_backbone(str(p))
    assert bb.convs[0][0].shape == (64, 1, 3, 3) and bb.source["format"] == "torchvision"
    with pytest.raises(BackboneError, match="neither"):
        load_backbone(str(tmp_path / "absent.pth"))


def test_average_writes_the_mean_and_refuses_another_network(tmp_path):
    from typer.testing import CliRunner

    from realtime_color.cli import app
    from realtime_color.model.network import ModelConfig, build_model

    runner = CliRunner()
    paths = []
    for seed, t in ((0, 0.38), (1, 0.6)):  # calibrated to other temperatures: still one network
        torch.manual_seed(seed)
        paths.append(tmp_path / f"m{seed}.safetensors")
        meta = {"inference_size": 64, "training": {"config": {"seed": seed}}, "metrics": {"validation": {"psnr": 20.0}}}
        save_checkpoint(build_model(ModelConfig(ab_bins=5, temperature=t)).eval(), paths[-1], meta)
    out = tmp_path / "soup.safetensors"
    r = runner.invoke(app, ["average", *map(str, paths), "-o", str(out)])
    assert r.exit_code == 0, r.output
    a, b, m = (load_checkpoint(p).model.float().state_dict() for p in (*paths, out))
    for k in ("head.weight", "lateral.0.weight"):
        torch.testing.assert_close(m[k], (a[k] + b[k]) / 2, atol=2e-3, rtol=1e-2)  # stored as fp16
    soup = load_checkpoint(out)
    assert soup.model.config.temperature == 0.38  # the first checkpoint's
    assert [(s["file"], s["seed"]) for s in soup.meta["training"]["averaged_from"]] == [
        ("m0.safetensors", 0),
        ("m1.safetensors", 1),
    ]
    assert "metrics" not in soup.meta  # the sources' figures are not the soup's
    other = tmp_path / "other.safetensors"
    save_checkpoint(build_model(ModelConfig(ab_bins=7)).eval(), other, {"inference_size": 64})
    r = runner.invoke(app, ["average", str(paths[0]), str(other), "-o", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 2 and "is another network" in " ".join(r.output.split())
    # A soup weighted beside a new ingredient: (2 * soup + a) / 3; the soup's own sources are kept.
    wide = tmp_path / "wide.safetensors"
    cmd = ["average", str(out), str(paths[0]), "--weights", "2,1", "-o", str(wide)]
    r = runner.invoke(app, cmd)
    assert r.exit_code == 0, r.output
    w = load_checkpoint(wide)
    k = "head.weight"
    torch.testing.assert_close(w.model.float().state_dict()[k], (2 * m[k] + a[k]) / 3, atol=2e-3, rtol=1e-2)
    first, second = w.meta["training"]["averaged_from"]
    assert first["weight"] == pytest.approx(2 / 3) and len(first["averaged_from"]) == 2
    assert second["weight"] == pytest.approx(1 / 3) and second["seed"] == 0
    r = runner.invoke(app, [*cmd[:3], "--weights", "2,-1", "-o", str(tmp_path / "y.safetensors")])
    assert r.exit_code == 2 and "--weights '2,-1' must be 2 positive numbers" in " ".join(r.output.split())
    r = runner.invoke(app, ["average", str(out), str(paths[0]), "-o", str(paths[0]), "--force"])
    assert r.exit_code == 2 and "would overwrite an input" in " ".join(r.output.split())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("x.", "y."))] == []


def test_info_quotes_the_calibration_row_only_for_the_estimator_it_swept():
    from realtime_color.cli.stills import _validation_figures

    row = {"psnr_gain": 0.84, "ciede": 10.02, "ciede_gray": 10.97, "colorfulness": 22.6, "pictures": 52}
    meta = {
        "model_config": {"temperature": 0.6},  # no estimator: a file from before it existed, the mean
        "chroma_gain": 1.0,
        "metrics": {
            "temperature_calibration": {"sweep": {"0.6,1.0": row}},
            "validation": {"psnr": 23.5, "psnr_gray": 22.9},
        },
    }
    assert "+0.84 dB over gray, CIEDE2000 10.02" in _validation_figures(meta)
    meta["model_config"]["estimator"] = "median"  # swept as a mean: that row is not this network's
    assert _validation_figures(meta) == "val PSNR 23.50 dB vs gray 22.90"
    meta["metrics"]["temperature_calibration"]["estimator"] = "median"
    assert "CIEDE2000 10.02" in _validation_figures(meta)
