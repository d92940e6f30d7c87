"""What a source hands over: a Picture (planar 8-bit Y'CbCr plus its timing and color metadata)
inside a Read, whose status says what happened (a frame, nothing yet, the end, an error).

Sources hand over the luma plane only (color sources are turned gray there); the colorizer adds
the chroma planes. Keeping Y' as decoded means a file's luminance passes through bit for bit. How
that luma is to be read (its Y'CbCr matrix and range) is decided once, where it is decoded, and
travels with it as typed fields; nothing downstream guesses or relabels it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum
from fractions import Fraction
from typing import Literal, NamedTuple

import cv2
import numpy as np

from ..color import YCBCR_MATRICES, chroma_scale, luma_range, rgb_to_ycbcr, ycbcr_to_rgb
from ..errors import RtcolorError

Matrix = Literal["bt601", "bt709"]  # the Y'CbCr matrices color.py knows (YCBCR_MATRICES)


@dataclass
class Picture:
    """One frame: full-resolution luma, chroma planes once colorized, timestamps."""

    y: np.ndarray  # (H, W) uint8 luma
    index: int  # position in the source (0, 1, 2, ...)
    pts: int | None = None  # presentation timestamp in time_base units (files)
    time_base: Fraction | None = None
    full_range: bool = False  # JPEG (0-255) rather than video (16-235) levels
    matrix: Matrix = "bt709"  # Y'CbCr matrix, see color.ycbcr_matrix_for
    subsampling: tuple[int, int] = (2, 2)  # chroma subsampling (rows, cols): 4:2:0 -> (2, 2)
    rotation: int = 0  # degrees a player turns the picture (a phone's display matrix), kept by recordings
    captured: float = field(default_factory=time.monotonic)  # for capture-to-output latency
    keyframe: bool = False  # the source coded it as a keyframe (a file output puts one there too)
    u: np.ndarray | None = None  # chroma planes, filled in by the colorizer
    v: np.ndarray | None = None
    # What some commands need beside the luma, decided by the source that decoded the picture:
    decoded_uv: tuple[np.ndarray, np.ndarray] | None = None  # the chroma as decoded (sources opened with chroma=True)
    pixels: np.ndarray | None = None  # a still picture as decoded: RGB or gray, 8 or 16 bits (``image`` colors it)
    alpha: np.ndarray | None = None  # a still picture's transparency, when it has any
    name: str | None = None  # the file a still picture came from (outputs are named after it)

    def __post_init__(self) -> None:
        if self.matrix not in YCBCR_MATRICES:  # decided where it was decoded: never a guess later
            raise ValueError(f"unknown Y'CbCr matrix {self.matrix!r}; use one of {', '.join(YCBCR_MATRICES)}")

    @property
    def chroma_shape(self) -> tuple[int, int]:
        h, w = self.y.shape
        sy, sx = self.subsampling
        return -(-h // sy), -(-w // sx)

    def gray_bgr(self) -> np.ndarray:
        """The luma as a BGR picture (what the network sees, for side-by-side views)."""
        offset, scale = luma_range(self.full_range)
        y = np.clip((self.y.astype(np.float32) - offset) * (255.0 / scale), 0, 255).astype(np.uint8)
        return cv2.cvtColor(y, cv2.COLOR_GRAY2BGR)

    def to_bgr(self) -> np.ndarray:
        """Y'CbCr planes -> 8-bit BGR (for windows, MJPEG, still frames)."""
        if self.u is None:
            return self.gray_bgr()
        return self._bgr(self.u, self.v)

    def decoded_rgb(self) -> np.ndarray:
        """The picture as decoded, in color: 8-bit RGB from its luma and ``decoded_uv`` (ground
        truth for ``eval``, training frames for ``adapt``), read with its own matrix and range."""
        if self.decoded_uv is None:
            raise ValueError("this picture's chroma was not kept; open its source with chroma=True")
        return self._bgr(*self.decoded_uv)[..., ::-1]

    def _bgr(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        offset, scale = luma_range(self.full_range)
        cs = chroma_scale(self.full_range)
        h, w = self.y.shape
        ycc = np.empty((h, w, 3), np.float32)
        ycc[..., 0] = (self.y.astype(np.float32) - offset) / scale
        for i, plane in ((1, u), (2, v)):
            ycc[..., i] = cv2.resize((plane.astype(np.float32) - 128) / cs, (w, h), interpolation=cv2.INTER_LINEAR)
        rgb = ycbcr_to_rgb(ycc, self.matrix)
        return (np.clip(rgb[..., ::-1], 0, 1) * 255 + 0.5).astype(np.uint8)


class Policy(Enum):
    """How a source is read, which follows what it is: a file loses nothing, a camera stays current."""

    FILE = "file"  # lose nothing: back-pressure, every frame processed
    LIVE = "live"  # stay current: stale frames dropped (counted), a failed source reopened


class SourceError(RtcolorError):
    """A source that cannot be opened, with the reason and the fix."""


class Status(Enum):
    """What one ``read`` of a source gave."""

    FRAME = "frame"  # a Picture
    PACKET = "packet"  # a packet of another stream of a file (audio, subtitles), to pass along untouched
    EMPTY = "empty"  # nothing new yet (timeout): try again
    SKIPPED = "skipped"  # a picture that could not be decoded was left out (``note`` says why): go on
    END = "end"  # the source has no more frames (a file without --loop)
    ERROR = "error"  # the source failed; reopen it (a live source) or stop (a file)


class Read(NamedTuple):
    """The outcome of one ``read``: a status, the item for FRAME and PACKET, a reason for the others."""

    status: Status
    item: object = None
    note: str | None = None


class Source:
    """What every source is: ``read`` returns a Read; ``stop`` asks a waiting read to give up;
    ``close`` lets go of the device or file. ``policy`` is how the kind is read unless the caller
    says otherwise (``sources.open_source``); ``problems`` lists what a file or folder lost."""

    policy = Policy.LIVE
    problems: list[str] | tuple = ()  # sources that can lose frames keep their own list
    spec = None  # the parsed URI it was opened from (``sources.SourceSpec``)

    def read(self, timeout: float = 1.0) -> Read:
        raise NotImplementedError

    def stop(self) -> None:
        pass  # reads that never wait long need nothing

    def close(self) -> None:
        pass


def pictures(source):
    """The Pictures of a source that ends (a file, pictures), in order, until its end or an error."""
    while True:
        status, item, _ = source.read()
        if status is Status.FRAME:
            yield item
        elif status in (Status.END, Status.ERROR):
            return


def subsampling_for(height: int, width: int) -> tuple[int, int]:
    """The chroma subsampling a picture of this size is coded with, for every source and sink:
    4:2:0, or 4:4:4 at odd sizes, which 4:2:0 encoders (libx264) refuse."""
    return (1, 1) if height % 2 or width % 2 else (2, 2)


def picture_from_bgr(bgr: np.ndarray, index: int, **kw) -> Picture:
    """A camera/decoded BGR or gray frame -> Picture holding its luma (full-range BT.601, as JPEG)."""
    if bgr.ndim == 2:
        y = bgr if bgr.dtype == np.uint8 else (bgr >> 8).astype(np.uint8)
    elif bgr.shape[2] == 1:
        y = bgr[:, :, 0]
    else:
        y = cv2.cvtColor(bgr[:, :, :3], cv2.COLOR_BGR2GRAY)  # BT.601 weights
    kw.setdefault("subsampling", subsampling_for(*y.shape))
    return Picture(y=np.ascontiguousarray(y), index=index, full_range=True, matrix="bt601", **kw)


def planes_from_rgb(rgb: np.ndarray, matrix: str, full_range: bool = False, subsampling=(2, 2)):
    """8-bit RGB (H, W, 3) -> (Y, Cb, Cr) 8-bit planes, chroma area-averaged to the subsampling."""
    ycc = rgb_to_ycbcr(rgb.astype(np.float32) / 255.0, matrix)
    h, w = rgb.shape[:2]
    ch, cw = -(-h // subsampling[0]), -(-w // subsampling[1])
    cbcr = ycc[..., 1:]
    if (ch, cw) != (h, w):
        cbcr = cv2.resize(np.ascontiguousarray(cbcr), (cw, ch), interpolation=cv2.INTER_AREA)
    offset, scale = luma_range(full_range)
    cs = chroma_scale(full_range)

    def to8(a: np.ndarray) -> np.ndarray:
        return np.clip(a + 0.5, 0, 255).astype(np.uint8)

    return to8(offset + scale * ycc[..., 0]), to8(128 + cs * cbcr[..., 0]), to8(128 + cs * cbcr[..., 1])
