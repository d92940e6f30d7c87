"""Generated test footage: a static 'surveillance' scene with moving objects, noise and sound.

Used by the tests, ``rtcolor bench`` (end-to-end fps on a generated clip) and the fake camera. The
scene is procedural so that no picture has to be downloaded; its colors are saturated enough to
show a colorizer working, its sensor noise makes the encoder work as on real footage, and an
optional scene cut halfway exercises cut detection.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from ..color import ycbcr_matrix_for
from .frames import planes_from_rgb


def scene_background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A color street-like scene (sky, buildings, grass, road), uint8 RGB (H, W, 3)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    sky_top, sky_low = rng.uniform([40, 90, 170], [90, 140, 230]), rng.uniform([150, 190, 220], [200, 220, 250])
    img[:] = sky_top * (1 - y) + sky_low * y
    horizon = int(height * rng.uniform(0.45, 0.6))
    img[horizon:] = rng.uniform([60, 110, 40], [100, 160, 70])  # grass
    road = int(height * 0.78)
    img[road:] = rng.uniform([90, 90, 95], [120, 118, 125])  # asphalt
    x = 0
    while x < width:  # buildings along the horizon
        bw = int(width * rng.uniform(0.06, 0.16))
        top = int(horizon * rng.uniform(0.25, 0.75))
        color = rng.uniform([120, 40, 30], [230, 200, 160])
        img[top:horizon, x : x + bw] = color
        for wy in range(top + 6, horizon - 8, max(8, height // 30)):  # windows
            for wx in range(x + 4, x + bw - 6, max(8, width // 60)):
                img[wy : wy + max(2, height // 90), wx : wx + max(2, width // 160)] = color * 0.45
        x += bw + int(width * rng.uniform(0.0, 0.03))
    for _ in range(6):  # trees
        cx, cy, r = rng.integers(0, width), horizon + rng.integers(-height // 20, height // 20), height // 12
        cv2.circle(img, (int(cx), int(cy)), int(r), rng.uniform([20, 90, 20], [60, 140, 50]).tolist(), -1)
    texture = cv2.GaussianBlur(rng.normal(0, 10, (height, width, 1)).astype(np.float32), (0, 0), 1.5)
    return np.clip(img + texture.reshape(height, width, 1), 0, 255).astype(np.uint8)


def night_view(rgb: np.ndarray, rng) -> np.ndarray:
    """The same view by night, as a gray camera sees it: a darker exposure curve (0.75 g^1.6 + 0.03)
    and more sensor noise. With a day frame of the view, the test case for known colors."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    g = 0.75 * g**1.6 + 0.03 + rng.normal(0, 0.02, g.shape)
    return np.clip(g * 255, 0, 255).astype(np.uint8)


def fit_photo(photo: np.ndarray, height: int, width: int) -> np.ndarray:
    """Scale an RGB photo to cover (height, width) and crop its center: a real scene background."""
    if photo.ndim == 2:
        photo = np.repeat(photo[:, :, None], 3, axis=2)
    if photo.dtype != np.uint8:  # 16-bit pictures
        photo = (photo // 257).astype(np.uint8)
    scale = max(height / photo.shape[0], width / photo.shape[1])
    big = cv2.resize(
        photo[..., :3], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    )
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return np.ascontiguousarray(big[y0 : y0 + height, x0 : x0 + width])


class SceneClip:
    """Frame t of a scene: a background with colored objects crossing it, plus sensor noise.

    The backgrounds are procedural unless ``photos`` are given (RGB arrays: the first before the
    cut, the last after it), which turns the clip into a static camera over real pictures.
    """

    def __init__(
        self,
        height: int,
        width: int,
        fps: float,
        cut_at: float | None = None,
        seed: int = 0,
        pan: float = 0.0,
        photos: list[np.ndarray] | None = None,
        objects: int = 3,
    ):
        self.height, self.width, self.fps, self.cut_at, self.pan = height, width, fps, cut_at, pan
        wide = width + int(abs(pan) * 60) if pan else width  # room for a minute of panning
        if photos:
            self.backgrounds = [fit_photo(photos[0], height, wide), fit_photo(photos[-1], height, wide)]
        else:
            self.backgrounds = [scene_background(height, wide, seed), scene_background(height, wide, seed + 101)]
        rng = np.random.default_rng(seed + 7)
        self.objects = [
            (rng.uniform(0.05, 0.12), rng.uniform(0.6, 0.9), rng.uniform(-0.15, 0.15), rng.uniform(0, 1), c)
            for c in ([200, 30, 30], [30, 60, 200], [230, 200, 30])
        ][:objects]
        self.rng = np.random.default_rng(seed + 13)

    def frame(self, index: int) -> np.ndarray:
        t = index / self.fps
        second = self.cut_at is not None and t >= self.cut_at
        h, w = self.height, self.width
        x0 = int(self.pan * t) % max(1, self.backgrounds[0].shape[1] - w + 1) if self.pan else 0
        img = self.backgrounds[int(second)][:, x0 : x0 + w].copy()
        for size, row, speed, phase, color in self.objects:
            cx = int(((phase + speed * t) % 1.2 - 0.1) * w)
            cy = int(row * h)
            half = (int(size * w), int(size * h * 0.6))
            cv2.rectangle(img, (cx - half[0], cy - half[1]), (cx + half[0], cy + half[1]), color, -1)
            cv2.rectangle(img, (cx - half[0] // 2, cy - half[1] * 2), (cx + half[0] // 2, cy - half[1]), color, -1)
        noise = self.rng.normal(0, 2.0, (h, w, 1)).astype(np.float32)
        return np.clip(img + noise, 0, 255).astype(np.uint8)


def write_clip(
    path: str | Path,
    seconds: float = 2.0,
    width: int = 320,
    height: int = 180,
    fps: float = 30.0,
    gray: bool = False,
    audio: bool = True,
    cut_at: float | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    crf: int = 20,
    vfr: bool = False,
    seed: int = 0,
    pan: float = 0.0,
    photos: list[np.ndarray] | None = None,
    objects: int = 3,
) -> Path:
    """Write a generated clip (H.264 + AAC by default) and return its path.

    ``gray`` stores luminance only (what a night-vision camera records). ``vfr`` gives every
    fifth frame a doubled duration, so that timestamps are not a plain frame counter. ``pan``
    moves the camera across the scene at that many pixels per second. ``photos`` replace the
    procedural backgrounds with real pictures (see ``SceneClip``); ``objects`` (0-3) is how many
    objects cross the scene (0: an idle camera, only sensor noise moves).
    """
    import av

    path = Path(path)
    scene = SceneClip(height, width, fps, cut_at, seed, pan, photos, objects)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.time_base = Fraction(1, 90000)
        matrix = ycbcr_matrix_for(height)
        stream.codec_context.colorspace = 1 if matrix == "bt709" else 6
        stream.codec_context.color_range = 1
        step = int(round(90000 / fps))
        if codec in ("libx264", "libx265"):
            stream.options = {"crf": str(crf), "preset": "veryfast"}
        tone = _Tone(container, container.add_stream("aac", rate=48000, layout="stereo")) if audio else None
        pts = 0
        for i in range(int(round(seconds * fps))):
            rgb = scene.frame(i)
            if gray:
                rgb = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[:, :, None], 3, axis=2)
            frame = _encode_frame(rgb, pix_fmt, matrix)
            frame.pts, frame.time_base = pts, stream.time_base
            container.mux(stream.encode(frame))
            pts += step * (2 if vfr and i % 5 == 4 else 1)
            if tone:
                tone.write_until(pts / 90000)
        container.mux(stream.encode())
        if tone:
            tone.close()
    return path


def _encode_frame(rgb: np.ndarray, pix_fmt: str, matrix: str):
    """RGB -> an av.VideoFrame of ``pix_fmt`` through our own Y'CbCr maths (the one the pipeline
    reads with), so that clips and their colorized versions use one convention."""
    import av

    if pix_fmt in ("yuv420p", "yuv444p"):
        sub = (2, 2) if pix_fmt == "yuv420p" else (1, 1)
        y, u, v = planes_from_rgb(rgb, matrix, subsampling=sub)
        if sub == (1, 1):
            return av.VideoFrame.from_ndarray(np.stack([y, u, v]), format="yuv444p")
        return av.VideoFrame.from_ndarray(
            np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(-1, y.shape[1]), format="yuv420p"
        )
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)


class _Tone:
    """A 440 Hz stereo tone written in step with the video, so the streams interleave."""

    def __init__(self, container, stream, block: int = 1024):
        self.container, self.stream, self.block, self.t0 = container, stream, block, 0

    def write_until(self, seconds: float) -> None:
        import av

        while self.t0 < seconds * self.stream.rate:
            t = np.arange(self.t0, self.t0 + self.block) / self.stream.rate
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([wave, wave]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = self.stream.rate, self.t0
            self.container.mux(self.stream.encode(frame))
            self.t0 += self.block

    def close(self) -> None:
        self.container.mux(self.stream.encode())
