"""Stills are read upright as their EXIF orientation says, in every format that carries it, and the
tag is applied exactly once (OpenCV's TIFF decoder applies it itself; JPEG, PNG and WebP do not)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.media.images import read_image

runner = CliRunner()


def stored_picture() -> np.ndarray:
    img = np.full((48, 72, 3), 40, np.uint8)
    img[:16, :24] = (250, 30, 30)  # a red block at the stored top left
    img[-16:, -24:] = (30, 30, 250)  # a blue one at the stored bottom right
    img[:16, -24:] = (30, 250, 30)  # a green one at the stored top right: tells every flip apart
    return img


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("TIFF", "tif")])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_in_every_format(tmp_path, fmt, ext, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.{ext}"
    extra = {"quality": 98} if fmt == "JPEG" else {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(stored_picture()).save(path, format=fmt, exif=exif.tobytes(), **extra)
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))  # what a viewer shows
    got = read_image(path)
    assert got.shape == want.shape, (fmt, orientation)
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 4, (fmt, orientation)


def test_a_sideways_phone_photo_comes_out_upright_at_its_displayed_size(tmp_path, random_checkpoint):
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90": stored 320x240, shown 240x320
    stored = np.zeros((240, 320, 3), np.uint8)
    stored[:, :160] = 200
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=90)
    for out in ("out.png", "out.jpg", "out.tif"):
        r = runner.invoke(app, ["image", str(path), "-o", str(tmp_path / out), "--model", random_checkpoint])
        assert r.exit_code == 0, r.output
        with Image.open(tmp_path / out) as im:
            assert im.size == (240, 320) and im.getexif().get(0x0112, 1) == 1, out  # upright, no tag to apply again
        assert read_image(tmp_path / out).shape[:2] == (320, 240)
    assert "EXIF orientation" in " ".join(runner.invoke(app, ["image", "--help"]).output.split())
