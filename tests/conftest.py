"""Shared fixtures: small synthetic pictures and a small random checkpoint made on the fly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from realtime_color.media.images import write_image
from realtime_color.model.network import ColorizerNet
from realtime_color.model.weights import save_checkpoint


def scene(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A color 'landscape': blue sky over green ground with a red object and some texture."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    img[: h // 2] = (90, 150, 230)
    img[h // 2 :] = (60, 150, 50)
    y, x = h // 2 - h // 8, w // 3
    img[y : y + h // 4, x : x + w // 5] = (200, 40, 30)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory) -> str:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "random.safetensors"
    save_checkpoint(ColorizerNet().eval(), path, {"inference_size": 64})
    return str(path)


@pytest.fixture()
def image_dir(tmp_path):
    d = tmp_path / "in"
    for i in range(3):
        write_image(d / f"photo{i}.png", scene(seed=i))
    return d
