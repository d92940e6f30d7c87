"""Backends: ONNX export parity with PyTorch, the automatic choice, clear errors."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from realtime_color.model.weights import load_checkpoint
from realtime_color.runtime.backends import BackendError, open_backend
from realtime_color.runtime.backends.ort import OrtBackend
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer
from realtime_color.runtime.export import export_onnx, onnx_parity, parity_inputs

from .conftest import scene


@pytest.fixture(scope="module")
def ckpt():
    return load_checkpoint()


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_onnx_export_matches_pytorch(ckpt, tmp_path, precision):
    path = export_onnx(ckpt.model, tmp_path / f"m-{precision}.onnx", fp16=precision == "fp16")
    p = onnx_parity(ckpt.model, path, precision, inputs=parity_inputs(shape=(160, 224)))
    assert p.ok, str(p)
    if precision == "fp32":
        assert p.psnr_db >= 40


@pytest.mark.slow
def test_onnxruntime_colorizer_matches_torch_on_a_picture(ckpt, tmp_path):
    path = export_onnx(ckpt.model, tmp_path / "m.onnx")
    gray = scene(120, 160)
    a = Colorizer(TorchBackend(ckpt.model), size=128).colorize(gray)
    b = Colorizer(OrtBackend(path), size=128).colorize(gray)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 40


def test_unknown_backend_and_missing_cuda(ckpt):
    with pytest.raises(BackendError, match="unknown backend"):
        open_backend("openvino", ckpt)
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="CUDA"):
            open_backend("torch", ckpt, device="cuda")


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here")
def test_tensorrt_missing_says_how_to_install(ckpt):
    with pytest.raises(BackendError, match=r"rtcolor\[tensorrt\]"):
        open_backend("tensorrt", ckpt)


@pytest.mark.tensorrt
@pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is None or not torch.cuda.is_available(), reason="needs TensorRT and CUDA"
)
def test_tensorrt_backend_without_engine_says_build(ckpt, tmp_path):
    with pytest.raises(BackendError, match="build-engine"):
        open_backend("tensorrt", ckpt, engine_dir=tmp_path)


@pytest.mark.slow
def test_int8_backend_is_built_once_checked_and_close_to_fp32(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))  # the ONNX cache lives under it
    # A copy of the default model: the bundled one runs from the ONNX files shipped beside it.
    import shutil

    from realtime_color.model.weights import default_model_path

    ckpt = load_checkpoint(shutil.copy(default_model_path(), tmp_path / "model.safetensors"))
    from realtime_color.runtime.backends.ort import onnx_cache_dir

    int8 = open_backend("onnxruntime-int8", ckpt)
    assert int8.precision == "int8" and "int8" in int8.describe()
    files = {p.name.split("-")[-1][:4]: p.stat().st_size for p in onnx_cache_dir().glob("*.onnx")}
    assert set(files) == {"fp32", "int8"} and files["int8"] < 0.4 * files["fp32"]
    gray = scene(144, 256)
    a = Colorizer(open_backend("onnxruntime", ckpt), size=256).colorize(gray)
    b = Colorizer(int8, size=256).colorize(gray)
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    assert 10 * np.log10(255**2 / mse) >= 30  # close to fp32, but not bit-equal: it is quantized
    assert mse > 0

    # auto on the CPU: int8 where the CPU has fast int8 instructions, fp32 elsewhere (both cached now).
    import realtime_color.runtime.backends.ort as ort_module

    monkeypatch.setattr(ort_module, "cpu_has_fast_int8", lambda: True)
    assert open_backend("auto", ckpt, device="cpu").precision == "int8"
    monkeypatch.setattr(ort_module, "cpu_has_fast_int8", lambda: False)
    assert open_backend("auto", ckpt, device="cpu").precision == "fp32"

    # A build that fails its parity check leaves no int8 file behind and says why; auto then uses fp32.
    import realtime_color.runtime.export as export

    for p in onnx_cache_dir().glob("*int8*"):
        p.unlink()
    monkeypatch.setitem(export.PARITY_DB, "int8", 200.0)
    with pytest.raises(BackendError, match="int8 model rejected: parity vs ONNX Runtime fp32"):
        open_backend("onnxruntime-int8", ckpt)
    assert not list(onnx_cache_dir().glob("*int8*"))
    monkeypatch.setattr(ort_module, "cpu_has_fast_int8", lambda: True)
    said = []
    assert open_backend("auto", ckpt, device="cpu", log=said.append).precision == "fp32"
    assert any("int8 model rejected" in line for line in said)


def test_an_export_cached_by_an_older_graph_is_not_reused(tmp_path, monkeypatch):
    """The cache's file names carry the export graph's version: a file an older rtcolor cached for
    the same checkpoint (another head layout) is left alone and the checkpoint is exported again."""
    import shutil

    from realtime_color.model.weights import default_model_path
    from realtime_color.runtime.backends.ort import onnx_cache_dir
    from realtime_color.runtime.onnx_meta import GRAPH_VERSION

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    ckpt = load_checkpoint(shutil.copy(default_model_path(), tmp_path / "model.safetensors"))
    onnx_cache_dir().mkdir(parents=True)
    old = onnx_cache_dir() / f"{ckpt.sha256[:16]}-fp32.onnx"  # the name before graph versions
    old.write_bytes(b"an export with another graph")
    be = OrtBackend.from_checkpoint(ckpt, precision="fp32")
    assert be.path.name == f"{ckpt.sha256[:16]}-g{GRAPH_VERSION}-fp32.onnx"
    assert be.export_info.source_sha256 == ckpt.sha256
    assert old.read_bytes() == b"an export with another graph"
