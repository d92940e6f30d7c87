"""Known colors (--reference): a color day frame of a fixed camera lends its chroma to the night
footage wherever the scene is unchanged; what moves keeps the network's color."""

from __future__ import annotations

from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from realtime_color.cli import app
from realtime_color.evaluation.evaluate import chroma_error, true_colors_at
from realtime_color.guidance.reference import (
    Reference,
    ReferenceConfig,
    ReferencePictureError,
    estimate_alignment,
    match_score,
    match_weights,
)
from realtime_color.media.images import write_image
from realtime_color.media.synth import SceneClip, night_view

runner = CliRunner()
H, W, FPS, N = 180, 320, 15, 30


def lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)


@pytest.fixture(scope="module")
def fixed_camera(tmp_path_factory):
    """A day reference (no objects), a gray night clip of the same view with objects crossing,
    and per frame the color truth and the mask of what moved."""
    d = tmp_path_factory.mktemp("fixed")
    day = SceneClip(H, W, FPS, seed=4, objects=0).frame(0)
    write_image(d / "day.png", day)
    write_image(d / "other.png", SceneClip(H, W, FPS, seed=9, objects=0).frame(0))  # another place
    scene, rng = SceneClip(H, W, FPS, seed=4, objects=3), np.random.default_rng(1)
    truths, grays = [scene.frame(i) for i in range(N)], []
    with av.open(str(d / "night.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt, s.options = W, H, "yuv420p", {"crf": "12", "preset": "ultrafast"}
        for i, t in enumerate(truths):
            g = night_view(t, rng)
            grays.append(g)
            f = av.VideoFrame.from_ndarray(np.dstack([g] * 3), format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, FPS)
            c.mux(s.encode(f))
        c.mux(s.encode())
    moved = [
        cv2.dilate((np.abs(t.astype(int) - day.astype(int)).max(-1) > 30).astype(np.uint8), np.ones((9, 9)))
        for t in truths
    ]
    return d, truths, grays, [m.astype(bool) for m in moved]


def decoded(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_a_day_reference_colors_the_static_scene_and_leaves_what_moves_to_the_network(fixed_camera, tmp_path):
    d, truths, grays, moved = fixed_camera
    for args, name in (((), "plain.mp4"), (("--reference", str(d / "day.png")), "ref.mp4")):
        r = runner.invoke(app, ["colorize", str(d / "night.mp4"), "-o", str(tmp_path / name), "-k", "4", *args])
        assert r.exit_code == 0, r.output
    plain, ref = decoded(tmp_path / "plain.mp4"), decoded(tmp_path / "ref.mp4")
    assert len(plain) == len(ref) == N
    day_ab = lab(cv2.imread(str(d / "day.png"))[..., ::-1])[..., 1:]
    static_plain, static_ref, to_network, to_reference = [], [], [], []
    for i in range(0, N, 5):
        want, static = true_colors_at(grays[i], truths[i]), ~moved[i]
        static_plain.append(chroma_error(plain[i], want, static))
        static_ref.append(chroma_error(ref[i], want, static))
        inside = cv2.erode(moved[i].astype(np.uint8), np.ones((9, 9))).astype(bool)
        if inside.sum() > 200:  # an object well inside the picture
            ab_ref = lab(ref[i])[..., 1:]
            to_network.append(np.linalg.norm(ab_ref - lab(plain[i])[..., 1:], axis=-1)[inside].mean())
            to_reference.append(np.linalg.norm(ab_ref - day_ab, axis=-1)[inside].mean())
    assert np.mean(static_plain) >= 5 * np.mean(static_ref), (static_plain, static_ref)
    assert to_network and np.mean(to_network) < 0.5 * np.mean(to_reference), (to_network, to_reference)


def test_a_reference_of_another_place_is_refused_and_nothing_is_written(fixed_camera, tmp_path):
    d, *_ = fixed_camera
    out = tmp_path / "out.mp4"
    r = runner.invoke(app, ["colorize", str(d / "night.mp4"), "-o", str(out), "--reference", str(d / "other.png")])
    text = " ".join(r.output.split())  # the console wraps long lines
    assert r.exit_code == 1 and "does not match the view" in text and "% of its detail matches" in text, r.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["corrupt", "gray", "framing", "missing"])
def test_bad_references_are_refused_in_one_line(fixed_camera, tmp_path, kind):
    d, *_ = fixed_camera
    bad = tmp_path / "bad.png"
    if kind == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"junk" * 10)
    elif kind == "gray":
        write_image(bad, np.full((H, W, 3), 100, np.uint8))
    elif kind == "framing":
        write_image(bad, SceneClip(H, H, FPS, seed=4, objects=0).frame(0))  # a square crop of the view
    out = tmp_path / "out"
    r = runner.invoke(app, ["colorize", str(d / "night.mp4"), "-o", str(out) + "/", "--reference", str(bad)])
    assert r.exit_code != 0, r.output
    text = " ".join(r.output.split())  # the console wraps long lines
    assert "Traceback" not in r.output and "bad.png" in text
    expected = {"corrupt": "bad.png", "gray": "gray picture", "framing": "another framing", "missing": "bad.png"}
    assert expected[kind] in text
    assert not out.exists() or not any(out.iterdir())


def test_image_reference_for_a_night_still(fixed_camera, tmp_path):
    d, truths, grays, moved = fixed_camera
    write_image(tmp_path / "night.png", grays[0])
    for args, name in (((), "plain"), (("--reference", str(d / "day.png")), "ref")):
        r = runner.invoke(app, ["image", str(tmp_path / "night.png"), "-o", str(tmp_path / name), *args])
        assert r.exit_code == 0, r.output
    want = true_colors_at(grays[0], truths[0])
    read = lambda p: cv2.imread(str(p))[..., ::-1]  # noqa: E731
    e_plain = chroma_error(read(tmp_path / "plain/night.png"), want, ~moved[0])
    e_ref = chroma_error(read(tmp_path / "ref/night.png"), want, ~moved[0])
    assert e_plain >= 5 * e_ref, (e_plain, e_ref)


def test_structure_matching_is_robust_to_exposure_and_noise():
    rng = np.random.default_rng(0)
    day = SceneClip(H, W, FPS, seed=4, objects=0).frame(0)
    ref_L = lab(day)[..., 0]
    night_L = lab(np.dstack([night_view(day, rng)] * 3))[..., 0]
    other_L = lab(SceneClip(H, W, FPS, seed=9, objects=0).frame(0))[..., 0]
    small = lambda x: cv2.resize(x, (128, 72), interpolation=cv2.INTER_AREA)  # noqa: E731 (the working size)
    cfg = ReferenceConfig()
    assert match_weights(small(night_L), small(ref_L), cfg).mean() > 0.7
    same, other = match_score(small(night_L), small(ref_L), cfg), match_score(small(other_L), small(ref_L), cfg)
    assert same > 0.8 and other < 0.4  # the refusal threshold (min_match) lies between


def test_alignment_recovers_camera_shake():
    day = SceneClip(H * 2, W * 2, FPS, seed=4, objects=0).frame(0)
    ref_L = lab(day)[..., 0]
    shaken = cv2.warpAffine(ref_L, np.float32([[1, 0, 7], [0, 1, -4]]), (W * 2, H * 2), borderMode=cv2.BORDER_REPLICATE)
    m = estimate_alignment(shaken, ref_L)
    assert m is not None and abs(m[0, 2] - 7) < 1.0 and abs(m[1, 2] + 4) < 1.0 and abs(m[0, 0] - 1) < 0.01


def test_reference_errors_name_the_file(tmp_path):
    with pytest.raises(ReferencePictureError, match="missing.png"):
        Reference(tmp_path / "missing.png")


@pytest.fixture(scope="module")
def two_shots(tmp_path_factory):
    """A gray clip of two shots (a cut at 2 s), the camera panning, objects crossing; its truth."""
    from realtime_color.media.synth import write_clip

    d = tmp_path_factory.mktemp("shots")
    args = dict(width=W, height=H, fps=FPS, cut_at=2.0, seed=2, pan=12.0)
    write_clip(d / "reel.mp4", seconds=4.0, gray=True, audio=False, **args)
    scene = SceneClip(H, W, FPS, cut_at=2.0, seed=2, pan=12.0)
    return d, [scene.frame(i) for i in range(4 * FPS)]


def test_color_frames_carry_through_their_shot_and_stop_at_the_cut(two_shots, tmp_path):
    d, truths = two_shots
    colored = tmp_path / "colored"
    write_image(colored / "000010.png", truths[10])  # shot 1 only
    runs = {"plain": (), "one": ("--color-frames", str(colored))}
    for name, args in runs.items():
        r = runner.invoke(app, ["colorize", str(d / "reel.mp4"), "-o", str(tmp_path / f"{name}.mp4"), *args])
        assert r.exit_code == 0, r.output
    assert "2 shots" in " ".join(r.output.split())
    plain, one = decoded(tmp_path / "plain.mp4"), decoded(tmp_path / "one.mp4")
    everywhere = np.ones((H, W), bool)
    err = lambda out, i: chroma_error(out[i], truths[i], everywhere)  # noqa: E731
    for i in range(0, 2 * FPS):  # shot 1, before and after the colored frame: better on every frame
        assert err(one, i) < err(plain, i), (i, err(one, i), err(plain, i))
    assert np.mean([err(one, i) for i in range(2 * FPS)]) < 0.5 * np.mean([err(plain, i) for i in range(2 * FPS)])
    for i in range(2 * FPS + 1, 4 * FPS):  # shot 2: nothing from the frame before the cut
        assert abs(err(one, i) - err(plain, i)) < 0.05 * err(plain, i) + 0.5, i


def test_a_colored_frame_that_is_not_that_frame_is_refused(two_shots, tmp_path):
    d, truths = two_shots
    colored = tmp_path / "colored"
    write_image(colored / "000040.png", truths[10])  # frame 10's colors filed as frame 40 (another shot)
    out = tmp_path / "out.mp4"
    r = runner.invoke(app, ["colorize", str(d / "reel.mp4"), "-o", str(out), "--color-frames", str(colored)])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "000040.png does not match frame 40" in text and "differs by" in text, r.output
    assert not out.exists()
    (colored / "000040.png").rename(colored / "frame_forty.png")
    r = runner.invoke(app, ["colorize", str(d / "reel.mp4"), "-o", str(out), "--color-frames", str(colored)])
    assert r.exit_code == 1 and "12.5s.png" in " ".join(r.output.split()) and not out.exists()
