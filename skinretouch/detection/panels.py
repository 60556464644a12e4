"""Collages: a photo made of several photos pasted side by side, split into its panels.

Acne photos are often shared as collages (before/after pairs, several angles of one face, the
four-panel mosaics of training sets). The face finder then sees one face at most, and the skin
of every other panel (a cheek close-up, a second face) is never searched. Each panel is a photo
of its own: its faces, its skin, its scale.

A panel edge is a **seam**: a straight line across the whole photo (or the whole of the part
being split) where the pixels jump from one picture to another. Natural edges are not seams:
they are blurred over a few pixels by the lens and by resampling, while a pasted edge jumps
within one pixel, so the step across the line is large next to the steps beside it. And a
natural edge that runs straight across a whole photo (a door frame) is hidden wherever the
subject stands in front of it; a seam never is. Two things look like seams and are not:
letterbox bands (one side flat: no second picture) and upscaled photos (a step every few
pixels: no single line stands out); both are refused.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..imageio import unit_floats
from .types import BBox

__all__ = ["find_panels"]

# A seam crosses at least this share of the rows where either side has any structure ...
SEAM_SHARE = 0.55
# ... with a step across it this many times the larger step beside it, plus STEP_FLOOR.
STEP_RATIO = 2.5
STEP_FLOOR = 0.02  # in [0, 1] grey levels: JPEG noise stays under it
# The best line must stand out: the best one elsewhere (beyond RIVAL_GAP px) scores under this
# share of it (an upscaled photo has a step every few pixels).
RIVAL_SHARE = 0.5
RIVAL_GAP = 4
# A cut that continues the other half's cut (a 2 x 2 mosaic) needs only this share.
CONTINUED_SHARE = 0.25
# Both sides must hold a picture, not a flat band: the grey levels of a strip along each side
# spread by at least this much (interquartile range).
PICTURE_STD = 0.008
TEXTURE_STRIP_PX = 8
# No panel narrower than this share of what is split; at most this many splits deep (a
# 2 x 2 mosaic is two).
MIN_PANEL_SHARE = 0.12
MAX_DEPTH = 2
# Lines compared on at most this many samples along them (a 2048-px photo: every 8th row).
MAX_SAMPLES = 256


def find_panels(image: np.ndarray) -> list[BBox]:
    """The panels of ``image`` ``(H, W, 3)``, as ``(x, y, width, height)`` boxes that tile it;
    the whole photo as one box when it is no collage."""
    height, width = image.shape[:2]
    panels: list[BBox] = []
    _split(image, (0, 0, width, height), MAX_DEPTH, panels)
    return panels


def _split(image: np.ndarray, box: BBox, depth: int, out: list[BBox]) -> None:
    x, y, w, h = box
    if depth > 0:
        part = image[y : y + h, x : x + w]
        across = _seam(_grey(part, rows=True))
        if across is not None:
            halves = [(x, y, across, h), (x + across, y, w - across, h)]
            _split_pair(image, halves, depth - 1, out, transposed=False)
            return
        down = _seam(_grey(part, rows=False).T)
        if down is not None:
            halves = [(x, y, w, down), (x, y + down, w, h - down)]
            _split_pair(image, halves, depth - 1, out, transposed=True)
            return
    out.append(box)


def _split_pair(image: np.ndarray, halves: list[BBox], depth: int, out: list[BBox], *, transposed: bool) -> None:
    """Split both halves of a cut; a cut across one half that the other half continues (a
    2 x 2 mosaic's second cut runs through both) needs less evidence in the other half, where
    the two pictures may meet skin to skin."""
    if depth > 0:
        cuts = []
        for hx, hy, hw, hh in halves:
            part = image[hy : hy + hh, hx : hx + hw]
            grey = _grey(part, rows=True) if transposed else _grey(part, rows=False).T
            cuts.append((grey, _seam(grey)))
        found = [cut for _, cut in cuts if cut is not None]
        if len(found) == 1:
            for i, (grey, cut) in enumerate(cuts):
                if cut is None and _continues(grey, found[0]):
                    cuts[i] = (grey, found[0])
        for (hx, hy, hw, hh), (_, cut) in zip(halves, cuts):
            if cut is None:
                _split(image, (hx, hy, hw, hh), depth - 1, out)
            elif transposed:  # stacked halves: their second cuts are vertical
                _split(image, (hx, hy, cut, hh), depth - 1, out)
                _split(image, (hx + cut, hy, hw - cut, hh), depth - 1, out)
            else:
                _split(image, (hx, hy, hw, cut), depth - 1, out)
                _split(image, (hx, hy + cut, hw, hh - cut), depth - 1, out)
        return
    out.extend(halves)


def _grey(part: np.ndarray, *, rows: bool) -> np.ndarray:
    """Grey levels of ``part``, every pixel across the lines looked for, sampled along them."""
    length = part.shape[0] if rows else part.shape[1]
    step = max(1, -(-length // MAX_SAMPLES))
    sampled = unit_floats(part[::step] if rows else part[:, ::step])
    grey = sampled[..., 0] + sampled[..., 1]
    grey += sampled[..., 2]
    grey *= np.float32(1.0 / 3.0)
    return grey


def _seam(grey: np.ndarray) -> int | None:
    """The column ``x`` where a vertical seam of ``grey`` ``(n, W)`` starts (the right panel's
    first column), or None."""
    lo, share = _seam_shares(grey)
    if share.size == 0:
        return None
    best = int(np.argmax(share))
    if share[best] < SEAM_SHARE:
        return None
    rivals = share.copy()
    rivals[max(0, best - RIVAL_GAP) : best + RIVAL_GAP + 1] = 0.0
    if rivals.max(initial=0.0) >= RIVAL_SHARE * share[best]:
        return None
    x = lo + best
    return x if _pictures_beside(grey, x) else None


def _continues(grey: np.ndarray, x: int) -> bool:
    """Whether a seam at column ``x`` (within a pixel) is the strongest line of ``grey``, with
    at least CONTINUED_SHARE of its rows jumping."""
    lo, share = _seam_shares(grey)
    if share.size == 0 or not lo <= x < lo + share.size:
        return False
    best = int(np.argmax(share))
    return abs(lo + best - x) <= 1 and share[best] >= CONTINUED_SHARE and _pictures_beside(grey, lo + best)


def _seam_shares(grey: np.ndarray) -> tuple[int, np.ndarray]:
    """``(lo, share)``: ``share[i]`` is the share of the rows with any structure that jump
    across a seam starting at column ``lo + i``."""
    n, width = grey.shape
    lo = max(TEXTURE_STRIP_PX + 2, int(np.ceil(MIN_PANEL_SHARE * width)))
    hi = min(width - TEXTURE_STRIP_PX - 2, width - int(np.ceil(MIN_PANEL_SHARE * width)))
    if hi <= lo or n < 16:
        return lo, np.zeros(0)
    step = np.abs(np.diff(grey, axis=1))  # step[:, i]: between columns i and i + 1
    cross = step[:, lo - 1 : hi - 1]
    beside = np.maximum(step[:, lo - 2 : hi - 2], step[:, lo:hi])
    quiet = (cross < STEP_FLOOR) & (beside < STEP_FLOOR)
    live = (~quiet).sum(axis=0)
    jumps = ((cross > STEP_RATIO * beside + STEP_FLOOR) & ~quiet).sum(axis=0)
    return lo, np.where(live >= 0.3 * n, jumps / np.maximum(live, 1), 0.0)


def _pictures_beside(grey: np.ndarray, x: int) -> bool:
    """Whether both sides of column ``x`` hold a picture (not a flat band, even one sprinkled
    with salt noise: a 5 x 5 median takes that out first)."""
    left = cv2.medianBlur(np.ascontiguousarray(grey[:, x - TEXTURE_STRIP_PX - 1 : x - 1]), 5)
    right = cv2.medianBlur(np.ascontiguousarray(grey[:, x + 1 : x + TEXTURE_STRIP_PX + 1]), 5)
    return min(_spread(left), _spread(right)) >= PICTURE_STD


def _spread(values: np.ndarray) -> float:
    low, high = np.percentile(values, (25, 75))
    return float(high - low)
