"""Speed peers: the network of OpenCV's colorization sample (Zhang et al., ECCV 2016).

Built here with random weights (its trained weights cannot be fetched on an offline machine), so
it is timed for speed only, never for quality. The layer list follows the sample's
``colorization_deploy_v2.prototxt``: 8 VGG-style blocks (blocks 5 and 6 dilated), a deconvolution,
313 color-bin logits and a 1x1 conv to ab at a quarter of the input size; 83.6 GFLOP at 256x256.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

ZHANG_SIZE = 256  # the OpenCV sample feeds 224; the peer comparison runs at 256x256 (83.6 GFLOP)


def _block(cin: int, cout: int, n: int, stride_last: int = 1, dilation: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i in range(n):
        stride = stride_last if i == n - 1 else 1
        layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride, padding=dilation, dilation=dilation), nn.ReLU()]
    return layers + [nn.BatchNorm2d(cout)]


class ZhangNet(nn.Module):
    """Zhang et al. colorization network (deploy version), L (N, 1, 256, 256) -> ab (N, 2, 64, 64)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            *_block(1, 64, 2, stride_last=2),
            *_block(64, 128, 2, stride_last=2),
            *_block(128, 256, 3, stride_last=2),
            *_block(256, 512, 3),
            *_block(512, 512, 3, dilation=2),
            *_block(512, 512, 3, dilation=2),
            *_block(512, 512, 3),
            nn.ConvTranspose2d(512, 256, 4, 2, 1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 313, 1),
        )
        self.to_ab = nn.Conv2d(313, 2, 1, bias=False)

    def forward(self, lum: torch.Tensor) -> torch.Tensor:
        return self.to_ab(torch.softmax(self.body(lum - 50.0) * 2.606, dim=1))


def export_zhang(path: str | Path, seed: int = 0) -> Path:
    """Random-weight ZhangNet -> ONNX at 1x1x256x256 (fixed shape, as the OpenCV sample uses it)."""
    torch.manual_seed(seed)
    net = ZhangNet().eval()
    path = Path(path)
    with torch.inference_mode():
        torch.onnx.export(
            net, torch.rand(1, 1, ZHANG_SIZE, ZHANG_SIZE) * 100, str(path), opset_version=13, dynamo=False
        )
    return path


class ZhangOpenCV:
    """The network in OpenCV DNN on the CPU, as the OpenCV sample runs it."""

    name = "zhang-opencv-dnn"

    def __init__(self, onnx_path: str | Path):
        import cv2

        self.net = cv2.dnn.readNetFromONNX(str(onnx_path))
        self.net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self.net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)

    def __call__(self, lum: np.ndarray) -> np.ndarray:
        self.net.setInput(lum.reshape(1, 1, ZHANG_SIZE, ZHANG_SIZE).astype(np.float32))
        return self.net.forward()[0]


class ZhangOrt:
    """The same ONNX graph in ONNX Runtime on the CPU."""

    name = "zhang-onnxruntime"

    def __init__(self, onnx_path: str | Path):
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, lum: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: lum.reshape(1, 1, ZHANG_SIZE, ZHANG_SIZE).astype(np.float32)})[0][0]


def zhang_colorize(net, rgb: np.ndarray) -> np.ndarray:
    """The OpenCV sample's per-frame recipe: Lab L at 256x256 -> ab at 64x64 -> resized -> Lab->RGB."""
    import cv2

    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    small = cv2.resize(lab[..., 0], (ZHANG_SIZE, ZHANG_SIZE), interpolation=cv2.INTER_AREA)
    ab = net(small).transpose(1, 2, 0)
    ab = cv2.resize(ab, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    out = cv2.cvtColor(np.concatenate([lab[..., :1], ab], axis=2), cv2.COLOR_Lab2RGB)
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)
