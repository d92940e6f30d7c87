"""Colour maths: sRGB (D65) <-> CIE Lab in torch, and the network's normalisation.

The one place that knows the colour maths. Everything is batched (``(..., 3, H, W)``), runs on any
device and accepts fp32 or fp16; the arithmetic itself is done in fp32 because the sRGB transfer
curve and the Lab cube root lose several units of ab in fp16. Results come back in the input dtype.
The formulas and constants are scikit-image's (``rgb2lab``/``lab2rgb`` with illuminant D65, 2 deg).
"""

from __future__ import annotations

import torch

# sRGB primaries -> CIE XYZ (D65), as in scikit-image's ``xyz_from_rgb``.
_XYZ_FROM_RGB = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_RGB_FROM_XYZ = torch.linalg.inv(_XYZ_FROM_RGB)
_WHITE_D65 = (0.95047, 1.0, 1.08883)

# Network normalisation: the model sees L / L_SCALE in [0, 1] and predicts ab / AB_SCALE.
L_SCALE = 100.0
AB_SCALE = 110.0


def _matmul_channels(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Apply a 3x3 matrix over the channel axis (-3) of ``x``."""
    return torch.einsum("ij,...jhw->...ihw", m.to(device=x.device, dtype=x.dtype), x)


def srgb_to_linear(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded values in [0, 1] -> linear light."""
    return torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055).clamp_min(0) ** 2.4, rgb / 12.92)


def linear_to_srgb(lin: torch.Tensor) -> torch.Tensor:
    """Linear light -> sRGB-encoded values (not clipped)."""
    return torch.where(lin > 0.0031308, 1.055 * lin.clamp_min(0) ** (1 / 2.4) - 0.055, 12.92 * lin)


def _lab_f(t: torch.Tensor) -> torch.Tensor:
    """CIE Lab's companding function (cube root with a linear toe)."""
    return torch.where(t > 0.008856, t.clamp_min(1e-12) ** (1 / 3), 7.787 * t + 16 / 116)


def rgb_to_L(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB ``(..., 3, H, W)`` in [0, 1] -> Lab L ``(..., 1, H, W)``, without computing a and b."""
    y_row = _XYZ_FROM_RGB[1].float().to(rgb.device)
    y = torch.einsum("c,...chw->...hw", y_row, srgb_to_linear(rgb.float())).clamp(0, 1)
    return (116 * _lab_f(y) - 16).unsqueeze(-3).to(rgb.dtype)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], shape ``(..., 3, H, W)`` -> Lab (L in [0, 100], a/b roughly [-128, 127])."""
    dtype = rgb.dtype
    x = srgb_to_linear(rgb.float())
    xyz = _matmul_channels(_XYZ_FROM_RGB.float(), x)
    white = torch.tensor(_WHITE_D65, device=x.device).view(3, 1, 1)
    fx, fy, fz = _lab_f(xyz / white).unbind(-3)
    lum = 116 * fy - 16
    a = 500 * (fx - fy)
    b = 200 * (fy - fz)
    return torch.stack([lum, a, b], dim=-3).to(dtype)


def lab_to_rgb(lab: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """Lab ``(..., 3, H, W)`` -> sRGB in [0, 1] (clipped unless ``clip=False``)."""
    dtype = lab.dtype
    lum, a, b = lab.float().unbind(-3)
    fy = (lum + 16) / 116
    fx = fy + a / 500
    fz = (fy - b / 200).clamp_min(0)  # scikit-image clamps negative z the same way
    f = torch.stack([fx, fy, fz], dim=-3)
    t = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / 7.787)
    white = torch.tensor(_WHITE_D65, device=lab.device).view(3, 1, 1)
    lin = _matmul_channels(_RGB_FROM_XYZ.float(), t * white)
    rgb = linear_to_srgb(lin)
    if clip:
        rgb = rgb.clamp(0, 1)
    return rgb.to(dtype)


def luminance_to_L(gray: torch.Tensor) -> torch.Tensor:
    """Gray sRGB values in [0, 1] (any shape) -> Lab L, as ``rgb_to_lab`` gives for R=G=B."""
    return (116 * _lab_f(srgb_to_linear(gray.float())) - 16).to(gray.dtype)


def normalize_L(lum: torch.Tensor) -> torch.Tensor:
    """Lab L -> network input."""
    return lum / L_SCALE


def denormalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Network output -> Lab a, b."""
    return ab * AB_SCALE


def normalize_ab(ab: torch.Tensor) -> torch.Tensor:
    """Lab a, b -> network target."""
    return ab / AB_SCALE
