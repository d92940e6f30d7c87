"""ColorizerNet: output shapes at several sizes, no NaNs, and the ImageNet first-conv fold."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchvision.models import vgg16

from realtime_color.backbones import BackboneError, init_backbone
from realtime_color.model import ARCHS, ColorizerNet, ModelConfig, build_model, count_parameters


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
    from realtime_color.weights import load_checkpoint, save_checkpoint

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
    # Zero padding differs at the border (VGG pads the normalised image); the interior must agree.
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
