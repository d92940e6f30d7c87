"""CUDA tests: fp16 / channels_last / CUDA-graph parity and a training step. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime_color.model.network import ColorizerNet
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.export import parity, parity_inputs

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ColorizerNet().eval()


def _reference(model, x):
    with torch.inference_mode():
        return model.float().cpu().forward_aligned(x).numpy()


def test_cuda_fp16_matches_cpu_fp32(model):
    x = parity_inputs(shape=(224, 320))
    ref = _reference(model, x)
    be = TorchBackend(ColorizerNet().eval(), device="cuda", precision="fp16")
    be.model.load_state_dict(model.state_dict())
    got = be.infer(x).float().cpu().numpy()
    p = parity(ref, got, "fp16")
    assert p.ok, str(p)


def test_cuda_graph_equals_eager(model):
    x = parity_inputs(shape=(160, 256))
    eager = TorchBackend(ColorizerNet().eval(), device="cuda", precision="fp16")
    eager.model.load_state_dict(model.state_dict())
    graphed = TorchBackend(ColorizerNet().eval(), device="cuda", precision="fp16", cuda_graph=True)
    graphed.model.load_state_dict(model.state_dict())
    a = eager.infer(x).float().cpu().numpy()
    b1 = graphed.infer(x).float().cpu().numpy()
    b2 = graphed.infer(x * 0.5).float().cpu().numpy()  # replay with new data in the static buffer
    c2 = eager.infer(x * 0.5).float().cpu().numpy()
    np.testing.assert_allclose(a, b1, atol=2e-3)
    np.testing.assert_allclose(c2, b2, atol=2e-3)
    assert not np.allclose(b1, b2)


def test_cuda_training_step_reduces_loss():
    from realtime_color.training.data import lab_split
    from realtime_color.training.fitting import ab_loss

    torch.manual_seed(0)
    model = ColorizerNet().cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rgb = torch.zeros(4, 3, 64, 64, dtype=torch.uint8)
    rgb[:, 0] = 200  # a red world: the target is constant, so the loss must fall
    rgb[:, 1] = 40
    rgb[:, 2] = 30
    lum, ab = lab_split(rgb.cuda())
    losses = []
    for _ in range(30):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            pred = model(lum.contiguous(memory_format=torch.channels_last))
        loss = ab_loss(pred.float(), ab)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_onnxruntime_cuda_provider_matches_pytorch(model, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA execution provider (pip install onnxruntime-gpu)")
    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.export import export_onnx

    path = export_onnx(model, tmp_path / "m.onnx")
    be = OrtBackend(path, device="cuda")
    assert be.providers[0] == "CUDAExecutionProvider"
    x = parity_inputs(shape=(224, 320))
    p = parity(_reference(model, x), be.infer(x).float().cpu().numpy(), "fp32")
    assert p.ok, str(p)


def test_video_pipeline_on_cuda(tmp_path):
    """The whole file job with torch CUDA fp16: every frame out, luma untouched."""
    pytest.importorskip("av")
    from realtime_color.media.synth import write_clip
    from realtime_color.media.video import EncoderSettings
    from realtime_color.model.weights import load_checkpoint
    from realtime_color.runtime.backends import open_backend
    from realtime_color.runtime.colorizer import Colorizer
    from realtime_color.video.stages import PipelineConfig, colorize_file

    clip = write_clip(tmp_path / "c.mp4", seconds=1.0, width=320, height=180, gray=True)
    ckpt = load_checkpoint(None)
    col = Colorizer(open_backend("auto", ckpt, device="cuda:0"), size=256, chroma_gain=ckpt.chroma_gain)
    s = colorize_file(clip, tmp_path / "o.mp4", col, PipelineConfig(batch=4), EncoderSettings(crf=0)).summary()
    assert s["complete"] and s["frames_out"] == 30
