"""tools/qt_rcc.py reads Qt resource files; tools/fetch_everyday.py's photograph rule and split."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

TOOLS = Path(__file__).parents[1] / "tools"


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def rcc():
    return load("qt_rcc")


@pytest.fixture(scope="module")
def everyday():
    return load("fetch_everyday")


FILES = {
    "gcompris/src/activities/erase/resource/cat.webp": b"\x00cat bytes\xff" * 40,
    "gcompris/src/activities/erase/resource/dog.jpg": b"dog",
    "gcompris/src/core/readme": "résumé ünïcode".encode(),
    "top.txt": b"",
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_reads_back_every_file_plain_and_zlib(rcc, version):
    compressed = {"gcompris/src/activities/erase/resource/cat.webp", "gcompris/src/core/readme"}
    blob = rcc.build_rcc(FILES, version=version, compress=compressed)
    parsed = rcc.RccFile(blob)
    assert parsed.version == version
    assert dict(parsed.files()) == FILES
    flags = {path: f for path, f, _ in parsed.entries()}
    assert {p for p, f in flags.items() if f & rcc.COMPRESSED} == compressed
    # the zlib'ed payload really is smaller than the repetitive original
    assert len(blob) < sum(len(v) for v in FILES.values()) + 400


def test_zstd_flag_is_decoded(rcc):
    pytest.importorskip("zstandard")
    files = {"a/b.png": b"zstd payload" * 20, "a/c.png": b"plain"}
    parsed = rcc.RccFile(rcc.build_rcc(files, zstd={"a/b.png"}))
    assert dict(parsed.files()) == files
    assert {p for p, f, _ in parsed.entries() if f & rcc.COMPRESSED_ZSTD} == {"a/b.png"}


def test_refuses_what_is_not_an_rcc(rcc):
    with pytest.raises(rcc.RccError, match="qres"):
        rcc.RccFile(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(rcc.RccError, match="version 9"):
        rcc.RccFile(b"qres" + struct.pack(">4I", 9, 20, 20, 20))


def test_photograph_rule(everyday):
    rng = np.random.default_rng(0)
    # a photo-like picture: smooth colored gradients plus sensor noise
    y, x = np.mgrid[0:240, 0:320]
    photo = np.stack([x * 0.6, y * 0.8, 128 + 0 * x], -1) + rng.normal(0, 8, (240, 320, 3))
    photo = Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8))
    assert everyday.photo_verdict(everyday.picture_stats(photo)) == ""
    # a drawing: three flat fills
    drawing = np.zeros((240, 320, 3), np.uint8)
    drawing[:, :100] = (200, 30, 30)
    drawing[:, 100:200] = (30, 200, 30)
    assert everyday.photo_verdict(everyday.picture_stats(Image.fromarray(drawing))).startswith("colors")
    # a cut-out: the photo with a transparent half
    cut = photo.convert("RGBA")
    alpha = np.full((240, 320), 255, np.uint8)
    alpha[:, :160] = 0
    cut.putalpha(Image.fromarray(alpha))
    assert everyday.photo_verdict(everyday.picture_stats(cut)).startswith("transparent")
    # a gray picture stored as color (few colors at 5 bits, and no chroma)
    stats = everyday.picture_stats(photo.convert("L").convert("RGB"))
    assert stats["chroma"] < everyday.MIN_CHROMA and everyday.photo_verdict(stats) != ""


def test_split_and_names(everyday):
    # the same subject lands on the same side whatever the activity's spelling of it
    assert everyday.is_val("TajMahal_background") == everyday.is_val("tajMahal")
    stems = [f"pic{i}" for i in range(1000)]
    share = sum(everyday.is_val(s) for s in stems) / len(stems)
    assert 0.15 < share < 0.25
    inner = "gcompris/src/activities/categorization/resource/images/fishes/fish1.webp"
    name = everyday.out_name("gcompris-qt-data", inner)
    assert name == "gcompris-categorization-fishes-fish1.jpg"
    assert everyday.activity("gcompris-qt-data", "gcompris/src/activities/erase/resource/cat.webp") == "erase"


def test_licence_follows_the_last_matching_paragraph(everyday):
    text = (
        "Files: *\nCopyright: x\nLicense: GPL-3+\n\n"
        "Files: src/activities/erase/resource/*\n  src/other/a.png\nCopyright: y\nLicense: CC-BY-SA-3.0\n\n"
        "License: CC-BY-SA-3.0\n text of it\n"
    )
    stanzas = everyday.copyright_stanzas(text)
    assert everyday.licence_of(stanzas, "gcompris/src/activities/erase/resource/cat.webp") == "CC-BY-SA-3.0"
    assert everyday.licence_of(stanzas, "gcompris/src/other/a.webp") == "CC-BY-SA-3.0"  # .png named, .webp shipped
    assert everyday.licence_of(stanzas, "gcompris/src/core/x.webp") == "GPL-3+ (the catch-all Files: *)"
