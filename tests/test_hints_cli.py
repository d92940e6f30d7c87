"""--hints and --saturation through the commands: every bad hints file is one line naming the file,
the entry and the field, a non-zero exit and nothing written, on image, colorize and stream; good
hints reach the network (a stand-in colorizer records them until the hint-taking model is in)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.guidance.hints import MAX_FILE_BYTES
from realtime_color.media.images import read_image
from realtime_color.media.synth import write_clip
from realtime_color.runtime.backends.base import BackendBase

runner = CliRunner()
GOOD = {"x": 0.25, "y": 0.5, "color": "#3b6fb0"}


def text(r) -> str:
    return " ".join(r.output.split())  # rich wraps long lines


def entries(second: dict | str) -> str:
    """A hints document whose second entry is ``second`` (a dict, or raw JSON text)."""
    raw = second if isinstance(second, str) else json.dumps(second)
    return '{"hints": [' + json.dumps(GOOD) + ", " + raw + "]}"


# name: (file content, or None for a folder / a missing file; what the one line must say)
BAD = {
    "not_json": ("hints: [x = 0.4]", ["not JSON"]),
    "truncated": ('{"hints": [{"x": 0.25, "y": 0.5, "col', ["not JSON"]),
    "empty": ("", ["empty"]),
    "huge": ('{"hints": []}' + " " * MAX_FILE_BYTES, ["too large"]),
    "x_outside": (entries({**GOOD, "x": 1.5}), ["hint 1", "x 1.5", "between 0 and 1"]),
    "y_negative": (entries({**GOOD, "y": -0.1}), ["hint 1", "y -0.1", "between 0 and 1"]),
    "nan": (entries('{"x": 0.5, "y": NaN, "color": "#3b6fb0"}'), ["hint 1", "y nan"]),
    "text_number": (entries({**GOOD, "x": "0.4"}), ["hint 1", "x '0.4' is not a number"]),
    "named_color": (entries({**GOOD, "color": "red"}), ["hint 1", "color 'red'", "sRGB hex color"]),
    "short_hex": (entries({**GOOD, "color": "#3b6fb"}), ["hint 1", "color '#3b6fb'"]),
    "typo_key": (entries({"x": 0.5, "y": 0.5, "colour": "#3b6fb0"}), ["hint 1", "unknown field 'colour'"]),
    "missing": (None, ["no such hints file"]),
}


def bad_file(tmp_path, case: str):
    content, words = BAD[case]
    path = tmp_path / "hints.json"
    if content is not None:
        path.write_text(content)
    return path, words


def assert_refused(r, path, words, code: int = 2) -> None:
    assert r.exit_code == code, r.output
    t = text(r)
    assert r.output.count("error:") == 1 and "Traceback" not in r.output, r.output
    assert str(path) in t and all(w in t for w in words), t


@pytest.fixture(scope="session")
def hint_checkpoint(tmp_path_factory) -> str:
    """A small hint-capable network whose hint branch has nonzero weights (as if trained): hints
    change its output, though it has not learned to follow them."""
    import torch

    from realtime_color.model.network import ModelConfig, build_model
    from realtime_color.model.weights import save_checkpoint

    torch.manual_seed(0)
    model = build_model(ModelConfig(hint_channels=3)).eval()
    for weight in model.hints.parameters():  # the branch's zero-initialized layers, whatever its layout
        if not weight.detach().any():
            torch.nn.init.normal_(weight, std=0.5)
    path = tmp_path_factory.mktemp("hint_ckpt") / "hinted.safetensors"
    save_checkpoint(model, path, {"inference_size": 64})
    return str(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("hints_clip")
    return write_clip(d / "clip.mp4", seconds=1.0, width=160, height=96, audio=False, gray=True)  # 30 frames


@pytest.mark.parametrize("case", sorted(BAD))
def test_image_refuses_a_bad_hints_file(case, image_dir, tmp_path, random_checkpoint):
    path, words = bad_file(tmp_path, case)
    out = tmp_path / "out"
    r = runner.invoke(
        app, ["image", str(image_dir), "-o", str(out), "--hints", str(path), "--model", random_checkpoint]
    )
    assert_refused(r, path, words)
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(BAD))
def test_colorize_refuses_a_bad_hints_file(case, clip, tmp_path, random_checkpoint):
    path, words = bad_file(tmp_path, case)
    dest = tmp_path / "out" / "o.mp4"
    r = runner.invoke(app, ["colorize", str(clip), "-o", str(dest), "--hints", str(path), "--model", random_checkpoint])
    assert_refused(r, path, words)
    assert not dest.parent.exists()


@pytest.mark.parametrize("case", sorted(BAD))
def test_stream_refuses_a_bad_hints_file(case, clip, tmp_path, random_checkpoint):
    path, words = bad_file(tmp_path, case)
    rec = tmp_path / "rec.mp4"
    r = runner.invoke(
        app, ["stream", str(clip), "--out", str(rec), "--no-pace", "--hints", str(path), "--model", random_checkpoint]
    )
    assert_refused(r, path, words)
    assert not rec.exists()


def test_a_folder_is_not_a_hints_file_for_video(clip, tmp_path):
    folder = tmp_path / "hints"
    folder.mkdir()
    for cmd in (["colorize", str(clip), "-o", str(tmp_path / "o.mp4")], ["stream", str(clip), "--out", "x.mp4"]):
        r = runner.invoke(app, [*cmd, "--hints", str(folder)])
        assert_refused(r, folder, ["is a folder"])
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.parametrize("entry,words", [({"frame": 30}, "frame 30 is past the end"), ({"time": 9.0}, "time 9 s")])
def test_colorize_refuses_a_hint_past_the_end_before_writing(entry, words, clip, tmp_path, hint_checkpoint):
    path = tmp_path / "h.json"
    path.write_text(entries({**GOOD, **entry}))
    dest = tmp_path / "out" / "o.mp4"
    r = runner.invoke(
        app,
        [
            "colorize",
            str(clip),
            "-o",
            str(dest),
            "--hints",
            str(path),
            "--model",
            hint_checkpoint,
            "--backend",
            "torch",
        ],
    )
    assert_refused(r, path, ["hint 1", words, "30 frames" if "frame" in entry else "1.000 s"])
    assert not dest.parent.exists()


def test_frame_hints_are_refused_where_there_are_no_frames(clip, image_dir, tmp_path):
    path = tmp_path / "h.json"
    path.write_text(entries({**GOOD, "frame": 3}))
    r = runner.invoke(app, ["stream", str(clip), "--out", str(tmp_path / "rec.mp4"), "--hints", str(path)])
    assert_refused(r, path, ["hint 1", "frame 3", "frame-less hints only"])
    r = runner.invoke(app, ["image", str(image_dir), "-o", str(tmp_path / "o"), "--hints", str(path)])
    assert_refused(r, path, ["hint 1", "frame 3", "a picture has one frame"])
    other = tmp_path / "other.mp4"
    other.write_bytes(clip.read_bytes())
    r = runner.invoke(app, ["colorize", str(clip), str(other), "-o", str(tmp_path / "o/"), "--hints", str(path)])
    assert r.exit_code == 2 and "belong to one video" in text(r)
    assert not (tmp_path / "rec.mp4").exists() and not (tmp_path / "o").exists()


def test_a_bad_file_in_a_hints_folder_refuses_the_whole_run(image_dir, tmp_path):
    folder = tmp_path / "hints"
    folder.mkdir()
    (folder / "photo0.json").write_text(json.dumps({"hints": [GOOD]}))
    (folder / "photo2.json").write_text(entries({**GOOD, "color": "#12"}))
    out = tmp_path / "out"
    r = runner.invoke(app, ["image", str(image_dir), "-o", str(out), "--hints", str(folder)])
    assert_refused(r, folder / "photo2.json", ["hint 1", "color '#12'"])
    assert not out.exists()


@pytest.mark.parametrize("value", ["2.5", "-0.1", "nan"])
def test_saturation_outside_0_to_2_is_refused(value, image_dir, clip, tmp_path):
    for cmd in (
        ["image", str(image_dir), "-o", str(tmp_path / "o")],
        ["colorize", str(clip), "-o", str(tmp_path / "o.mp4")],
        ["stream", str(clip), "--out", str(tmp_path / "rec.mp4")],
        ["eval", str(image_dir)],
    ):
        r = runner.invoke(app, [*cmd, "--saturation", value])
        assert r.exit_code == 2 and f"--saturation {float(value):g} must be between 0" in text(r), (cmd, r.output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # only the pictures


def test_saturation_zero_is_gray_and_two_is_more_colorful(image_dir, tmp_path, random_checkpoint):
    spread = {}
    for s in ("0", "1", "2"):
        out = tmp_path / s
        r = runner.invoke(
            app,
            ["image", str(image_dir / "photo0.png"), "-o", str(out), "--saturation", s]
            + ["--model", random_checkpoint, "--backend", "torch"],
        )
        assert r.exit_code == 0, r.output
        img = read_image(out / "photo0.png").astype(np.int32)
        spread[s] = float(np.mean(img.max(-1) - img.min(-1)))
    assert spread["0"] <= 1.0 and spread["1"] > 2.0 and spread["2"] > 1.5 * spread["1"]


class NoBackend(BackendBase):
    """The stand-in's backend: never called (the stand-in answers itself), only wrapped and closed."""

    name = "stand-in"
    takes_hints = True


@dataclass
class StandIn:
    """A colorizer that records the hints it is given (the commands' side of the contract)."""

    size: int = 128
    backend: object = field(default_factory=lambda: NoBackend())
    references: list = field(default_factory=list)
    seen: list = field(default_factory=list)

    def colorize(self, frame, hints=()):
        self.seen.append(tuple(hints))
        return np.repeat(frame[..., :1], 3, axis=-1) if frame.ndim == 3 else np.dstack([frame] * 3)

    def predict_small(self, lums, hints=None, source_hw=None):
        self.seen.extend(hints if hints is not None else [()] * len(lums))
        return [np.zeros((*lum.shape, 2), np.float32) for lum in lums]


@pytest.fixture()
def stand_in(monkeypatch):
    from realtime_color.model.checkpoint import MetaView

    monkeypatch.setattr(MetaView, "takes_hints", property(lambda self: True))  # whatever the default model
    import importlib

    one = StandIn()
    for name in ("stills", "video", "live", "cameras"):  # wherever a command builds its colorizer
        module = importlib.import_module(f"realtime_color.cli.{name}")
        if hasattr(module, "_colorizer"):
            monkeypatch.setattr(module, "_colorizer", lambda *a, **k: one)
    return one


def test_image_hints_folder_gives_each_picture_its_own(image_dir, tmp_path, stand_in):
    folder = tmp_path / "hints"
    folder.mkdir()
    (folder / "photo1.json").write_text(json.dumps({"hints": [GOOD, {**GOOD, "x": 0.75, "size": 5}]}))
    (folder / "other.json").write_text(json.dumps({"hints": []}))  # no such picture: a warning
    out = tmp_path / "out"
    r = runner.invoke(app, ["image", str(image_dir), "-o", str(out), "--hints", str(folder)])
    assert r.exit_code == 0, r.output
    assert "other.json" in text(r) and "no input picture" in text(r)
    assert [len(h) for h in stand_in.seen] == [0, 2, 0]  # photo0, photo1, photo2
    assert stand_in.seen[1][1].x == 0.75 and stand_in.seen[1][1].size == 5
    assert sorted(p.name for p in out.iterdir()) == ["photo0.png", "photo1.png", "photo2.png"]


def test_colorize_and_stream_hand_the_hints_to_the_network(clip, tmp_path, stand_in):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"hints": [GOOD, {**GOOD, "color": "#c03020", "frame": 20}]}))
    r = runner.invoke(app, ["colorize", str(clip), "-o", str(tmp_path / "o.mp4"), "-k", "1", "--hints", str(path)])
    assert r.exit_code == 0, r.output
    assert len(stand_in.seen) == 30 and all(len(h) == 2 for h in stand_in.seen)  # one shot: both hints throughout
    assert (tmp_path / "o.mp4").exists()
    stand_in.seen.clear()
    path.write_text(json.dumps({"hints": [GOOD]}))
    rec = tmp_path / "rec.mp4"
    r = runner.invoke(app, ["stream", str(clip), "--out", str(rec), "--no-pace", "-k", "1", "--hints", str(path)])
    assert r.exit_code == 0, r.output
    assert len(stand_in.seen) == 30 and all(h and h[0].color == "#3b6fb0" for h in stand_in.seen)
    assert rec.exists()


def test_a_model_without_hint_inputs_is_refused_before_writing(image_dir, clip, tmp_path, random_checkpoint):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"hints": [GOOD]}))
    for cmd in (
        ["image", str(image_dir), "-o", str(tmp_path / "o")],
        ["colorize", str(clip), "-o", str(tmp_path / "o.mp4")],
        ["stream", str(clip), "--out", str(tmp_path / "rec.mp4"), "--no-pace"],
    ):
        r = runner.invoke(app, [*cmd, "--hints", str(path), "--model", random_checkpoint])
        assert r.exit_code == 2 and "takes no hints" in text(r), r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.json", "in"]


def chroma(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)[..., 1:]


def test_image_hints_change_the_output_where_given(image_dir, tmp_path, hint_checkpoint):
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"hints": [{"x": 0.8, "y": 0.8, "color": "#d02020", "size": 9}]}))
    outs = {}
    for name, extra in (("plain", []), ("hinted", ["--hints", str(path)])):
        r = runner.invoke(
            app,
            ["image", str(image_dir / "photo0.png"), "-o", str(tmp_path / name), "--model", hint_checkpoint]
            + ["--backend", "torch", *extra],
        )
        assert r.exit_code == 0, r.output
        outs[name] = chroma(read_image(tmp_path / name / "photo0.png"))
    diff = np.linalg.norm(outs["hinted"] - outs["plain"], axis=-1)
    assert diff.max() > 1.0  # the hint reached the network and changed its colors


def test_colorize_frame_hints_change_only_their_shot(tmp_path, hint_checkpoint):
    import av

    clip = write_clip(tmp_path / "two.mp4", seconds=2.0, width=256, height=144, cut_at=1.0, audio=False, gray=True)
    path = tmp_path / "h.json"
    path.write_text(json.dumps({"hints": [{"x": 0.5, "y": 0.7, "color": "#d02020", "size": 9, "frame": 45}]}))
    runs = {}
    for name, extra in (("plain", []), ("hinted", ["--hints", str(path)])):
        dest = tmp_path / f"{name}.mp4"
        r = runner.invoke(
            app,
            ["colorize", str(clip), "-o", str(dest), "--model", hint_checkpoint, "--backend", "torch", "--crf", "0"]
            + extra,
        )
        assert r.exit_code == 0, r.output
        with av.open(str(dest)) as c:
            runs[name] = [chroma(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    diff = [float(np.abs(a - b).mean()) for a, b in zip(runs["plain"], runs["hinted"], strict=True)]
    assert max(diff[:30]) < 0.2  # the first shot: as without hints (up to the encoder)
    assert min(diff[30:]) > 4 * max(max(diff[:30]), 0.05)  # the hint's shot, every frame of it
