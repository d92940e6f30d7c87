"""Self-describing exports: an ONNX file rtcolor writes says, on its own, which model it came from."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.model.checkpoint import file_sha256, read_metadata
from realtime_color.runtime.onnx_meta import FORMAT, ExportInfo

runner = CliRunner()

# ONNX Runtime alone, in a fresh interpreter with no rtcolor module imported: what the file says.
_READ = textwrap.dedent(
    """
    import json, sys
    import onnxruntime as ort
    meta = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"]).get_modelmeta()
    assert not any(m.startswith("realtime_color") for m in sys.modules)
    print(json.dumps(dict(meta.custom_metadata_map)))
    """
)


def _props(path) -> dict:
    r = subprocess.run([sys.executable, "-c", _READ, str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_an_exported_onnx_opened_alone_names_its_model(tmp_path, random_checkpoint):
    out = tmp_path / "m.onnx"
    r = runner.invoke(app, ["export", "-o", str(out), "--model", random_checkpoint])
    assert r.exit_code == 0, r.output
    props = _props(out)
    meta = read_metadata(random_checkpoint)
    assert props["rtcolor.source_sha256"] == file_sha256(random_checkpoint)
    assert props["rtcolor.source_file"] == "random.safetensors"
    assert props["rtcolor.format"] == str(FORMAT) and props["rtcolor.precision"] == "fp32"
    assert int(props["rtcolor.inference_size"]) == meta["inference_size"] == 64
    assert float(props["rtcolor.chroma_gain"]) == float(meta.get("chroma_gain", 1.0))
    assert json.loads(props["rtcolor.normalization"]) == meta["normalization"]
    assert json.loads(props["rtcolor.model_config"]) == meta["model_config"]
    info = ExportInfo.from_props(props)
    assert info.source_sha256 == file_sha256(random_checkpoint) and info.inference_size == 64


def test_the_onnxruntime_backend_reads_the_description_back(tmp_path, random_checkpoint, monkeypatch):
    import realtime_color.runtime.backends.ort as ort_module
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend

    monkeypatch.setattr(ort_module, "onnx_cache_dir", lambda: tmp_path)
    ckpt = ModelFile.open(random_checkpoint)
    be = open_backend("onnxruntime", ckpt, device="cpu")  # exported into the (temporary) cache
    assert be.export_info.source_sha256 == ckpt.sha256 and be.export_info.precision == "fp32"
    assert be.export_info.inference_size == ckpt.inference_size
    # A file under this model's cache key that came from another model is exported again, not used.
    from realtime_color.runtime.export import describe_onnx

    describe_onnx(be.path, {"rtcolor.source_sha256": "f" * 64})
    again = open_backend("onnxruntime", ckpt, device="cpu")
    assert again.path == be.path and again.export_info.source_sha256 == ckpt.sha256


def test_files_from_elsewhere_are_not_taken_for_ours():
    assert ExportInfo.from_props({}) is None
    assert (
        ExportInfo.from_props({"rtcolor.format": "1", "rtcolor.source_sha256": "a", "rtcolor.model_config": "{"})
        is None
    )
