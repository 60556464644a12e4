"""The inpainting engine interface: one class per model, shared crop/scale/pad logic.

An engine declares its features as class attributes and implements only :meth:`load` and
:meth:`forward`; :meth:`InpaintEngine.__call__` does the steps every model needs:

1. crop the given image around the hole's bounding box plus context (``crop_margin``),
2. choose a working resolution from that crop's size: upscale so the short side reaches
   :attr:`working_min_side_px` (models trained on larger pictures than a spot's crop), then
   cap the long side at ``max_side_px`` (the cap wins),
3. pad bottom/right to a multiple of ``pad_mod`` by mirroring,
4. :meth:`forward` (the model),
5. unpad, resize back, and return a fill equal to the input outside the hole, bit for bit.

:meth:`available` is a class method that never loads weights or imports heavy packages
eagerly: ``skinretouch doctor`` calls it for every engine.

Data convention (fixed for the whole project): images ``(h, w, 3)`` float32 RGB in
``[0, 1]``, holes ``(h, w)`` bool, ``True`` where pixels are replaced.
"""

from __future__ import annotations

import abc
import importlib.util
import math
from typing import ClassVar

import cv2
import numpy as np

from ..config import EnginesConfig
from ..errors import SkinRetouchError
from ..logs import get_logger

__all__ = [
    "EngineError",
    "EngineUnavailable",
    "InpaintEngine",
    "WeightsError",
    "missing_packages",
    "pad_to_multiple",
]

log = get_logger(__name__)

# support radius (working px) of the bicubic kernel that resizes predictions back
RESAMPLE_REACH = 2


class EngineError(SkinRetouchError):
    """An inpainting engine failed to load or run."""


class EngineUnavailable(EngineError):
    """The engine cannot run here; the message is the reason (for reports and doctor)."""


class WeightsError(EngineError):
    """A weights file is unreadable or does not fit the architecture."""


def missing_packages(*names: str) -> list[str]:
    """Top-level packages among ``names`` that are not importable (found without importing)."""
    return [name for name in names if importlib.util.find_spec(name) is None]


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Mirror-pad the bottom and right of an ``(h, w, ...)`` array to multiples of ``multiple``.

    ``symmetric`` mirroring works for any size >= 1 (a reflect pad needs 2 px).
    """
    height, width = image.shape[:2]
    pad_h = -height % multiple
    pad_w = -width % multiple
    if not pad_h and not pad_w:
        return image
    widths = [(0, pad_h), (0, pad_w)] + [(0, 0)] * (image.ndim - 2)
    # np.pad's symmetric mode repeats the array when the pad is wider than the image
    return np.pad(image, widths, mode="symmetric")


class InpaintEngine(abc.ABC):
    """Base of every inpainting model.

    Class attributes
    ----------------
    name
        The engine's name in config, reports and ``doctor``.
    pad_mod
        Working height and width are padded to multiples of this (px).
    max_side_px
        Default longest side (px) of the working crop; bigger crops are downscaled to it.
    context_factor, min_context_px
        Context kept on each side of the hole's bounding box: ``context_factor`` times the
        box's longest side, at least ``min_context_px`` (px at stored resolution).
    hard_cases_only
        The engine is only for regions flagged hard (diffusion models: slow, GPU).
    heavy
        Needs most of the device's memory: the manager keeps at most one heavy engine
        loaded and frees it before loading another.
    """

    name: ClassVar[str]
    pad_mod: ClassVar[int] = 8
    max_side_px: ClassVar[int] = 512
    context_factor: ClassVar[float] = 1.0
    min_context_px: ClassVar[int] = 32
    hard_cases_only: ClassVar[bool] = False
    heavy: ClassVar[bool] = False

    def __init__(self, config: EnginesConfig) -> None:
        self.config = config
        self.loaded = False

    # --- what each engine implements -------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def available(cls, config: EnginesConfig) -> tuple[bool, str]:
        """Whether the engine can run with ``config`` here, and a one-line reason.

        Must not load weights or import torch/diffusers (``doctor`` calls it for every
        engine); checks only configured paths, importable packages and devices.
        """

    @abc.abstractmethod
    def load(self) -> None:
        """Load weights onto the device; raises :class:`EngineError` with a clear reason."""

    @abc.abstractmethod
    def forward(self, image: np.ndarray, hole: np.ndarray, *, seed: int) -> np.ndarray:
        """Run the model on a padded working crop.

        Parameters
        ----------
        image : (h, w, 3) float32 ndarray
            RGB in [0, 1]; ``h`` and ``w`` are multiples of :meth:`padding_multiple`.
        hole : (h, w) bool ndarray
            True where pixels are to be replaced (never empty).
        seed : int
            For engines that sample noise.

        Returns
        -------
        (h, w, 3) float32 ndarray
            The model's picture; only its pixels inside ``hole`` are used.
        """

    def unload(self) -> None:
        """Drop references to model memory (the manager then frees device caches)."""
        self.loaded = False

    # --- shared steps ---------------------------------------------------------------

    @property
    def working_max_side_px(self) -> int:
        """Longest side of the working crop; engines may read it from their config."""
        return self.max_side_px

    @property
    def working_min_side_px(self) -> int:
        """Crops with a shorter short side are upscaled to it (0: never upscale)."""
        return 0

    def padding_multiple(self) -> int:
        """Working sizes are padded to multiples of this; engines whose model decides it
        after loading override it."""
        return self.pad_mod

    @classmethod
    def crop_margin(cls, hole_width: int, hole_height: int) -> int:
        """Context (px) a caller should keep around a hole's bounding box for this engine."""
        return max(cls.min_context_px, int(math.ceil(cls.context_factor * max(hole_width, hole_height))))

    def working_scale(self, crop_height: int, crop_width: int) -> float:
        """Scale from the crop to the working resolution.

        ``max(1, min_side / short side)``, capped at ``max_side / long side``: small crops are
        enlarged to the model's working size, big ones reduced, and the long side never
        exceeds ``working_max_side_px``.
        """
        enlarge = max(1.0, self.working_min_side_px / max(1, min(crop_height, crop_width)))
        return min(enlarge, self.working_max_side_px / max(crop_height, crop_width))

    def __call__(self, image: np.ndarray, hole: np.ndarray, *, seed: int = 0) -> np.ndarray:
        """Inpaint ``hole`` in ``image``.

        Parameters
        ----------
        image : (h, w, 3) ndarray
            RGB in [0, 1] (float32 is used as is; other floats are converted).
        hole : (h, w) bool ndarray
            True where pixels are replaced.
        seed : int
            Noise seed for sampling engines.

        Returns
        -------
        (h, w, 3) float32 ndarray
            Equal to ``image`` outside ``hole`` bit for bit; the model's fill inside.
        """
        image, hole = _check_inputs(image, hole)
        fill = image.copy()
        if not hole.any():
            return fill
        if not self.loaded:
            self.load()
            self.loaded = True
        window = self._context_window(hole)
        crop, crop_hole = image[window], hole[window]
        height, width = crop_hole.shape
        scale = self.working_scale(height, width)
        work, work_hole = crop, crop_hole
        if scale > 1.0:
            size = (round(width * scale), round(height * scale))
            work = cv2.resize(crop, size, interpolation=cv2.INTER_CUBIC)
            # every working pixel touching the hole is a hole pixel, so reducing the prediction
            # back (area average) reads only predicted pixels inside the photo's hole
            spread = cv2.resize(crop_hole.astype(np.float32), size, interpolation=cv2.INTER_LINEAR) > 0
            work_hole = cv2.dilate(spread.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
        elif scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            work = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
            # any hole pixel in a working pixel makes it a hole pixel: nothing of the spot
            # survives into the model's input
            work_hole = cv2.resize(crop_hole.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
            # and the model fills RESAMPLE_REACH working px more, so resizing the prediction
            # back never mixes in pixels it did not predict
            reach = 2 * RESAMPLE_REACH + 1
            work_hole = cv2.dilate(work_hole.astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0
        work_height, work_width = work_hole.shape
        multiple = self.padding_multiple()
        padded = pad_to_multiple(work, multiple)
        padded_hole = pad_to_multiple(work_hole, multiple)
        predicted = self.forward(np.ascontiguousarray(padded), np.ascontiguousarray(padded_hole), seed=seed)
        predicted = np.asarray(predicted, dtype=np.float32)[:work_height, :work_width]
        if scale > 1.0:
            predicted = cv2.resize(predicted, (width, height), interpolation=cv2.INTER_AREA)
        elif scale < 1.0:
            predicted = cv2.resize(predicted, (width, height), interpolation=cv2.INTER_CUBIC)
        np.clip(predicted, 0.0, 1.0, out=predicted)
        fill[window][crop_hole] = predicted[crop_hole]
        log.debug(
            "inpaint",
            engine=self.name,
            crop=(width, height),
            working=(work_width, work_height),
            padded=padded.shape[1::-1],
        )
        return fill

    def _context_window(self, hole: np.ndarray) -> tuple[slice, slice]:
        rows = np.flatnonzero(hole.any(axis=1))
        cols = np.flatnonzero(hole.any(axis=0))
        y0, y1 = int(rows[0]), int(rows[-1]) + 1
        x0, x1 = int(cols[0]), int(cols[-1]) + 1
        margin = self.crop_margin(x1 - x0, y1 - y0)
        height, width = hole.shape
        return (
            slice(max(0, y0 - margin), min(height, y1 + margin)),
            slice(max(0, x0 - margin), min(width, x1 + margin)),
        )


def _check_inputs(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.asarray(image)
    hole = np.asarray(hole)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be (h, w, 3), got shape {image.shape}")
    if hole.shape != image.shape[:2]:
        raise ValueError(f"hole must be {image.shape[:2]}, got {hole.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be float RGB in [0, 1], got {image.dtype}")
    return np.ascontiguousarray(image, dtype=np.float32), hole.astype(bool, copy=False)
