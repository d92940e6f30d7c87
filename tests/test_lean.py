"""The inference commands without PyTorch, and the ONNX files shipped with the default model.

`rtcolor image`, `colorize`, `stream`, `eval` and `info` run on ONNX Runtime with the bundled model:
importing torch (about 3 s of a 4 s still picture on 2 cores) must not creep back in.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from realtime_color.media.images import read_image, write_image
from realtime_color.media.synth import write_clip
from realtime_color.model.checkpoint import default_model_path, file_sha256, read_metadata, shipped_onnx_path
from realtime_color.runtime.onnx_meta import SOURCE_SHA256_KEY, ExportInfo

from .conftest import scene

# Runs CLI commands in one fresh interpreter; with "block", torch and torchvision cannot be imported
# there (as on a machine without them). Prints, per command, its exit code and the heavy modules loaded.
_RUNNER = textwrap.dedent(
    """
    import json, sys
    class Hide:  # wraps each finder: torch and torchvision are found nowhere, as if not installed
        def __init__(self, inner):
            self.inner = inner
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision"):
                return None
            return self.inner.find_spec(name, path, target)
    if sys.argv[1] == "block":
        sys.meta_path[:] = [Hide(f) for f in sys.meta_path]
    from realtime_color.cli import main
    report = []
    for args in json.loads(sys.argv[2]):
        sys.argv = ["rtcolor", *args]
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code or 0
        loaded = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchvision"})
        report.append({"command": args[0], "exit": code, "loaded": loaded})
    print(json.dumps(report))
    """
)


def _run(mode: str, commands: list[list[str]], cwd) -> tuple[list[dict], str, str]:
    r = subprocess.run(
        [sys.executable, "-c", _RUNNER, mode, json.dumps(commands)], capture_output=True, text=True, cwd=cwd
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr, r.stdout


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("lean")
    write_image(d / "one.png", scene(72, 96))
    write_clip(d / "clip.mp4", seconds=0.5, width=128, height=72, gray=True)
    write_clip(d / "color.mp4", seconds=0.5, width=128, height=72, gray=False)
    return d


def _commands(d) -> list[list[str]]:
    return [
        ["image", str(d / "one.png"), "-o", str(d / "out.png"), "--force"],
        ["colorize", str(d / "clip.mp4"), "-o", str(d / "out.mp4"), "--force"],
        ["stream", str(d / "clip.mp4"), "--out", str(d / "rec.mp4"), "--no-pace", "--report-every", "0", "--force"],
        ["eval", str(d / "one.png"), str(d / "color.mp4"), "--json"],
        ["info"],
    ]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["installed", "block"])
def test_inference_commands_never_import_torch(inputs, mode):
    """With torch installed it is not imported; with torch missing the commands still work."""
    report, stderr, stdout = _run(mode, _commands(inputs), inputs)
    assert [r["exit"] for r in report] == [0] * len(report), stderr
    assert all(r["loaded"] == [] for r in report), report
    assert read_image(inputs / "out.png").shape == (72, 96, 3)
    assert (inputs / "out.mp4").stat().st_size > 0 and (inputs / "rec.mp4").stat().st_size > 0
    if mode == "block":  # info says what is missing and how to get it
        assert "backend torch: not installed" in stdout and "rtcolor[torch]" in " ".join(stdout.split())


def test_torch_only_commands_name_the_extra(tmp_path):
    report, stderr, _ = _run("block", [["export", "-o", str(tmp_path / "m.onnx")]], tmp_path)
    assert report[0]["exit"] == 2
    assert "this needs PyTorch, which is not installed: pip install 'rtcolor[torch]'" in " ".join(stderr.split())


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_shipped_onnx_was_built_from_the_shipped_checkpoint(precision):
    """Fails after default.safetensors changes until `python tools/build_default_onnx.py` is run."""
    import onnxruntime as ort

    path = shipped_onnx_path(precision)
    assert path.is_file(), f"{path} is missing: run python tools/build_default_onnx.py"
    meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    assert meta.get(SOURCE_SHA256_KEY) == file_sha256(default_model_path()), (
        f"{path.name} was built from another checkpoint: run python tools/build_default_onnx.py"
    )
    assert meta.get("rtcolor.precision") == precision
    info = ExportInfo.from_props(meta)  # the shipped file describes its model as every export does
    ckpt_meta = read_metadata(default_model_path())
    assert info is not None and info.inference_size == ckpt_meta["inference_size"]
    assert info.chroma_gain == ckpt_meta["chroma_gain"] and info.model_config == ckpt_meta["model_config"]


def test_default_model_runs_from_the_shipped_files():
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends import open_backend

    ckpt = ModelFile.open()
    for name, precision in (("onnxruntime", "fp32"), ("onnxruntime-int8", "int8")):
        be = open_backend(name, ckpt, device="cpu")
        assert be.path == shipped_onnx_path(precision) and be.precision == precision


def test_a_stale_shipped_file_is_not_used(tmp_path, monkeypatch):
    """A shipped file from another checkpoint is refused (with the command that rebuilds it)."""
    import realtime_color.runtime.backends.ort as ort_module
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.export import describe_onnx

    ckpt = ModelFile.open()
    ckpt.meta["sha256"] = "0" * 64  # as if default.safetensors had been replaced
    monkeypatch.setattr(ort_module, "onnx_cache_dir", lambda: tmp_path)
    from realtime_color.runtime.onnx_meta import GRAPH_VERSION

    cached = tmp_path / f"{'0' * 16}-g{GRAPH_VERSION}-fp32.onnx"  # a cached export of that replacement
    cached.write_bytes(shipped_onnx_path("fp32").read_bytes())
    describe_onnx(cached, {SOURCE_SHA256_KEY: "0" * 64})
    said = []
    be = OrtBackend.from_checkpoint(ckpt, precision="fp32", log=said.append)
    assert be.path == cached  # the cache was used, not a new export
    assert any("tools/build_default_onnx.py" in line for line in said)


@pytest.mark.slow
def test_shipped_onnx_matches_pytorch_on_a_picture():
    """The lean path (numpy color maths, shipped ONNX) gives today's torch path's picture."""
    from realtime_color.model.checkpoint import ModelFile
    from realtime_color.model.weights import load_checkpoint
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer

    ckpt = load_checkpoint()
    torch_out = Colorizer(open_backend("torch", ckpt), size=256, chroma_gain=ckpt.chroma_gain).colorize(scene(200, 300))
    lean = ModelFile.open()
    ort_out = Colorizer(open_backend("onnxruntime", lean), size=256, chroma_gain=lean.chroma_gain).colorize(
        scene(200, 300)
    )
    mse = np.mean((torch_out.astype(float) - ort_out.astype(float)) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 40


def test_shipped_int8_without_hints_runs_the_branch_free_cut():
    """Frames without hints cost the branch-free network's time: they run the shipped graph cut
    before its hint branch (no hints input, no branch node), whose output is the whole graph's
    exactly; the whole graph stays unopened until hints come."""
    import onnx

    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.onnx_graph import branch_free

    path = shipped_onnx_path("int8")
    cut = branch_free(onnx.load(str(path)))
    assert cut is not None and not any("/hints/" in n.name for n in cut.graph.node)
    assert {p.key: p.value for p in cut.metadata_props}[SOURCE_SHA256_KEY] == file_sha256(default_model_path())
    be = OrtBackend(path, precision="int8")
    assert be.takes_hints and be._full_session is None
    assert [i.name for i in be.base_session.get_inputs()] == ["L"]
    x = np.random.default_rng(0).random((1, 1, 64, 96), dtype=np.float32)
    got = be.infer(x)
    whole = be.session.run(["ab"], {"L": x, "hints": np.zeros((1, 3, 64, 96), np.float32)})[0]
    np.testing.assert_array_equal(got, whole)
