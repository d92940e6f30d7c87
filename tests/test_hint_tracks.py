"""Hints in video (guidance/hint_tracks.py): a frame hint stays inside its shot and follows its
point there; a frame-less hint is gated off where something passes in front of it; the pipeline
hands each keyframe its hints (a stand-in colorizer records what reaches the network)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import av
import numpy as np
import pytest

from realtime_color.guidance.hint_tracks import FixedHints, ShotTracker, scan_hints
from realtime_color.guidance.hints import Hint, HintsError, parse_hints
from realtime_color.media.synth import SceneClip, write_clip
from realtime_color.runtime.colorizer import inference_shape, luma_to_small_L
from realtime_color.video.stages import PipelineConfig, colorize_file
from realtime_color.video.temporal import TemporalConfig

W, H, FPS = 320, 180, 30
PAN = 30.0  # pixels per second: every point of the scene moves left by this much


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """A gray panning clip of two shots: frames 0-29, then a cut to another scene at 1 s."""
    d = tmp_path_factory.mktemp("shots")
    return write_clip(d / "two.mp4", seconds=2.0, width=W, height=H, cut_at=1.0, pan=PAN, audio=False, gray=True)


@pytest.fixture(scope="module")
def fixed_camera(tmp_path_factory):
    """A fixed camera, two objects crossing; the blue one (seed 9) passes over x = 0.95 in the middle."""
    d = tmp_path_factory.mktemp("fixed")
    path = write_clip(d / "fixed.mp4", seconds=3.0, width=W, height=H, objects=2, audio=False, gray=True, seed=9)
    return path, SceneClip(H, W, FPS, None, 9, 0.0, None, 2).objects[1]


def small_frames(path, size=256):
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            y = f.to_ndarray(format="gray")
            yield luma_to_small_L(y, f.color_range == 2, inference_shape(*y.shape, size))


def test_a_frame_hint_stays_inside_its_shot_and_follows_its_point(two_shots):
    doc = """{"hints": [
      {"x": 0.5, "y": 0.3, "color": "#c03020", "frame": 45},
      {"x": 0.2, "y": 0.2, "color": "#2050c0", "time": 0.5}
    ]}"""
    vh, shots = scan_hints(parse_hints(doc, "h.json"), two_shots, 256, TemporalConfig(), "h.json")
    assert shots.cuts == [0, 30]
    red = {i: vh.tracks.at(i) for i in range(60)}
    # the frame-45 hint: on every frame of the second shot (forwards and backwards), on none of the first
    assert all(len(red[i]) == 1 and red[i][0].color == "#c03020" for i in range(30, 60))
    assert all(h.color != "#c03020" for i in range(30) for h in red[i])
    # the 0.5 s hint (frame 15): the first shot only
    assert all(len(red[i]) == 1 and red[i][0].color == "#2050c0" for i in range(30))
    # the camera pans left: the point was further right before its frame, further left after
    at = {i: red[i][0].x for i in (30, 45, 59)}
    assert at[45] == pytest.approx(0.5, abs=1e-3)
    step = PAN / FPS / W  # fraction of the width per frame
    assert at[30] == pytest.approx(0.5 + 15 * step, abs=0.01)
    assert at[59] == pytest.approx(0.5 - 14 * step, abs=0.01)
    assert red[15][0].x == pytest.approx(0.2, abs=1e-3) and red[0][0].x == pytest.approx(0.2 + 15 * step, abs=0.01)


def test_a_hint_on_a_moving_object_stays_on_it(fixed_camera):
    """A hint on the blue object (flat, so the tracker sees only its edges): wherever the hint is
    carried, it is on the object; it is carried over many frames, and dropped once the object leaves."""
    path, (size, row, speed, phase, _) = fixed_camera

    def center(i: int) -> float:
        return (phase + speed * i / FPS) % 1.2 - 0.1

    doc = json.dumps({"hints": [{"x": round(center(45), 4), "y": round(row, 4), "color": "#2040d0", "frame": 45}]})
    vh, _ = scan_hints(parse_hints(doc, "h.json"), path, 256, TemporalConfig(), "h.json")
    carried = {i: vh.tracks.at(i)[0].x for i in range(90) if vh.tracks.at(i)}
    assert len(carried) >= 20
    assert all(abs(x - center(i)) < size for i, x in carried.items()), carried
    assert all(center(i) - size < 1.0 for i in carried)  # not after the object has left the picture


def test_a_point_that_is_lost_is_let_go():
    """A hint on a frame whose content then vanishes (a flat frame) is not carried onto it."""
    rng = np.random.default_rng(0)
    tex = (rng.random((72, 128)) * 80 + 10).astype(np.float32)
    tracker = ShotTracker((Hint(0.5, 0.5, "#ff0000", frame=0),))
    tracker(0, 0.0, tex, True)
    tracker(1, 1 / 30, tex, False)
    tracker(2, 2 / 30, np.full_like(tex, 50.0), False)  # the same shot to the detector, another look
    tracker.finish("h.json")
    assert [len(tracker.at(i)) for i in range(3)] == [1, 1, 0]


def test_hints_past_the_end_are_refused_with_their_place_in_the_file(two_shots):
    for entry, words in (('"frame": 60', "hint 1: frame 60 is past the end"), ('"time": 2.5', "hint 1: time 2.5 s")):
        doc = '{"hints": [{"x": 0.1, "y": 0.1, "color": "#101010"}, {"x": 0.5, "y": 0.5, "color": "#ff0000", %s}]}'
        with pytest.raises(HintsError, match=words):
            scan_hints(parse_hints(doc % entry, "h.json"), two_shots, 256, TemporalConfig(), "h.json")


def test_the_fixed_camera_gate_drops_a_hint_while_something_passes_over_it(fixed_camera):
    path, (size, row, speed, phase, _) = fixed_camera
    hint = Hint(0.95, row, "#40a040")  # on the grass the blue object crosses
    sky = Hint(0.3, 0.2, "#4080e0")  # where nothing passes
    gate = FixedHints((hint, sky))
    covered = clear = 0
    for i, lum in enumerate(small_frames(path)):
        kept = gate.for_frame(lum)
        assert sky in kept
        d = abs(((phase + speed * i / FPS) % 1.2 - 0.1) - hint.x)  # the object's center, fractions of the width
        if d < size - 0.03:  # the object is over the hint
            assert hint not in kept, i
            covered += 1
        elif d > size + 0.05:  # well away from it
            assert hint in kept, i
            clear += 1
    assert covered >= 20 and clear >= 10  # the clip shows both


@dataclass
class StandIn:
    """A colorizer that records the hints each network call gets (the pipeline's side of the contract)."""

    size: int = 128
    calls: list = field(default_factory=list)

    def predict_small(self, lums, hints=None, source_hw=None):
        self.calls.extend(hints if hints is not None else [()] * len(lums))
        return [np.zeros((*lum.shape, 2), np.float32) for lum in lums]


def test_the_pipeline_gives_each_keyframe_its_hints(two_shots, tmp_path):
    doc = '{"hints": [{"x": 0.5, "y": 0.3, "color": "#c03020", "frame": 45}, {"x": 0.3, "y": 0.2, "color": "#2050c0"}]}'
    temporal = TemporalConfig(keyframe_interval=1)  # every frame a keyframe: call i is frame i
    vh, _ = scan_hints(parse_hints(doc, "h.json"), two_shots, 128, temporal, "h.json")
    stand_in = StandIn()
    result = colorize_file(two_shots, tmp_path / "o.mp4", stand_in, PipelineConfig(temporal=temporal, hints=vh))
    assert result.complete and len(stand_in.calls) == 60
    colors = [{h.color for h in c} for c in stand_in.calls]
    assert all("#c03020" not in c for c in colors[:30]) and all("#c03020" in c for c in colors[30:])
    assert "#2050c0" in colors[0]  # the frame-less hint on the view it was placed on
    assert result.stats.counts["hinted_keyframes"] == 60


@dataclass
class Follower:
    """A colorizer that follows its hints perfectly and guesses nothing: each hint's color in a disc
    around it, gray elsewhere. What the output shows at a hint is then the gate's decision."""

    size: int = 256
    backend: object = None
    references: list = field(default_factory=list)

    def predict_small(self, lums, hints=None, source_hw=None):
        import cv2

        from realtime_color.color import AB_SCALE

        out = []
        for lum, mine in zip(lums, hints or [()] * len(lums), strict=True):
            ab = np.zeros((*lum.shape, 2), np.float32)
            h, w = lum.shape
            for hint in mine:
                a, b = hint.ab
                cv2.circle(ab, (round(hint.x * (w - 1)), round(hint.y * (h - 1))), 6, (a / AB_SCALE, b / AB_SCALE), -1)
            out.append(ab)
        return out


def hint_distance(frames_rgb, x: float, y: float, color: str) -> list[float]:
    """Per frame, the Lab chroma distance of the 5x5 patch at (x, y) to ``color``."""
    import cv2

    rgb = np.float32([[[int(color[i : i + 2], 16) for i in (1, 3, 5)]]]) / 255
    want = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)[0, 0, 1:]
    px, py = round(x * (W - 1)), round(y * (H - 1))
    out = []
    for f in frames_rgb:
        lab = cv2.cvtColor(f[py - 2 : py + 3, px - 2 : px + 3].astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        out.append(float(np.linalg.norm(lab[..., 1:].reshape(-1, 2).mean(0) - want)))
    return out


def run_fixed_hint(path, tmp_path, row: float, extra=()) -> list[np.ndarray]:
    from typer.testing import CliRunner

    from realtime_color.cli import app

    hints = tmp_path / "h.json"
    hints.write_text(json.dumps({"hints": [{"x": 0.95, "y": round(row, 4), "color": MAGENTA, "size": 9}]}))
    dest = tmp_path / "hinted.mp4"
    cmd = ["colorize", str(path), "-o", str(dest), "-k", "1", "--crf", "0", "--hints", str(hints), *extra]
    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 0, r.output
    with av.open(str(dest)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


MAGENTA = "#d040c0"


def covered_and_clear(distances, size, speed, phase, x: float = 0.95) -> dict[str, list[float]]:
    near = {"covered": [], "clear": []}
    for i, dist in enumerate(distances):
        d = abs(((phase + speed * i / FPS) % 1.2 - 0.1) - x)
        if d < size - 0.03:
            near["covered"].append(dist)
        elif d > size + 0.05:
            near["clear"].append(dist)
    return near


def test_colorize_paints_a_fixed_hint_on_the_view_but_not_on_what_passes(fixed_camera, tmp_path, monkeypatch):
    """Through the command, with a colorizer that follows hints perfectly: magenta on the grass
    while it shows; the object crossing it is not painted magenta."""
    from realtime_color.model.checkpoint import MetaView

    monkeypatch.setattr(MetaView, "takes_hints", property(lambda self: True))
    monkeypatch.setattr("realtime_color.cli.video._colorizer", lambda *a, **k: Follower())
    path, (size, row, speed, phase, _) = fixed_camera
    near = covered_and_clear(hint_distance(run_fixed_hint(path, tmp_path, row), 0.95, row, MAGENTA), size, speed, phase)
    assert max(near["clear"]) < 15 and min(near["covered"]) > 40, near


def _default_takes_hints() -> bool:
    from realtime_color.model.checkpoint import ModelFile

    return ModelFile.open(None).takes_hints


@pytest.mark.slow
@pytest.mark.skipif(not _default_takes_hints(), reason="the bundled default model has no hint inputs yet")
def test_the_default_model_follows_a_fixed_hint_but_not_onto_what_passes(fixed_camera, tmp_path):
    """Magenta on the grass: followed while the grass shows, not painted on the object crossing it."""
    path, (size, row, speed, phase, _) = fixed_camera
    near = covered_and_clear(hint_distance(run_fixed_hint(path, tmp_path, row), 0.95, row, MAGENTA), size, speed, phase)
    assert np.median(near["clear"]) < 0.5 * np.median(near["covered"])
