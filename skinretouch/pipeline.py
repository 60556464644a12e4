"""The in-memory pipeline: detect → dilate → split into regions → route → remove → composite.

:class:`Retoucher` holds what is loaded once per process (the detector, warmed kernels)
and works on float32 RGB arrays. It knows nothing of files or reports: the file stage
(:mod:`skinretouch.files`) wraps it for photos on disk.
"""

from __future__ import annotations

import collections
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .config import Config
from .engines.inpaint_base import EngineError
from .engines.manager import EngineManager, choose_engine, engine_class
from .detection.factory import build_detector
from .detection.faces import DEFAULT_FACE_MODEL, face_scale, load_face_model
from .detection.types import Detection
from .imageio import STORED_DEPTH, STORED_DTYPE, from_float, from_float_consuming, to_float, unit_floats
from .kernels import removal
from .kernels.composite import composite, feather_alpha
from .kernels.labels import lazy_zeros, sparse_copy
from .kernels.removal_batch import fill_spots
from .kernels.texture import texture_ratio
from .logs import get_logger
from .regions import Region, build_regions, detection_from_mask
from .results import Patch, RegionRecord, RetouchResult
from .routes import CLASSICAL, ENGINE_BY_ROUTE, NEED_HARD, NEED_MEDIUM, ROUTE_BY_ENGINE, ROUTE_FREQSPLIT
from .timing import ms_since

__all__ = ["OwnedPhoto", "Patch", "RetouchResult", "Retoucher"]

log = get_logger(__name__)

# Below this many pixels a texture ratio is mostly noise, so it flags nothing.
MIN_TEXTURE_AREA_PX = 40
# Work bundles per region thread (see _work_bundles).
BUNDLES_PER_THREAD = 4
# How far outside [0, 1] a float photo may stray (rounding of a caller's own conversion).
UNIT_RANGE_SLACK = 1e-3


class OwnedPhoto:
    """A photo handed to :meth:`Retoucher.retouch` with its only reference: its stored
    integers (uint8 or uint16, as decoded), or floats in [0, 1] of a ``bit_depth`` photo.

    The repair reads only crops, converting each to floats exactly. A detector that reads
    stored integers (``reads_stored_integers``, the classical one) reads them too, so no float
    copy of the whole photo is ever made (at 2048 x 2048: 50 ms and 50 MB; at 100 megapixels:
    1.2 GB). Another detector gets a float copy, dropped once it is done. Floats handed over
    become the stored integers in their own memory once detection is done
    (:func:`~skinretouch.imageio.from_float_consuming`). The result's ``original`` is the
    stored integer photo.
    """

    def __init__(self, pixels: np.ndarray, bit_depth: int) -> None:
        self._pixels: np.ndarray | None = pixels
        self.bit_depth = bit_depth

    def take(self) -> np.ndarray:
        """The float photo; this holder keeps no reference to it afterwards."""
        if self._pixels is None:
            raise ValueError("the photo was already taken")
        pixels, self._pixels = self._pixels, None
        return pixels


class Retoucher:
    """Loads the detector once and retouches images with one configuration.

    Parameters
    ----------
    config : Config
        The validated configuration tree.
    engines : EngineManager, optional
        Neural engines to use (tests register small fakes); by default the configured ones.
    references : list of (image, mask), optional
        1-3 examples of a defect kind to find (reference mode) instead of the configured ones.
    """

    def __init__(
        self,
        config: Config,
        *,
        engines: EngineManager | None = None,
        references: list[tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        self.config = config
        self.detector = build_detector(config.detect, references=references)
        self.engines = engines if engines is not None else EngineManager(config.engines)
        self.threads = config.removal.threads or os.cpu_count() or 1
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._warming: threading.Thread | None = None

    def close(self) -> None:
        """Stop the region threads and free the neural engines' memory."""
        if self._warming is not None:
            self._warming.join()  # it may still be using the threads and engines freed here
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
        self.engines.close()

    def _region_pool(self) -> ThreadPoolExecutor:
        """The threads that repair regions, started once: starting threads for every photo
        cost more than repairing a small spot."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="skinretouch-region")
            return self._pool

    def __enter__(self) -> Retoucher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def warm_up_in_background(self) -> threading.Thread:
        """Load the face model and the removal's kernels on a thread of its own; the thread.

        A one-shot run (``skinretouch process``) would otherwise load them one after the
        other on the first photo's path; on this thread they load while the photo is read
        (the face model's creation runs outside the GIL). Only the loading: a synthetic
        photo's face search here held the landmarker's lock between its own calls while the
        photo waited for it, and warming the detection kernels as well gained nothing
        measurable (the photo's detection loads them as it goes). A failure here is logged
        and left to the photo to meet.
        """

        def run() -> None:
            try:
                self.warm_up(detect=False)
            except Exception:  # the photo's own run reports any real problem
                log.warning("warm_up_failed", exc_info=True)

        self._warming = threading.Thread(target=run, name="skinretouch-warm-up", daemon=True)
        self._warming.start()
        return self._warming

    def warm_up(self, *, detect: bool = True) -> None:
        """Load the face model, and the kernels on a tiny synthetic photo, so that the first
        real photo is fast (the removal's kernels only, without ``detect``)."""
        load_face_model(self.config.detect.face_model or str(DEFAULT_FACE_MODEL))
        image = _synthetic_skin(96)
        mask = np.zeros((96, 96), bool)
        mask[20:26, 20:26] = True
        mask[50:72, 50:72] = True
        # The stored bytes, as the file stage hands a photo over: loading the float
        # specialisation of the batch fill as well cost start-up time for nothing. The
        # face-free size guess for the scale: the patch has no face to parse.
        self._repaired(image.copy(), detection_from_mask(mask, scale=None), dilation_px=0, timings={})
        if detect:
            self.retouch(OwnedPhoto(image.copy(), 8))

    def retouch(self, image: np.ndarray | OwnedPhoto, *, mask: np.ndarray | None = None,
                orientation: int = 1) -> RetouchResult:
        """Retouch one image.

        Parameters
        ----------
        image : (H, W, 3) ndarray, RGB, or an :class:`OwnedPhoto`
            Floats in [0, 1], or stored integers (uint8: an 8-bit photo, uint16: a 16-bit
            one), which are copied: ``image`` itself is never changed. An :class:`OwnedPhoto`
            is consumed. The result's ``original`` is the stored integers where it was given
            integers.
        mask : (H, W) bool ndarray, optional
            Pixels to replace exactly (no detection, no dilation). Without it, blemishes
            are detected and their masks dilated by ``mask.dilation_px``.
        orientation : int
            The photo's EXIF orientation (1..8): faces are parsed on the upright view, the
            result stays in the stored grid.
        """
        bit_depth = None
        if isinstance(image, OwnedPhoto):
            bit_depth = image.bit_depth
            image = image.take()
        elif image.dtype in STORED_DEPTH:
            bit_depth = STORED_DEPTH[image.dtype]
            image = np.array(image, copy=True)  # the repair writes into it
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be (H, W, 3), got {image.shape}")
        if bit_depth is None:
            _check_unit_range(image)
        if mask is not None and np.shape(mask) != image.shape[:2]:
            raise ValueError(f"mask must be (H, W) = {image.shape[:2]}, the image's, got {np.shape(mask)}")
        if orientation not in range(1, 9):
            raise ValueError(f"orientation must be an EXIF orientation, 1 to 8, got {orientation!r}")
        stored = bit_depth is not None and image.dtype == STORED_DTYPE.get(bit_depth)
        image = np.ascontiguousarray(image) if stored else np.ascontiguousarray(image, dtype=np.float32)
        timings: dict[str, float] = {}

        started = time.perf_counter()
        if mask is None:
            seen = image
            if stored and not getattr(self.detector, "reads_stored_integers", False):
                seen = to_float(image)
            detection = self.detector.detect(seen, orientation=orientation)
            del seen
            dilation_px = self.config.mask.dilation_px
        else:
            detection = detection_from_mask(mask, scale=self._photo_scale(image, orientation))
            dilation_px = 0
        timings["detect"] = ms_since(started)

        if bit_depth is not None and not stored:
            # ``image`` is the only reference left: the floats become the stored integers in
            # their own memory (see OwnedPhoto); the repair converts crops back exactly.
            image = from_float_consuming(image, bit_depth)
        return self._repaired(image, detection, dilation_px=dilation_px, timings=timings)

    def _repaired(self, image: np.ndarray, detection: Detection, *, dilation_px: int,
                  timings: dict[str, float]) -> RetouchResult:
        """The result of repairing ``detection``'s spots in ``image`` (floats or the stored
        integers); the repair's time is added to ``timings``."""
        started = time.perf_counter()
        regions = build_regions(detection, dilation_px=dilation_px, route=self.config.route)
        avoid = sparse_copy(detection.protected_mask)
        for region in regions:
            x, y, w, h = region.bbox
            avoid[y : y + h, x : x + w] |= region.hole
        if detection.background is not None:
            # Neither tone nor texture from what is not skin: a spot by a black border or a
            # dark backdrop had that colour carried into its fill (a dark smear on an ear).
            _avoid_background(avoid, detection.background, regions, removal.crop_margin(detection.scale))
        # The blend ramp stays within the ring the dilation added: a user's exact mask is
        # replaced whole, not blended back towards the blemish at its edge.
        feather_px = min(self.config.mask.feather_px, dilation_px)

        repairs = self._repair_regions(image, regions, avoid, detection.scale, feather_px=feather_px)
        timings["inpaint"] = ms_since(started)

        applied = lazy_zeros(image.shape[:2], bool)
        patches, records = [], []
        area = image.shape[0] * image.shape[1]
        for region, (patch, record) in zip(regions, repairs):
            applied[patch.window] |= patch.hole
            patches.append(patch)
            record.area_fraction = region.area_px / area
            records.append(record)
        return RetouchResult(
            original=image,
            patches=patches,
            applied_mask=applied,
            regions=records,
            detection=detection,
            timings_ms=timings,
        )

    def _photo_scale(self, image: np.ndarray, orientation: int) -> float | None:
        """The face scale of the photo a user's mask lies on, from the detector's face parsing
        (None: guessed from the photo's size). The fill's texture band is set by it: at the
        size guess, a large mask on a 24 MP portrait (face scale 10, guess 3.9) came out
        flatter than the skin around it, and on a crop of one (guess 1.5) smooth as plastic."""
        return face_scale(image, orientation=orientation,
                          model_path=self.config.detect.face_model or str(DEFAULT_FACE_MODEL))  # fmt: skip

    def _repair_regions(
        self, image: np.ndarray, regions: list[Region], avoid: np.ndarray, scale: float, *, feather_px: int
    ) -> list[tuple[Patch, RegionRecord]]:
        """Repair every region, on the region threads when there is more than one piece of work.

        Small spots on the classical route are filled in a few jitted calls that run without
        the GIL (:mod:`.kernels.removal_batch`), in bundles the threads take in turn; any other
        region is repaired on its own. Every piece of work reads only the input, so neither the grouping
        nor the order changes a pixel.
        """
        engines = [self._choose_engine(region) for region in regions]
        batched = [i for i, region in enumerate(regions)
                   if engines[i][0] == CLASSICAL and region.route == ROUTE_FREQSPLIT]  # fmt: skip
        single = sorted(set(range(len(regions))) - set(batched), key=lambda i: -regions[i].area_px)
        margin = removal.crop_margin(scale)
        groups = _work_bundles(batched, [_crop_area(regions[i], margin) for i in batched], self.threads)

        def fill_group(group: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
            return fill_spots(
                image,
                np.array([regions[i].bbox for i in group], np.int64),
                [regions[i].hole for i in group],
                avoid,
                seeds=np.array([self.config.removal.seed + regions[i].id for i in group], np.int64),
                scale=scale,
                margin=margin,
                min_ratio_area=MIN_TEXTURE_AREA_PX,
            )

        def repair(i: int) -> tuple[Patch, RegionRecord]:
            engine_name, fallback_reason = engines[i]
            return self._repair(image, regions[i], avoid, scale, feather_px=feather_px,
                                engine_name=engine_name, fallback_reason=fallback_reason)  # fmt: skip

        repairs: list[tuple[Patch, RegionRecord] | None] = [None] * len(regions)
        if self.threads > 1 and len(groups) + len(single) > 1:
            pool = self._region_pool()
            pending = collections.deque(groups)
            taking = threading.Lock()

            def drain() -> list[tuple[list[int], tuple[list[np.ndarray], np.ndarray]]]:
                # Each thread takes the next bundle when it is done with one, heaviest first:
                # a fixed split by estimated work left one core idle for a second at
                # 100 megapixels, where a spot's cost follows its crop's area only loosely.
                done = []
                while True:
                    with taking:
                        if not pending:
                            return done
                        group = pending.popleft()
                    done.append((group, fill_group(group)))

            single_futures = {i: pool.submit(repair, i) for i in single}
            helpers = [pool.submit(drain) for _ in range(min(self.threads - 1, len(groups)))]
            group_results = drain()  # this thread works too rather than wait idle
            group_results += [result for helper in helpers for result in helper.result()]
            for i, future in single_futures.items():
                repairs[i] = future.result()
        else:
            group_results = [(group, fill_group(group)) for group in groups]
            for i in single:
                repairs[i] = repair(i)
        for group, (filled, ratios) in group_results:
            for i, filled_box, ratio in zip(group, filled, ratios):
                repairs[i] = self._finish(image, regions[i], avoid, scale, feather_px=feather_px,
                                          engine_name=CLASSICAL, route=ROUTE_FREQSPLIT, filled_box=filled_box,
                                          ratio=float(ratio), fallback_reason=engines[i][1])  # fmt: skip
        return repairs

    def _repair(
        self,
        image: np.ndarray,
        region: Region,
        avoid: np.ndarray,
        scale: float,
        *,
        feather_px: int,
        engine_name: str,
        fallback_reason: str | None,
    ) -> tuple[Patch, RegionRecord]:
        """Fill one region on its crop; reads only the input image, so regions run in any order."""
        route, filled_box, ratio, failure = self._fill_on_crop(engine_name, image, region, avoid, scale)
        return self._finish(image, region, avoid, scale, feather_px=feather_px, engine_name=engine_name,
                            route=route, filled_box=filled_box, ratio=ratio,
                            fallback_reason=_join_reasons(fallback_reason, failure))  # fmt: skip

    def _fill_on_crop(
        self, engine_name: str, image: np.ndarray, region: Region, avoid: np.ndarray, scale: float
    ) -> tuple[str, np.ndarray, float, str | None]:
        """Fill with ``engine_name`` (or classically) on a crop around the region; returns
        (route, the region's box after the fill, its texture ratio, failure reason)."""
        x, y, w, h = region.bbox
        margin = removal.crop_margin(scale, max(w, h))
        if engine_name != CLASSICAL:
            margin = max(margin, engine_class(engine_name, self.engines.table).crop_margin(w, h))
        height, width = image.shape[:2]
        x0, y0 = max(0, x - margin), max(0, y - margin)
        x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
        window = (slice(y0, y1), slice(x0, x1))
        crop = unit_floats(image[window])
        hole = np.zeros(crop.shape[:2], bool)
        hole[y - y0 : y - y0 + h, x - x0 : x - x0 + w] = region.hole
        crop_avoid = avoid[window] & ~hole
        seed = self.config.removal.seed + region.id
        route, filled, failure = self._fill(engine_name, region.route, crop, hole, crop_avoid, scale, seed)
        ratio = _texture_ratio(filled, hole, crop_avoid, scale)
        return route, filled[y - y0 : y - y0 + h, x - x0 : x - x0 + w], ratio, failure

    def _finish(
        self,
        image: np.ndarray,
        region: Region,
        avoid: np.ndarray,
        scale: float,
        *,
        feather_px: int,
        engine_name: str,
        route: str,
        filled_box: np.ndarray,
        ratio: float,
        fallback_reason: str | None,
    ) -> tuple[Patch, RegionRecord]:
        """Judge a fill's texture, redo it with the hard-case engine when it fails and one is
        available, and blend it into the region's box."""
        config = self.config
        if not _in_band(ratio, config.route.texture_ratio_min, config.route.texture_ratio_max):
            region.hard_reasons.append("texture_ratio_out_of_band")
            hard_engine = choose_engine(NEED_HARD, self.engines, config.engines)[0]
            if hard_engine not in (CLASSICAL, engine_name):
                hard_route, hard_box, hard_ratio, failure = self._fill_on_crop(hard_engine, image, region, avoid, scale)
                if failure is None:
                    route, filled_box, ratio = hard_route, hard_box, hard_ratio
                fallback_reason = _join_reasons(fallback_reason, failure)

        x, y, w, h = region.bbox
        window = (slice(y, y + h), slice(x, x + w))
        if feather_px == 0:
            values = filled_box[region.hole]
        else:
            # Only the hole's pixels are kept: the blend ramp lies inside it.
            alpha = feather_alpha(region.hole, feather_px=feather_px)
            values = composite(unit_floats(image[window]), filled_box, alpha)[region.hole]
        patch = Patch(window=window, hole=region.hole, values=np.ascontiguousarray(values))
        record = RegionRecord(
            id=region.id,
            bbox=region.bbox,
            area_px=region.area_px,
            area_fraction=0.0,
            kind=region.kind,
            score=region.score,
            route=route,
            engine=ENGINE_BY_ROUTE[route],
            hard_case=bool(region.hard_reasons),
            hard_reasons=list(region.hard_reasons),
            texture_ratio=None if math.isnan(ratio) else float(ratio),
            fallback_reason=fallback_reason,
        )
        return patch, record

    def _choose_engine(self, region: Region) -> tuple[str, str | None]:
        """Small spots stay classical; medium ones want LaMa, hard ones FLUX (with fallbacks)."""
        if region.hard_reasons:
            wanted = NEED_HARD
        elif region.size == NEED_MEDIUM:
            wanted = NEED_MEDIUM
        else:
            return CLASSICAL, None
        return choose_engine(wanted, self.engines, self.config.engines)

    def _fill(
        self,
        engine_name: str,
        classical_route: str,
        crop: np.ndarray,
        hole: np.ndarray,
        avoid: np.ndarray,
        scale: float,
        seed: int,
    ) -> tuple[str, np.ndarray, str | None]:
        """Fill with a neural engine, or classically; returns (route, fill, failure reason)."""
        failure = None
        if engine_name != CLASSICAL:
            try:
                fill = self.engines.inpaint(engine_name, crop, hole, seed=seed)
                # Neural fills are smooth at pore scale: put real skin texture back.
                textured = removal.reinject_high_frequencies(fill, crop, hole, avoid=avoid, scale=scale, seed=seed)
                return ROUTE_BY_ENGINE[engine_name], textured, None
            except EngineError as exc:
                failure = f"{engine_name} failed: {exc}"
        if classical_route == ROUTE_FREQSPLIT:
            filled = removal.remove_freqsplit(crop, hole, avoid=avoid, scale=scale, seed=seed)
        else:
            filled = removal.remove_patchmatch_poisson(
                crop,
                hole,
                avoid=avoid,
                scale=scale,
                patch_size=self.config.removal.patchmatch_patch_size,
                seed=seed,
            )
        return classical_route, filled, failure


def _check_unit_range(image: np.ndarray) -> None:
    """A ValueError unless ``image`` holds floats in [0, 1] (bytes passed as floats, 0-255,
    would otherwise be "retouched" into nonsense without a word)."""
    if image.dtype.kind not in "fiub":
        raise ValueError(f"image must hold floats in [0, 1] or stored integers, got dtype {image.dtype}")
    low, high = float(np.min(image)), float(np.max(image))
    if not (-UNIT_RANGE_SLACK <= low and high <= 1.0 + UNIT_RANGE_SLACK):  # NaN fails too
        hint = " (8-bit values? pass them as uint8)" if high > 1.0 + UNIT_RANGE_SLACK else ""
        raise ValueError(f"float image values must lie in [0, 1], got {low:g} to {high:g}{hint}")


def _synthetic_skin(side: int) -> np.ndarray:
    """A ``side`` x ``side`` uint8 patch of skin tone with a fine deterministic texture (no
    random generator: importing numpy's held the GIL for 11 ms of a photo's start-up)."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    texture = 0.02 * np.sin(1.7 * x + 0.9 * y) * np.cos(0.8 * x - 1.3 * y)
    return from_float(0.6 + texture[..., None] * np.float32([1.0, 0.9, 0.8]), 8)


def _crop_area(region: Region, margin: int) -> int:
    """Work estimate of a small spot's fill: the area of its crop."""
    _, _, width, height = region.bbox
    return (width + 2 * margin) * (height + 2 * margin)


def _work_bundles(items: list[int], costs: list[int], threads: int) -> list[list[int]]:
    """``items`` in bundles for threads that each take the next one when done, heaviest first.

    A bundle gathers items, heaviest first, until it holds about 1 / (BUNDLES_PER_THREAD *
    ``threads``) of the total cost (a heavy item makes one alone): few enough calls that
    small spots are not a Python call each, fine enough that the threads end together.
    Each bundle keeps the items' order.
    """
    if not items:
        return []
    target = sum(costs) / (BUNDLES_PER_THREAD * max(1, threads))
    bundles: list[list[int]] = []
    current: list[int] = []
    load = 0
    for cost, item in sorted(zip(costs, items), key=lambda pair: -pair[0]):
        current.append(item)
        load += cost
        if load >= target:
            bundles.append(sorted(current))
            current, load = [], 0
    if current:
        bundles.append(sorted(current))
    return bundles


def _avoid_background(avoid: np.ndarray, background, regions: list[Region], margin: int) -> None:
    """Mark ``background`` in ``avoid`` within ``margin`` of every region (the crops a fill
    reads), window by window: the whole-photo map stays sparse."""
    height, width = avoid.shape
    for region in regions:
        x, y, w, h = region.bbox
        y0, y1 = max(0, y - margin), min(height, y + h + margin)
        x0, x1 = max(0, x - margin), min(width, x + w + margin)
        avoid[y0:y1, x0:x1] |= background.window(y0, y1, x0, x1)


def _texture_ratio(filled: np.ndarray, hole: np.ndarray, avoid: np.ndarray, scale: float) -> float:
    if hole.sum() < MIN_TEXTURE_AREA_PX:
        return math.nan
    return float(texture_ratio(filled, hole, scale=scale, avoid=avoid))


def _in_band(ratio: float, low: float, high: float) -> bool:
    return math.isnan(ratio) or low <= ratio <= high


def _join_reasons(*reasons: str | None) -> str | None:
    return "; ".join(reason for reason in reasons if reason) or None
