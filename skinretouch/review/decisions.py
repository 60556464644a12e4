"""What the photographer decided, applied to the files: re-render, approve, undo.

Apply re-renders from the untouched original through the exact-mask path (the same as
``skinretouch process --mask``) with the accepted regions' pixels of the automatic mask
plus the brushed strokes. The automatic outputs are kept first under the photo's hidden
review folder, so "undo" restores them byte for byte. Outputs are staged there and then
written atomically over the old ones, the report last; the original is only ever read.
The report keeps schema 1 and gains one ``review`` object.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ..atomic import atomic_write_bytes
from ..files.report import read_report
from ..files.stage import encode_mask_png, process_file
from ..imageio.masks import read_mask
from .catalog import Photo

if TYPE_CHECKING:
    from ..pipeline import Retoucher

__all__ = ["Decision", "ReviewError", "Reviewer", "accepted_mask", "rasterize_strokes"]

MAX_STROKES = 2000
MAX_POINTS = 200_000


class ReviewError(Exception):
    """A decision could not be applied (the outputs are left as they were)."""


@dataclass(kw_only=True)
class Stroke:
    """A brush stroke in the photo's stored pixel grid: a polyline of this radius."""

    radius: float
    points: list[tuple[float, float]]


@dataclass(kw_only=True)
class Decision:
    """The photographer's corrections to one photo's automatic result."""

    rejected: list[int] = field(default_factory=list)  # regions put back to the original
    kept: list[int] = field(default_factory=list)  # moles/freckles the detector took: also put back
    strokes: list[Stroke] = field(default_factory=list)  # spots the detector missed

    @classmethod
    def from_json(cls, data: Any) -> Decision:
        """Parse the page's request body; raises ReviewError naming what is wrong."""
        if not isinstance(data, dict):
            raise ReviewError("the decision must be a JSON object")
        rejected = _ids(data.get("rejected", []), "rejected")
        kept = _ids(data.get("kept", []), "kept")
        raw_strokes = data.get("strokes", [])
        if not isinstance(raw_strokes, list) or len(raw_strokes) > MAX_STROKES:
            raise ReviewError(f"strokes must be a list of at most {MAX_STROKES}")
        strokes, total = [], 0
        for raw in raw_strokes:
            try:
                radius = float(raw["radius"])
                points = [(float(x), float(y)) for x, y in raw["points"]]
            except (KeyError, TypeError, ValueError):
                raise ReviewError("each stroke needs a radius and a list of [x, y] points") from None
            if not 0.5 <= radius <= 2000 or not points or not all(map(np.isfinite, np.ravel(points))):
                raise ReviewError("a stroke's radius must be 0.5-2000 px and its points finite")
            total += len(points)
            strokes.append(Stroke(radius=radius, points=points))
        if total > MAX_POINTS:
            raise ReviewError(f"at most {MAX_POINTS} stroke points")
        return cls(rejected=sorted(set(rejected) - set(kept)), kept=sorted(set(kept)), strokes=strokes)

    def strokes_json(self) -> list[dict[str, Any]]:
        return [{"radius": round(s.radius, 2), "points": [[round(x, 1), round(y, 1)] for x, y in s.points]}
                for s in self.strokes]  # fmt: skip


def rasterize_strokes(strokes: list[Stroke], height: int, width: int) -> np.ndarray:
    """The pixels the strokes cover, as an (H, W) bool mask."""
    canvas = np.zeros((height, width), np.uint8)
    for stroke in strokes:
        thickness = max(1, round(2 * stroke.radius))
        points = np.rint(np.array(stroke.points)).astype(np.int32)
        for x, y in points:
            cv2.circle(canvas, (int(x), int(y)), max(1, round(stroke.radius)), 255, -1)
        if len(points) > 1:
            cv2.polylines(canvas, [points.reshape(-1, 1, 2)], False, 255, thickness)
    return canvas > 0


def accepted_mask(mask: np.ndarray, regions: list[dict[str, Any]], excluded: set[int]) -> np.ndarray:
    """The automatic mask without the excluded regions' pixels.

    Each connected piece of the mask belongs to the region whose box overlaps it most (a
    region's box holds its dilated hole), so touching boxes never cost a neighbour its spot.
    """
    if not excluded or not mask.any():
        return mask.copy()
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    boxes = np.array([region["bbox"] for region in regions], np.int64).reshape(-1, 4)
    ids = [int(region["id"]) for region in regions]
    keep = np.ones(count, bool)
    keep[0] = False
    for label in range(1, count):
        x, y, w, h = (int(v) for v in stats[label, :4])
        overlap_w = np.minimum(boxes[:, 0] + boxes[:, 2], x + w) - np.maximum(boxes[:, 0], x)
        overlap_h = np.minimum(boxes[:, 1] + boxes[:, 3], y + h) - np.maximum(boxes[:, 1], y)
        overlap = np.clip(overlap_w, 0, None) * np.clip(overlap_h, 0, None)
        if len(ids) and overlap.max() > 0 and ids[int(overlap.argmax())] in excluded:
            keep[label] = False
    return keep[labels]


class Reviewer:
    """Applies decisions to photos, one at a time, with one shared Retoucher."""

    def __init__(self, make_retoucher: Callable[[], Retoucher]) -> None:
        self._make_retoucher = make_retoucher
        self._retoucher: Retoucher | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._retoucher is not None:
                self._retoucher.close()
                self._retoucher = None

    def apply(self, photo: Photo, decision: Decision) -> dict[str, Any]:
        """Re-render ``photo`` from its original with the decision; returns the new report."""
        with self._lock:
            automatic = self._keep_automatic(photo)
            mask = read_mask(automatic["mask"])
            regions = photo.automatic.get("regions") or []
            known = {int(region["id"]) for region in regions}
            unknown = (set(decision.rejected) | set(decision.kept)) - known
            if unknown:
                raise ReviewError(f"no region {sorted(unknown)} in {photo.name}")
            height, width = mask.shape
            added = rasterize_strokes(decision.strokes, height, width)
            combined = accepted_mask(mask, regions, set(decision.rejected) | set(decision.kept)) | added

            state = photo.state_dir
            added_path = state / "added-mask.png"
            atomic_write_bytes(added_path, encode_mask_png(added))
            render_mask = state / "render-mask.png"
            atomic_write_bytes(render_mask, encode_mask_png(combined))
            staging = state / "staging"
            shutil.rmtree(staging, ignore_errors=True)
            if self._retoucher is None:
                self._retoucher = self._make_retoucher()
            outcome = process_file(self._retoucher, photo.input_path, out_dir=staging, mask_path=render_mask, force=True)
            if outcome.status != "ok":
                shutil.rmtree(staging, ignore_errors=True)
                raise ReviewError(f"{photo.name}: re-render failed: {outcome.error}")

            report = read_report(outcome.report_path)
            assert report is not None and outcome.image_path is not None and outcome.mask_path is not None
            image_target = photo.image_path or Path(photo.automatic["outputs"]["image"])
            mask_target = photo.mask_path or Path(photo.automatic["outputs"]["mask"])
            atomic_write_bytes(image_target, outcome.image_path.read_bytes())
            atomic_write_bytes(mask_target, outcome.mask_path.read_bytes())
            report["outputs"] = {"image": str(image_target.absolute()), "mask": str(mask_target.absolute())}
            report["review"] = {
                "status": "applied",
                "reviewed_at": _now(),
                "accepted": sorted(known - set(decision.rejected) - set(decision.kept)),
                "rejected": decision.rejected,
                "kept": decision.kept,
                "added_mask": {
                    "path": str(added_path.absolute()),
                    "pixels": int(added.sum()),
                    "strokes": decision.strokes_json(),
                },
                "automatic_report": str(automatic["report"].absolute()),
            }
            atomic_write_bytes(photo.report_path, _json(report))
            shutil.rmtree(staging, ignore_errors=True)
            render_mask.unlink(missing_ok=True)
            return report

    def approve(self, photo: Photo) -> dict[str, Any]:
        """Record that the automatic result is accepted as it is (no pixel changes)."""
        with self._lock:
            if photo.review is not None:
                return photo.report
            if photo.report.get("status") != "ok":
                raise ReviewError(f"{photo.name} failed to process; there is nothing to approve")
            report = dict(photo.report)
            report["review"] = {
                "status": "approved",
                "reviewed_at": _now(),
                "accepted": sorted(int(region["id"]) for region in report.get("regions") or []),
                "rejected": [],
                "kept": [],
                "added_mask": None,
            }
            atomic_write_bytes(photo.report_path, _json(report))
            return report

    def undo(self, photo: Photo) -> dict[str, Any]:
        """Back to the automatic result: its outputs and report restored, the review dropped."""
        with self._lock:
            saved = photo.state_dir / "automatic"
            if photo.review is None:
                return photo.report
            if photo.review.get("status") == "applied":
                report = read_report(saved / "report.json")
                if report is None:
                    raise ReviewError(f"{photo.name}: the automatic result was not kept; cannot undo")
                image_target = Path(report["outputs"]["image"])
                mask_target = Path(report["outputs"]["mask"])
                atomic_write_bytes(image_target, (saved / "image").read_bytes())
                atomic_write_bytes(mask_target, (saved / "mask.png").read_bytes())
            else:
                report = {key: value for key, value in photo.report.items() if key != "review"}
            atomic_write_bytes(photo.report_path, _json(report))
            shutil.rmtree(photo.state_dir, ignore_errors=True)
            return report

    @staticmethod
    def _keep_automatic(photo: Photo) -> dict[str, Path]:
        """Copy the automatic outputs aside once (before the first apply) and name them."""
        saved = photo.state_dir / "automatic"
        files = {"report": saved / "report.json", "image": saved / "image", "mask": saved / "mask.png"}
        if photo.review is not None and photo.review.get("status") == "applied":
            if not all(path.is_file() for path in files.values()):
                raise ReviewError(f"{photo.name}: the automatic result was not kept; undo first")
            return files
        if photo.report.get("status") != "ok" or photo.image_path is None or photo.mask_path is None:
            raise ReviewError(f"{photo.name} has no automatic result to correct (status {photo.report.get('status')})")
        saved.mkdir(parents=True, exist_ok=True)
        automatic = {key: value for key, value in photo.report.items() if key != "review"}
        atomic_write_bytes(files["image"], photo.image_path.read_bytes())
        atomic_write_bytes(files["mask"], photo.mask_path.read_bytes())
        atomic_write_bytes(files["report"], _json(automatic))  # last: its presence means complete
        photo.automatic = automatic
        return files


def _ids(values: Any, name: str) -> list[int]:
    if not isinstance(values, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ReviewError(f"{name} must be a list of region ids")
    return list(values)


def _json(report: dict[str, Any]) -> bytes:
    import json

    return (json.dumps(report, indent=2) + "\n").encode("utf-8")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
