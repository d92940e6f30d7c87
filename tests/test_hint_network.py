"""The hint-capable network and its runtime API: hint channels, backends, colorizer, ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime_color.errors import RtcolorError
from realtime_color.guidance.hints import Hint
from realtime_color.model.network import ModelConfig, build_model
from realtime_color.model.weights import load_checkpoint, save_checkpoint
from realtime_color.runtime.backends.base import NoHintsError
from realtime_color.runtime.backends.batching import BatchingBackend
from realtime_color.runtime.backends.pytorch import TorchBackend
from realtime_color.runtime.colorizer import Colorizer, hint_channels

from .conftest import scene


def _hinted_model(seed: int = 0):
    """A small binned hint-capable network (random weights; its new branch already blends hints in)."""
    torch.manual_seed(seed)
    return build_model(ModelConfig(ab_bins=5, hint_channels=3)).eval()


def _hints(n: int = 1, h: int = 64, w: int = 64) -> torch.Tensor:
    hints = torch.zeros(n, 3, h, w)
    hints[:, 0, 20:24, 30:34], hints[:, 1, 20:24, 30:34], hints[:, 2, 20:24, 30:34] = 0.4, -0.3, 1.0
    return hints


def test_empty_mask_is_the_automatic_colorizer():
    model = _hinted_model()
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        plain = model(x)
        empty = model(x, hints=torch.zeros(2, 3, 64, 64))
        hinted = model(x, hints=_hints(2))
    assert torch.equal(plain, empty)
    assert not torch.allclose(plain, hinted)


def test_a_new_branch_extends_a_checkpoint_without_changing_it():
    torch.manual_seed(0)
    base = build_model(ModelConfig(ab_bins=5)).eval()
    ext = build_model(ModelConfig(ab_bins=5, hint_channels=3)).eval()
    result = ext.load_state_dict(base.state_dict(), strict=False)
    assert result.unexpected_keys == [] and all(k.startswith("hints.") for k in result.missing_keys)
    x = torch.rand(1, 1, 48, 80)
    with torch.no_grad():
        assert torch.equal(base(x), ext(x))
        assert torch.equal(base(x), ext(x, hints=torch.zeros(1, 3, 48, 80)))


def test_hints_are_followed_at_the_hinted_pixels():
    """The color at a hinted pixel is the hint's (within a small CIEDE2000), whatever the network guessed."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    frame = scene(64, 64)
    col = Colorizer(TorchBackend(_hinted_model()), size=64)
    for color in ("#b04a3a", "#4a70a8", "#4f8f4f"):  # in gamut at the ground's L
        out = col.colorize(frame, (Hint(0.7, 0.8, color, size=9),))  # inside the green ground
        got = rgb2lab(out[49:53, 43:47].astype(np.float64) / 255)
        want_rgb = np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)], np.float64) / 255
        want = np.broadcast_to(rgb2lab(want_rgb[None, None]), got.shape).copy()
        want[..., 0] = got[..., 0]  # the picture keeps its own L: compare the chroma
        assert deltaE_ciede2000(got, want).max() < 3.0, color


def test_unaligned_input_takes_hints():
    model = _hinted_model()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 50, 70), hints=_hints(1, 50, 70))
    assert out.shape == (1, 2, 25, 35)
    assert torch.isfinite(out).all()


def test_hint_config_round_trips_and_old_checkpoints_load(tmp_path, random_checkpoint):
    model = _hinted_model()
    path = save_checkpoint(model, tmp_path / "h.safetensors", {"inference_size": 64})
    again = load_checkpoint(path)
    assert again.model.config.hint_channels == 3 and again.takes_hints
    x, h = torch.rand(1, 1, 64, 64), _hints()
    with torch.no_grad():
        assert torch.allclose(again.model(x, hints=h), model.half().float()(x, hints=h), atol=1e-3)
    old = load_checkpoint(random_checkpoint)  # written without hint_channels
    assert old.model.config.hint_channels == 0 and not old.takes_hints
    with pytest.raises(ValueError, match="hint_channels"):
        ModelConfig.from_dict({"hint_channels": 5})


def test_a_model_without_hint_inputs_refuses_hints(random_checkpoint):
    be = TorchBackend(load_checkpoint(random_checkpoint).model)
    x = np.random.rand(1, 1, 64, 64).astype(np.float32)
    assert np.asarray(be.infer(x, None)).shape == (1, 2, 32, 32)
    assert np.asarray(be.infer(x, np.zeros((1, 3, 64, 64), np.float32))).shape == (1, 2, 32, 32)  # empty: fine
    with pytest.raises(NoHintsError, match="takes no hints") as e:
        be.infer(x, _hints().numpy())
    assert isinstance(e.value, RtcolorError)


def test_batching_carries_each_callers_hints():
    be = TorchBackend(_hinted_model())
    x = np.random.rand(2, 1, 64, 64).astype(np.float32)
    h = _hints(1).numpy()
    want = [np.asarray(be.infer(x[:1], h)), np.asarray(be.infer(x[1:]))]
    batching = BatchingBackend(be, callers=1)
    try:
        got = [np.asarray(batching.infer(x[:1], h)), np.asarray(batching.infer(x[1:]))]
    finally:
        batching.close()
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_colorizer_rasterizes_hints_and_saturation_scales():
    frame = scene(64, 64)
    col = Colorizer(TorchBackend(_hinted_model()), size=64)
    plain = col.colorize(frame)
    hinted = col.colorize(frame, (Hint(0.5, 0.3, "#d03020", size=5),))
    assert not np.array_equal(plain, hinted)
    lums, ab = col.analyze([frame, frame], [(), (Hint(0.5, 0.3, "#d03020"),)])
    assert ab.shape == (2, 2, 32, 32) and not np.allclose(ab[0], ab[1])
    gray = Colorizer(col.backend, size=64, saturation=0.0).colorize(frame)
    assert np.abs(gray.astype(int) - gray[..., :1].astype(int)).max() <= 1  # R = G = B: gray
    with pytest.raises(ValueError, match="saturation"):
        Colorizer(col.backend, size=64, saturation=2.5)


def test_hint_channels_layout():
    assert hint_channels(None, (32, 32)) is None and hint_channels([(), ()], (32, 32)) is None
    chan = hint_channels([(Hint(0.0, 0.0, "#ff0000", size=1),)], (32, 32))
    assert chan.shape == (1, 3, 32, 32) and chan[0, 2].sum() == 1 and chan[0, 2, 0, 0] == 1
    assert chan[0, 0, 0, 0] > 0.6  # red: a = 80 Lab units, over 110


def test_suggest_offers_likely_colors():
    col = Colorizer(TorchBackend(_hinted_model()), size=64)
    got = col.suggest(scene(64, 64), 0.5, 0.5, k=4)
    assert len(got) == 4
    assert all(c.startswith("#") and len(c) == 7 for c, _ in got)
    probs = [p for _, p in got]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-6


@pytest.mark.slow
def test_onnx_parity_with_hints(tmp_path):
    pytest.importorskip("onnxruntime")
    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.export import export_onnx, onnx_parity, parity_hints

    model = _hinted_model()
    path = export_onnx(model, tmp_path / "h.onnx", sample_shape=(1, 1, 64, 96))
    x = torch.rand(2, 1, 48, 80)
    result = onnx_parity(model, path, "fp32", inputs=x, hints=parity_hints((2, 1, 48, 80)))
    assert result.ok, str(result)
    be = OrtBackend(path)
    assert be.takes_hints
    with torch.no_grad():
        np.testing.assert_allclose(be.infer(x.numpy()), model(x).numpy(), atol=1e-4)  # no hints: zeros fed
    bins = be.infer_bins(x.numpy(), parity_hints((2, 1, 48, 80)).numpy())
    assert bins.shape == (2, 24, 40, 25)
    np.testing.assert_allclose(bins.sum(-1), 1.0, atol=1e-4)


class _Counting:
    """Wraps an InferenceSession, counting its runs."""

    def __init__(self, session) -> None:
        self.inner, self.calls = session, 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.inner.run(*args, **kwargs)


@pytest.mark.slow
def test_a_batch_without_hints_does_not_run_the_hint_branch(tmp_path):
    pytest.importorskip("onnxruntime")
    from realtime_color.runtime.backends.ort import OrtBackend
    from realtime_color.runtime.export import export_onnx, parity_hints

    model = _hinted_model()
    be = OrtBackend(export_onnx(model, tmp_path / "h.onnx", sample_shape=(1, 1, 64, 96)))
    assert "hints" not in {i.name for i in be.base_session.get_inputs()}  # the cut has no branch
    assert be._full_session is None  # the whole graph is not even opened until a hint comes
    x = torch.rand(2, 1, 48, 80)
    hints = parity_hints((2, 1, 48, 80))
    base, full = _Counting(be.base_session), _Counting(be.session)
    be.base_session, be._full_session = base, full
    with torch.no_grad():
        np.testing.assert_allclose(be.infer(x.numpy()), model(x).numpy(), atol=1e-4)
        np.testing.assert_allclose(be.infer(x.numpy(), torch.zeros_like(hints)), model(x).numpy(), atol=1e-4)
        assert (base.calls, full.calls) == (2, 0)
        np.testing.assert_allclose(be.infer(x.numpy(), hints.numpy()), model(x, hints=hints).numpy(), atol=1e-4)
        assert (base.calls, full.calls) == (2, 1)
        one = hints.clone()
        one[1] = 0  # a batch where only one picture has hints runs the whole graph for both
        np.testing.assert_allclose(be.infer(x.numpy(), one.numpy()), model(x, hints=one).numpy(), atol=1e-4)
        assert (base.calls, full.calls) == (2, 2)
