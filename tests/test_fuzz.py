"""Fuzzing what users hand us (hypothesis, bounded): hints files, cameras files, checkpoint headers,
ONNX metadata, reference pictures and colored frames. Each gives a correct result or one
RtcolorError line; never another exception, a hang or a half-written output. All of it together
runs in well under a minute (few examples each, no deadline: the machine is shared)."""

from __future__ import annotations

import json
import math
import struct
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from realtime_color.errors import RtcolorError

BOUNDED = {"deadline": None, "suppress_health_check": list(HealthCheck), "derandomize": True, "database": None}
FAST = settings(max_examples=80, **BOUNDED)
SLOW = settings(max_examples=25, **BOUNDED)

json_leaf = st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=12)
json_any = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)  # noqa: E501


def one_line(e: BaseException) -> None:
    assert isinstance(e, RtcolorError), f"{type(e).__name__}: {e}"
    text = str(e)
    assert text and "\n" not in text.strip() and "Traceback" not in text, text


# hints ---------------------------------------------------------------------------------------------
number = st.integers(-5, 10**12) | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.text(max_size=4)
hint_entry = st.fixed_dictionaries(
    {},
    optional={
        "x": number | st.floats(0, 1),
        "y": number | st.floats(0, 1),
        "color": st.from_regex(r"\A#[0-9a-fA-F]{6}\Z") | st.text(max_size=9) | number,
        "size": number | st.integers(1, 64),
        "frame": number | st.none() | st.integers(0, 100),
        "time": number | st.none() | st.floats(0, 100),
        "extra": json_leaf,
    },
)
hints_doc = st.fixed_dictionaries(
    {"hints": st.lists(hint_entry, max_size=5) | json_any}, optional={"version": json_any}
)


@FAST
@given(doc=hints_doc | json_any)
def test_fuzz_hints_documents(doc):
    from realtime_color.guidance.hints import dump_hints, parse_hints, rasterize

    try:
        text = json.dumps(doc)
    except ValueError:
        return
    try:
        hs = parse_hints(text, "h.json")
    except RtcolorError as e:
        one_line(e)
        return
    for h in hs.hints:  # what was accepted is within its rules
        assert 0 <= h.x <= 1 and 0 <= h.y <= 1 and 1 <= h.size <= 64 and len(h.color) == 7
        assert h.time is None or math.isfinite(h.time)
    assert parse_hints(dump_hints(hs), "again").hints == hs.hints  # and survives a round trip
    for shape in ((1, 1), (3, 200), (64, 48)):
        rasterize(hs.frameless() or hs.hints, *shape)


@FAST
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_hints_bytes(data, tmp_path_factory):
    from realtime_color.guidance.hints import load_hints

    path = tmp_path_factory.mktemp("h") / "h.json"
    path.write_bytes(data)
    try:
        load_hints(path)
    except RtcolorError as e:
        one_line(e)


def test_deeply_nested_hints_are_refused_plainly(tmp_path):
    from realtime_color.guidance.hints import load_hints

    path = tmp_path / "deep.json"
    path.write_text('{"hints": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(RtcolorError) as e:
        load_hints(path)
    one_line(e.value)


# cameras files -------------------------------------------------------------------------------------
def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return json.dumps(v) if not (isinstance(v, float) and not math.isfinite(v)) else ("nan" if v != v else "inf")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return '"?"'


camera_value = (
    st.integers(-3, 10**6)
    | st.text(max_size=10)
    | st.booleans()
    | st.floats()
    | st.lists(st.text(max_size=6) | st.integers(), max_size=3)
)  # noqa: E501
camera_key = st.sampled_from(["name", "source", "reference", "keyframe_interval", "junk"])
camera = st.dictionaries(camera_key, camera_value, max_size=5)


@FAST
@given(cams=st.lists(camera, max_size=4), raw=st.text(max_size=60), use_raw=st.booleans())
def test_fuzz_cameras_files(cams, raw, use_raw, tmp_path_factory):
    from realtime_color.video.cameras import load_cameras, name_cameras

    if use_raw:
        text = raw
    else:
        text = "\n".join("[[camera]]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in c.items()) for c in cams)
    path = tmp_path_factory.mktemp("c") / "cams.toml"
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        specs = name_cameras(load_cameras(path))
    except RtcolorError as e:
        one_line(e)
        return
    names = [s.name for s in specs]
    assert len(set(names)) == len(names) and all(names)
    for s in specs:
        assert isinstance(s.source, str) and all(isinstance(r, str) for r in s.reference)
        assert s.keyframe_interval is None or s.keyframe_interval >= 1


# checkpoint headers --------------------------------------------------------------------------------
meta_values = st.fixed_dictionaries(
    {"format": st.just(1) | json_leaf},
    optional={
        "inference_size": json_leaf | st.integers(16, 1024),
        "chroma_gain": json_leaf | st.floats(0.5, 2.0),
        "sha256": json_leaf,
        "config": json_any,
    },
)


def write_header(path: Path, header: bytes, declared: int | None = None, tail: bytes = b"") -> None:
    n = len(header) if declared is None else declared
    path.write_bytes(struct.pack("<Q", n % (1 << 64)) + header + tail)


@FAST
@given(
    meta=meta_values | json_any,
    wrap=st.sampled_from(["ok", "string-meta", "not-json", "no-meta", "raw"]),
    declared=st.none() | st.integers(0, 1 << 64),
    junk=st.binary(max_size=40),
)
def test_fuzz_checkpoint_headers(meta, wrap, declared, junk, tmp_path_factory):
    from realtime_color.model.checkpoint import ModelFile, read_metadata

    path = tmp_path_factory.mktemp("m") / "m.safetensors"
    try:
        inner = json.dumps(meta)
    except ValueError:
        inner = "{}"
    header = {
        "ok": {"__metadata__": {"rtcolor": inner}},
        "string-meta": {"__metadata__": inner},
        "not-json": None,
        "no-meta": {"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}},
        "raw": None,
    }[wrap]
    body = junk if header is None else json.dumps(header).encode()
    write_header(path, body, declared if wrap == "raw" else None, tail=junk)
    try:
        doc = read_metadata(path)
        model = ModelFile.open(path)
    except RtcolorError as e:
        one_line(e)
        return
    assert isinstance(doc, dict)
    from realtime_color.runtime.colorizer import check_size

    check_size(model.inference_size)  # what was accepted is usable
    assert math.isfinite(model.chroma_gain) and model.chroma_gain > 0


# ONNX metadata -------------------------------------------------------------------------------------
props_keys = st.sampled_from(
    ["rtcolor.format", "rtcolor.source_sha256", "rtcolor.precision", "rtcolor.inference_size",
     "rtcolor.chroma_gain", "rtcolor.normalization", "rtcolor.model_config", "rtcolor.source_file", "other"]
)  # fmt: skip
props_values = st.text(max_size=12) | json_any.map(json.dumps) | st.integers().map(str) | st.floats().map(str)


ours = st.fixed_dictionaries(
    {"rtcolor.format": props_values | st.just("1"), "rtcolor.source_sha256": props_values},
    optional={k: props_values for k in ("rtcolor.precision", "rtcolor.inference_size", "rtcolor.chroma_gain",
                                         "rtcolor.normalization", "rtcolor.model_config", "rtcolor.source_file")},
)  # fmt: skip


@FAST
@given(props=st.dictionaries(props_keys, props_values, max_size=9) | ours)
def test_fuzz_onnx_metadata(props):
    from realtime_color.runtime.onnx_meta import ExportInfo

    info = ExportInfo.from_props(props)
    if info is None:
        return
    assert isinstance(info.normalization, dict) and isinstance(info.model_config, dict)
    assert isinstance(info.source_sha256, str) and 16 <= info.inference_size <= 4096
    assert math.isfinite(info.chroma_gain) and info.chroma_gain > 0
    assert "\n" not in info.describe()


# reference pictures and colored frames -------------------------------------------------------------
picture = st.tuples(
    st.integers(1, 40), st.integers(1, 40), st.sampled_from([0, 1, 3, 4]), st.sampled_from([np.uint8, np.uint16]),
    st.sampled_from([".png", ".jpg", ".tif", ".webp", ".bmp"]), st.integers(0, 2**31 - 1),
)  # fmt: skip


def write_picture(path: Path, spec) -> Path:
    h, w, ch, dtype, _, seed = spec
    rng = np.random.default_rng(seed)
    hi = 255 if dtype == np.uint8 else 65535
    img = rng.integers(0, hi + 1, (h, w) if ch in (0, 1) else (h, w, ch)).astype(dtype)
    if path.suffix in (".jpg", ".webp", ".bmp") and dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if not cv2.imwrite(str(path), img):
        path.write_bytes(rng.bytes(64))
    return path


@SLOW
@given(
    spec=picture,
    corrupt=st.sampled_from([None, "truncate", "garbage", "empty"]),
    view=st.tuples(st.integers(8, 96), st.integers(8, 96)),
)  # noqa: E501
def test_fuzz_reference_pictures(spec, corrupt, view):
    from realtime_color.guidance.reference import Reference, fit_references

    with tempfile.TemporaryDirectory() as d:
        path = write_picture(Path(d) / f"ref{spec[4]}", spec)
        data = path.read_bytes()
        if corrupt == "truncate":
            path.write_bytes(data[: len(data) // 2])
        elif corrupt == "garbage":
            path.write_bytes(data[:8] + bytes(reversed(data[8:])))
        elif corrupt == "empty":
            path.write_bytes(b"")
        try:
            ref = Reference(path)
            lum = np.random.default_rng(1).uniform(0, 100, view).astype(np.float32)
            shape = (max(1, view[0] // 16 * 8), max(1, view[1] // 16 * 8))
            fit_references([ref], shape, lambda: lum)
        except RtcolorError as e:
            one_line(e)
            return
        assert ref.fitted(shape)
        w = ref.weights(cv2.resize(lum, (shape[1] * 2, shape[0] * 2)), shape)
        assert np.all(np.isfinite(w))


@FAST
@given(names=st.lists(st.text(alphabet="0123456789.s-_ aéx+e", min_size=1, max_size=10), max_size=5),
       suffix=st.sampled_from([".png", ".jpg", ".txt", ".PNG"]))  # fmt: skip
def test_fuzz_colored_frame_names(names, suffix, tmp_path_factory):
    from realtime_color.guidance.colored_frames import parse_names

    folder = tmp_path_factory.mktemp("cf")
    for n in names:
        try:
            (folder / f"{n}{suffix}").write_bytes(b"")
        except OSError:
            pass
    try:
        found = parse_names(folder)
    except RtcolorError as e:
        one_line(e)
        return
    for _, index, seconds in found:
        assert (index is None) != (seconds is None)
        assert index is None or index >= 0
        assert seconds is None or (math.isfinite(seconds) and seconds >= 0)
