"""ColorizerNet: output shapes at several sizes, no NaNs, and the ImageNet first-conv fold."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg16

from realtime_color.model.backbones import BackboneError, init_backbone
from realtime_color.model.network import ARCHS, ColorizerNet, ModelConfig, build_model, count_parameters


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return ColorizerNet().eval()


@pytest.mark.parametrize("n,h,w", [(1, 32, 32), (2, 48, 80), (1, 50, 70), (1, 17, 33), (3, 144, 256)])
def test_output_shape_any_size(net, n, h, w):
    with torch.inference_mode():
        ab = net(torch.rand(n, 1, h, w))
    assert ab.shape == (n, 2, (h + 1) // 2, (w + 1) // 2)
    assert torch.isfinite(ab).all()


def test_size_fits_the_40mb_fp16_budget(net):
    assert count_parameters(net) * 2 < 40e6


def test_config_round_trip_and_unknown_arch():
    cfg = ModelConfig()
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown model arch"):
        ModelConfig.from_dict({"arch": "resnet"})


def test_build_model_is_the_one_place_that_knows_architectures(tmp_path, monkeypatch):
    assert type(build_model()) is ColorizerNet and build_model().config == ModelConfig()
    with pytest.raises(ValueError, match="unknown model arch 'resnet'"):
        build_model(ModelConfig(arch="resnet"))

    class Wider(ColorizerNet):  # a new architecture is one row in ARCHS; checkpoints follow
        pass

    monkeypatch.setitem(ARCHS, "wider", Wider)
    from realtime_color.model.weights import load_checkpoint, save_checkpoint

    path = save_checkpoint(build_model(ModelConfig(arch="wider")), tmp_path / "w.safetensors")
    assert type(load_checkpoint(path).model) is Wider


def test_imagenet_first_conv_fold_sees_gray_as_vgg_did():
    torch.manual_seed(1)
    ref = vgg16(weights=None).eval()
    net = ColorizerNet().eval()
    assert init_backbone(net, ref.state_dict()) == 26  # 13 convs x (weight, bias)
    g = torch.rand(1, 1, 20, 20)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want = ref.features[0]((g.expand(1, 3, 20, 20) - mean) / std)
    got = net.encoder[0][0](g)
    # Zero padding differs at the border (VGG pads the normalized image); the interior must agree.
    torch.testing.assert_close(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(net.encoder[4][-2].weight, ref.features[28].weight)


def test_backbone_without_features_is_refused():
    with pytest.raises(BackboneError, match="features"):
        init_backbone(ColorizerNet(), {"classifier.0.weight": torch.zeros(1)})


def test_pad_is_replicate_not_black(net):
    # An odd size is padded inside; the result equals running on an explicitly replicated input.
    x = torch.rand(1, 1, 30, 30)
    with torch.inference_mode():
        a = net(x)
        b = net.forward_aligned(F.pad(x, (0, 2, 0, 2), mode="replicate"))[..., :15, :15]
    torch.testing.assert_close(a, b)


def test_soft_bins_are_a_distribution_whose_mean_is_the_pixel():
    from realtime_color.model.network import BIN_RANGE, bin_centers, soft_bins

    n = 21
    ab = torch.rand(3, 2, 5, 7) * 1.8 - 0.9
    ab[0, :, 0, 0] = torch.tensor([2.0, -3.0])  # outside the grid: the nearest edge bin
    t = soft_bins(ab, n)
    assert t.shape == (3, n * n, 5, 7) and (t >= 0).all()
    torch.testing.assert_close(t.sum(1), torch.ones(3, 5, 7))
    assert int((t > 0).sum(1).max()) <= 4  # the four bins around each pixel, nothing else
    mean = torch.einsum("nqhw,qc->nchw", t, bin_centers(n))
    inside = ab.abs().amax(1) <= BIN_RANGE
    torch.testing.assert_close(mean.permute(0, 2, 3, 1)[inside], ab.permute(0, 2, 3, 1)[inside])
    torch.testing.assert_close(mean[0, :, 0, 0], torch.tensor([BIN_RANGE, -BIN_RANGE]))


def test_annealed_mean_goes_from_the_mean_to_the_mode():
    from realtime_color.model.network import annealed_mean, bin_centers

    n = 5
    centers = bin_centers(n)
    red, blue = 4 * n + 2, 0 * n + 2  # (a=+1, b=0) and (a=-1, b=0)
    logits = torch.full((1, n * n, 1, 1), -30.0)
    logits[0, red], logits[0, blue] = 0.2, 0.0  # torn between two hues, red slightly likelier
    mean = annealed_mean(logits, n, 1.0)[0, :, 0, 0]
    p = torch.softmax(logits[0, :, 0, 0], 0)
    torch.testing.assert_close(mean, p @ centers)
    assert abs(float(mean[0])) < 0.15  # T = 1: nearly neutral, the two hues cancel
    cold = annealed_mean(logits, n, 0.02)[0, :, 0, 0]
    torch.testing.assert_close(cold, centers[red], atol=1e-3, rtol=0)  # T -> 0: the likelier hue


def test_a_binned_model_outputs_ab_and_exports_to_onnx(tmp_path):
    from realtime_color.model.network import annealed_mean
    from realtime_color.runtime.export import export_onnx, onnx_parity, parity_inputs

    torch.manual_seed(0)
    net = build_model(ModelConfig(ab_bins=7, temperature=0.5)).eval()
    x = torch.rand(2, 1, 48, 80)
    with torch.no_grad():
        assert net(x).shape == (2, 2, 24, 40)
        assert net(x, logits=True).shape == (2, 49, 24, 40)
        assert net(x).abs().max() <= 1.0 + 1e-6  # a mean of bin centers stays inside the grid
        # The fast channels-last path is the annealed mean of the head's logits.
        torch.testing.assert_close(net(x), annealed_mean(net(x, logits=True), 7, 0.5), atol=1e-5, rtol=0)
    path = export_onnx(net, tmp_path / "bins.onnx", sample_shape=(1, 1, 64, 64))
    par = onnx_parity(net, path, "fp32", parity_inputs(shape=(64, 96)))
    assert par.ok, par


@pytest.mark.parametrize(
    "masses, median",
    [
        ({5: 1.0}, -0.5),  # one bin: its center (bin k of 21 sits at -1 + 0.1 k)
        ({5: 0.5, 6: 0.5}, -0.45),  # two equal neighbors: the midpoint between them
        ({k: 1 / 21 for k in range(21)}, 0.0),  # uniform: the middle
        ({3: 0.3, 10: 0.3, 12: 0.4}, 0.0 - 0.05 + 0.1 * (0.2 / 0.3)),  # crosses 1/2 two thirds into bin 10
        ({0: 1.0}, -1.0),
        ({20: 1.0}, 1.0),
    ],
)
def test_marginal_median_reads_the_histogram(masses, median):
    from realtime_color.model.network import marginal_median

    p = torch.zeros(21)
    for k, v in masses.items():
        p[k] = v
    assert float(marginal_median(p)) == pytest.approx(median, abs=1e-5)


def test_the_median_is_not_pulled_by_a_tail_of_vivid_hues():
    from realtime_color.model.network import annealed_mean, bin_centers, binned_median

    n = 5
    neutral, red = 2 * n + 2, 4 * n + 2  # (0, 0) and (a=+1, b=0)
    logits = torch.full((1, n * n, 1, 1), -30.0)
    logits[0, neutral], logits[0, red] = math.log(0.6), math.log(0.4)
    mean = annealed_mean(logits, n, 1.0)[0, :, 0, 0]
    median = binned_median(logits, n, 1.0)[0, :, 0, 0]
    torch.testing.assert_close(mean, torch.tensor([0.4, 0.0]), atol=1e-4, rtol=0)  # 40% of the way to red
    assert float(median[0]) == pytest.approx(-0.25 + 0.5 * (0.5 / 0.6), abs=1e-4)  # inside the neutral bin
    assert abs(float(median[1])) < 1e-4
    sure = logits.clone()
    sure[0, red] = 5.0  # red nearly certain: both land on it
    torch.testing.assert_close(binned_median(sure, n, 1.0)[0, :, 0, 0], bin_centers(n)[red], atol=0.01, rtol=0)


def test_a_median_model_runs_its_estimator_and_exports_to_onnx(tmp_path):
    from realtime_color.model.network import binned_median
    from realtime_color.runtime.export import export_onnx, fp32_nodes, onnx_parity, parity_inputs

    torch.manual_seed(0)
    net = build_model(ModelConfig(ab_bins=7, temperature=0.5, estimator="median")).eval()
    x = torch.rand(2, 1, 48, 80)
    with torch.no_grad():
        out = net(x)
        assert out.shape == (2, 2, 24, 40)
        torch.testing.assert_close(out, binned_median(net(x, logits=True), 7, 0.5), atol=1e-5, rtol=0)
        from realtime_color.model.network import Readout

        assert (net(x, readout=Readout(0.5, "mean")) - out).abs().max() > 1e-3  # the estimator is read out
    path = export_onnx(net, tmp_path / "median.onnx", sample_shape=(1, 1, 64, 64))
    par = onnx_parity(net, path, "fp32", parity_inputs(shape=(64, 96)))
    assert par.ok, par
    # fp16 inside (TensorRT 11's strongly typed build): the cumulative sum and the division hold.
    half = export_onnx(net, tmp_path / "median16.onnx", fp16=True, sample_shape=(1, 1, 64, 64))
    par = onnx_parity(net, half, "fp16", parity_inputs(shape=(64, 96)))
    assert par.ok, par
    import onnx

    kept = set(fp32_nodes(path))
    head = [n for n in onnx.load(str(path)).graph.node if n.op_type in ("CumSum", "ReduceSum", "Softmax")]
    assert head and all(n.name in kept for n in head)  # int8 leaves the median's arithmetic in fp32


def test_a_model_config_names_its_estimator():
    assert ModelConfig.from_dict({"ab_bins": 5}).estimator == "mean"  # files from before it existed
    assert ModelConfig.from_dict({"ab_bins": 5, "estimator": "median"}).estimator == "median"
    with pytest.raises(ValueError, match="estimator 'mode'.*'mean', 'median'"):
        ModelConfig.from_dict({"ab_bins": 5, "estimator": "mode"})
