"""Real acne: lesion labels for ``../shared/real-acne`` and how a detection mask is scored on them.

The photos are never copied into the project; ``bench/real_acne_labels.json`` keys each label set
by file name and the file's sha256. A lesion is a box ``[x0, y0, x1, y1]`` (pixels, x1/y1
exclusive) and a kind from ``LESION_KINDS``; papules, pustules and nodules are *inflamed*.

Definitions (all on the detector's mask in the stored pixel grid):

- **lesion ellipse**: the ellipse inscribed in the box; its **core** is the same ellipse shrunk to
  ``CORE_FRACTION`` of its radii about the centre (never empty: it holds at least the centre pixel).
- **found**: the mask covers at least ``FOUND_CORE_COVERAGE`` of the core's pixels.
- **inflamed area removed**: masked pixels of the union of inflamed lesion ellipses / its size.
- **false region**: a connected mask component (8-connected) touching no lesion box grown by
  ``FALSE_REGION_SLACK_PX``.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = [
    "INFLAMED_KINDS",
    "LESION_KINDS",
    "Lesion",
    "default_real_acne_dir",
    "load_labels",
    "score_mask",
]

LESION_KINDS = ("papule", "pustule", "nodule", "blackhead", "whitehead", "red_mark", "brown_mark")
INFLAMED_KINDS = ("papule", "pustule", "nodule")
CORE_FRACTION = 0.6
FOUND_CORE_COVERAGE = 0.5
FALSE_REGION_SLACK_PX = 3
LABELS_PATH = Path(__file__).resolve().parents[2] / "bench" / "real_acne_labels.json"


@dataclass(frozen=True)
class Lesion:
    box: tuple[int, int, int, int]
    kind: str

    @property
    def inflamed(self) -> bool:
        return self.kind in INFLAMED_KINDS


def default_real_acne_dir() -> Path:
    """``$SKINRETOUCH_REAL_ACNE`` or ``../shared/real-acne`` beside the repository."""
    override = os.environ.get("SKINRETOUCH_REAL_ACNE")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2].parent / "shared" / "real-acne"


def load_labels(path: Path | None = None) -> dict[str, dict]:
    """``{file name: {"sha256", "size": [w, h], "lesions": [Lesion]}}``, validated."""
    path = Path(path) if path is not None else LABELS_PATH
    data = json.loads(path.read_text())
    photos = {}
    for name, entry in data["photos"].items():
        width, height = entry["size"]
        lesions = []
        for item in entry["lesions"]:
            x0, y0, x1, y1 = (int(v) for v in item["box"])
            if item["kind"] not in LESION_KINDS:
                raise ValueError(f"{name}: unknown lesion kind {item['kind']!r}")
            if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
                raise ValueError(f"{name}: box {item['box']} outside the {width}x{height} photo")
            lesions.append(Lesion((x0, y0, x1, y1), item["kind"]))
        photos[name] = {"sha256": entry["sha256"], "size": (width, height), "lesions": lesions}
    return photos


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def lesion_ellipse(box, shape, *, fraction: float = 1.0) -> np.ndarray:
    """Pixels of the ellipse inscribed in ``box``, its radii times ``fraction`` (centre always in)."""
    x0, y0, x1, y1 = box
    cy, cx = (y0 + y1 - 1) / 2.0, (x0 + x1 - 1) / 2.0
    ry, rx = max(0.5, (y1 - y0) / 2.0 * fraction), max(0.5, (x1 - x0) / 2.0 * fraction)
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    inside[min(shape[0] - 1, int(round(cy))), min(shape[1] - 1, int(round(cx)))] = True
    return inside


def score_mask(mask: np.ndarray, lesions: list[Lesion]) -> dict:
    """Recall, inflamed area removed and false regions of one photo's mask (see module doc)."""
    mask = np.asarray(mask, dtype=bool)
    shape = mask.shape
    found = []
    inflamed_area = np.zeros(shape, dtype=bool)
    near_lesion = np.zeros(shape, dtype=bool)
    for lesion in lesions:
        core = lesion_ellipse(lesion.box, shape, fraction=CORE_FRACTION)
        found.append(bool(mask[core].mean() >= FOUND_CORE_COVERAGE))
        if lesion.inflamed:
            inflamed_area |= lesion_ellipse(lesion.box, shape)
        x0, y0, x1, y1 = lesion.box
        slack = FALSE_REGION_SLACK_PX
        near_lesion[max(0, y0 - slack) : y1 + slack, max(0, x0 - slack) : x1 + slack] = True
    labels, count = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    touching = np.unique(labels[near_lesion & mask])
    false_regions = count - int(np.count_nonzero(touching))
    per_kind: dict[str, list[int]] = {}
    for lesion, hit in zip(lesions, found):
        tally = per_kind.setdefault(lesion.kind, [0, 0])
        tally[0] += int(hit)
        tally[1] += 1
    inflamed = [hit for lesion, hit in zip(lesions, found) if lesion.inflamed]
    return {
        "n_lesions": len(lesions),
        "found": int(sum(found)),
        "n_inflamed": len(inflamed),
        "inflamed_found": int(sum(inflamed)),
        "inflamed_area_px": int(inflamed_area.sum()),
        "inflamed_area_masked_px": int((inflamed_area & mask).sum()),
        "false_regions": int(false_regions),
        "per_kind": per_kind,
        "mask_fraction": float(mask.mean()),
    }
