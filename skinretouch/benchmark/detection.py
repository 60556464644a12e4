"""Detection bench: dev and test side by side, on photos and spot styles the detector was not tuned on.

``python -m skinretouch.benchmark.detection [--quick] [--parts dev test] [--out PATH]``

Everything runs through the public pipeline (``Retoucher(config).retouch`` and, for the EXIF
variant, ``Retoucher.process_file``), so whichever detector the config selects is measured; the
mask scored is the applied mask (what the mask sidecar holds).

Sections, each for the dev and the test part of ``bench/split.toml``:

1. Planted spots: the part's photos with the part's planting style (dev: ``classic``, test:
   ``clustered``). Recall (a spot is found when the mask covers >= 50 % of its core), recall per
   kind, per skin-tone group, false regions (mask components touching no planted footprint) per
   planted spot, moles hit (core >= 20 % covered) by mole radius.
2. Nothing planted: the same photos as they are; every region found there is listed, and mask
   pixels inside the eye, brow and lip outlines of ``bench/photo_regions.json`` are counted.
3. Real acne (``../shared/real-acne``, labels in ``bench/real_acne_labels.json``): recall of
   inflamed lesions, of every labelled lesion, inflamed lesion area removed, false regions (see
   :mod:`.real_acne`). Skipped, saying so, when the folder is absent.
4. Robustness sweep (dev photos, dev style): the same planted photos scaled x0.5 and x2, rotated
   90 degrees and stored with EXIF Orientation 6, JPEG quality 70, spots smaller/larger than the
   dev size ranges and with colours outside the dev ranges; recall per variant, and eye/brow/lip
   pixels hit on the EXIF-rotated photos with nothing planted.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from scipy import ndimage as ndi
from skimage.color import lab2rgb, rgb2lab

from skinretouch.benchmark import planting as classic_planting
from skinretouch.benchmark.metrics import MOLE_HIT_CORE_FRACTION, RECALL_CORE_FRACTION
from skinretouch.benchmark.photoset import TONES, load_set_photos, load_split
from skinretouch.benchmark.real_acne import (
    LESION_KINDS,
    default_real_acne_dir,
    file_sha256,
    load_labels,
    score_mask,
)
from skinretouch.benchmark.styles import planting_style

__all__ = ["main", "run_detection_bench", "score_planted"]

PARTS = ("dev", "test")
VARIANTS = ("base", "scale_0.5", "scale_2", "exif_rot90", "jpeg_q70", "spots_small", "spots_large", "spots_colour")
MOLE_SIZE_BINS = ((0.0, 3.0), (3.0, 6.0), (6.0, math.inf))  # mole radius, px at face scale
QUICK_PHOTOS_PER_PART = 6
QUICK_ACNE_PER_PART = 10
SWEEP_PHOTOS = 8  # dev photos in the sweep (every other one, tones mixed)
EXIF_ORIENTATION_TAG = 0x0112


# --- scoring ----------------------------------------------------------------------------------


def score_planted(mask: np.ndarray, spots, *, scale: float) -> dict:
    """Per-spot tallies of one planted photo: found per kind, false regions, moles by size."""
    mask = np.asarray(mask, dtype=bool)
    kinds: dict[str, list[int]] = {}
    moles = []
    planted = np.zeros(mask.shape, dtype=bool)
    for spot in spots:
        planted |= spot.footprint
        covered = float(mask[spot.core].mean()) if spot.core.any() else 0.0
        if spot.keep:
            radius = math.sqrt(max(1, int(spot.core.sum())) / math.pi) / scale
            moles.append({"radius": radius, "hit": covered >= MOLE_HIT_CORE_FRACTION})
        else:
            tally = kinds.setdefault(spot.kind, [0, 0])
            tally[0] += int(covered >= RECALL_CORE_FRACTION)
            tally[1] += 1
    labels, count = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    touching = np.count_nonzero(np.unique(labels[planted & mask]))
    return {"kinds": kinds, "moles": moles, "false_regions": int(count - touching)}


def summarise_planted(runs: list[dict]) -> dict:
    """Pool per-photo tallies: recall overall, per kind, per tone; false regions; moles by size."""
    kinds: dict[str, list[int]] = {}
    tones: dict[str, list[int]] = {}
    false_regions = 0
    bins = {_bin_name(low, high): [0, 0] for low, high in MOLE_SIZE_BINS}
    for run in runs:
        for kind, (found, total) in run["kinds"].items():
            kinds.setdefault(kind, [0, 0])
            kinds[kind][0] += found
            kinds[kind][1] += total
            tones.setdefault(run["tone"], [0, 0])
            tones[run["tone"]][0] += found
            tones[run["tone"]][1] += total
        false_regions += run["false_regions"]
        for mole in run["moles"]:
            for low, high in MOLE_SIZE_BINS:
                if low <= mole["radius"] < high:
                    bins[_bin_name(low, high)][0] += int(mole["hit"])
                    bins[_bin_name(low, high)][1] += 1
    found = sum(f for f, _ in kinds.values())
    total = sum(t for _, t in kinds.values())
    return {
        "recall": _ratio(found, total),
        "n_spots": total,
        "recall_per_kind": {kind: _ratio(f, t) for kind, (f, t) in sorted(kinds.items())},
        "recall_per_tone": {tone: _ratio(*tones[tone]) for tone in TONES if tone in tones},
        "false_regions": false_regions,
        "false_regions_per_spot": _ratio(false_regions, total),
        "moles_hit": sum(hit for hit, _ in bins.values()),
        "moles": sum(n for _, n in bins.values()),
        "moles_hit_by_radius": {name: f"{hit}/{n}" for name, (hit, n) in bins.items()},
    }


def summarise_real_acne(per_photo: list[dict]) -> dict:
    if not per_photo:
        return {"photos": 0}
    total = {key: sum(p[key] for p in per_photo) for key in
             ("n_lesions", "found", "n_inflamed", "inflamed_found", "inflamed_area_px",
              "inflamed_area_masked_px", "false_regions")}  # fmt: skip
    per_kind: dict[str, list[int]] = {}
    for photo in per_photo:
        for kind, (found, count) in photo["per_kind"].items():
            per_kind.setdefault(kind, [0, 0])
            per_kind[kind][0] += found
            per_kind[kind][1] += count
    return {
        "photos": len(per_photo),
        "lesions": total["n_lesions"],
        "recall_inflamed": _ratio(total["inflamed_found"], total["n_inflamed"]),
        "recall_all": _ratio(total["found"], total["n_lesions"]),
        "inflamed_area_removed": _ratio(total["inflamed_area_masked_px"], total["inflamed_area_px"]),
        "recall_per_kind": {k: _ratio(*per_kind[k]) for k in LESION_KINDS if k in per_kind},
        "false_regions": total["false_regions"],
        "false_regions_per_photo": _ratio(total["false_regions"], len(per_photo)),
        "false_regions_per_lesion": _ratio(total["false_regions"], total["n_lesions"]),
        "photos_nothing_found": sum(1 for p in per_photo if p["found"] == 0),
    }


# --- the run ----------------------------------------------------------------------------------


class _Pipeline:
    """The configured pipeline: a float photo or a stored file in, the applied mask out."""

    def __init__(self, config_path: Path | None) -> None:
        from skinretouch.config import Config, load_config
        from skinretouch.pipeline import Retoucher

        config = load_config(config_path) if config_path is not None else Config()
        self.retoucher = Retoucher(config)
        if hasattr(self.retoucher, "warm_up"):
            self.retoucher.warm_up()
        self.detector = getattr(self.retoucher.detector, "name", type(self.retoucher.detector).__name__)
        self.calls = 0
        self.ms = 0.0

    def mask(self, rgb: np.ndarray) -> tuple[np.ndarray, object]:
        image = _as_float(rgb)
        started = time.perf_counter()
        result = self.retoucher.retouch(image)
        self.ms += (time.perf_counter() - started) * 1000.0
        self.calls += 1
        return np.asarray(result.applied_mask, dtype=bool), result

    def mask_of_file(self, path: Path, out_dir: Path) -> np.ndarray:
        outcome = self.retoucher.process_file(path, out_dir=out_dir, force=True)
        if outcome.status != "ok" or outcome.mask_path is None:
            raise RuntimeError(f"process_file({path.name}) {outcome.status}: {outcome.error}")
        with Image.open(outcome.mask_path) as image:
            return np.asarray(image.convert("L")) > 127


def run_detection_bench(
    *,
    parts=PARTS,
    seeds=(0,),
    quick: bool = False,
    sweep: bool = True,
    real_acne: bool = True,
    photo_names=None,
    config_path: Path | None = None,
    cache_dir: Path | None = None,
    real_acne_dir: Path | None = None,
    progress=None,
) -> dict:
    """Run the sections of the module doc; returns the JSON-ready result."""
    say = progress or (lambda message: None)
    split = load_split()
    pipeline = _Pipeline(config_path)
    started = time.perf_counter()
    result: dict = {"detector": pipeline.detector, "split": {}, "parts": {}}
    loaded_photos = {}
    for part in parts:
        names = list(split.photos(part))
        if photo_names is not None:
            names = [name for name in names if name in photo_names]
        if quick:
            names = _spread(names, QUICK_PHOTOS_PER_PART)
        photos = load_set_photos(names, cache_dir=cache_dir)
        loaded_photos[part] = photos
        style = planting_style(split.style(part))
        say(f"{part}: {len(photos)} photos, planting style {split.style(part)!r}")
        runs, clean = [], {}
        for photo in photos:
            for seed in seeds:
                blemished, spots = style.plant_spots(photo.photo, seed=seed)
                mask, _ = pipeline.mask(_to_uint8(blemished))
                runs.append({"photo": photo.name, "tone": photo.tone, "seed": seed,
                             **score_planted(mask, spots, scale=photo.photo.scale)})  # fmt: skip
            mask, retouched = pipeline.mask(photo.photo.rgb)
            clean[photo.name] = _clean_record(mask, photo)
        section = {"style": split.style(part), "photos": [p.name for p in photos],
                   "tones": {t: sum(p.tone == t for p in photos) for t in TONES},
                   "planted": summarise_planted(runs), "planted_runs": runs, "nothing_planted": clean}  # fmt: skip
        section["nothing_planted_summary"] = {
            "photos": len(clean),
            "feature_px_total": sum(c["feature_px"] for c in clean.values()),
            "photos_with_feature_px": sorted(n for n, c in clean.items() if c["feature_px"]),
            "regions_total": sum(c["regions"] for c in clean.values()),
        }
        if real_acne:
            section["real_acne"] = _real_acne_part(pipeline, split, part, quick, real_acne_dir, say)
        result["parts"][part] = section
    if sweep and "dev" in loaded_photos:
        say("robustness sweep")
        sweep_photos = _spread(loaded_photos["dev"], 4 if quick else SWEEP_PHOTOS)
        result["sweep"] = _sweep(pipeline, sweep_photos, planting_style(split.style("dev")), seeds[0])
    if "dev" in result["parts"] and "test" in result["parts"]:
        dev, test = (result["parts"][p]["planted"]["recall"] for p in ("dev", "test"))
        result["dev_test_recall_gap"] = dev - test
    result["seconds"] = time.perf_counter() - started
    result["pipeline_calls"] = pipeline.calls
    result["pipeline_ms_mean"] = pipeline.ms / max(1, pipeline.calls)
    return result


def _clean_record(mask: np.ndarray, photo) -> dict:
    labels, count = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    boxes = []
    for piece in ndi.find_objects(labels)[:50]:
        boxes.append([piece[1].start, piece[0].start, piece[1].stop, piece[0].stop])
    return {
        "tone": photo.tone,
        "regions": int(count),
        "region_boxes": boxes,
        "feature_px": int((mask & photo.feature_mask()).sum()) if photo.features else 0,
        "masked_fraction": float(mask.mean()),
    }


def _real_acne_part(pipeline, split, part, quick, folder, say) -> dict:
    folder = Path(folder) if folder is not None else default_real_acne_dir()
    if not folder.is_dir():
        say(f"real acne skipped: {folder} not found")
        return {"skipped": f"{folder} not found"}
    labels = load_labels()
    names = sorted(name for name in labels if split.real_acne_part(name) == part)
    if quick:
        names = _spread(names, QUICK_ACNE_PER_PART)
    per_photo = []
    for name in names:
        path = folder / name
        if not path.exists():
            continue
        if file_sha256(path) != labels[name]["sha256"]:
            warnings.warn(f"real acne {name}: sha256 differs from the labelled file; skipped", stacklevel=2)
            continue
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        mask, _ = pipeline.mask(rgb)
        per_photo.append({"file": name, **score_mask(mask, labels[name]["lesions"])})
    summary = summarise_real_acne(per_photo)
    summary["per_photo"] = per_photo
    return summary


# --- robustness sweep -------------------------------------------------------------------------


def _sweep(pipeline, photos, style, seed) -> dict:
    out = {}
    with tempfile.TemporaryDirectory(prefix="skinretouch-sweep-") as scratch:
        scratch = Path(scratch)
        for variant in VARIANTS:
            runs = []
            for photo in photos:
                with _planting_variant(variant):
                    blemished, spots = style.plant_spots(photo.photo, seed=seed)
                rgb8 = _to_uint8(blemished)
                if variant == "spots_colour":
                    rgb8 = _recolour_spots(photo.photo.rgb, rgb8, spots)
                mask, spots_view, scale = _variant_mask(pipeline, variant, rgb8, spots, photo, scratch)
                runs.append({"photo": photo.name, "tone": photo.tone,
                             **score_planted(mask, spots_view, scale=scale)})  # fmt: skip
            summary = summarise_planted(runs)
            out[variant] = {k: summary[k] for k in ("recall", "n_spots", "recall_per_kind",
                                                     "false_regions_per_spot", "moles_hit", "moles")}  # fmt: skip
        exif_clean = {}
        for photo in photos:
            if not photo.features:
                continue
            stored = np.ascontiguousarray(np.rot90(photo.photo.rgb, k=1))
            path = _write_jpeg(scratch / f"{photo.name}_clean_rot.jpg", stored, quality=95, orientation=6)
            upright = np.rot90(pipeline.mask_of_file(path, scratch / "out"), k=-1)
            exif_clean[photo.name] = int((upright & photo.feature_mask()).sum())
        out["exif_rot90_nothing_planted_feature_px"] = exif_clean
    return out


@contextlib.contextmanager
def _planting_variant(variant: str):
    """Spot sizes outside the dev style's ranges (moles unchanged), for the sweep's size rows."""
    factor = {"spots_small": 0.55, "spots_large": 1.7}.get(variant)
    if factor is None:
        yield
        return
    saved = dict(classic_planting.RADIUS_PX)
    try:
        for kind, (low, high) in saved.items():
            if kind != "mole":
                classic_planting.RADIUS_PX[kind] = (low * factor, high * factor)
        yield
    finally:
        classic_planting.RADIUS_PX.clear()
        classic_planting.RADIUS_PX.update(saved)


def _recolour_spots(clean: np.ndarray, rgb8: np.ndarray, spots) -> np.ndarray:
    """Spot colours outside the dev ranges: the Lab change turned 35 degrees towards yellow, x0.75."""
    footprint = np.zeros(clean.shape[:2], dtype=bool)
    for spot in spots:
        if not spot.keep:
            footprint |= spot.footprint
    if not footprint.any():
        return rgb8
    rows, cols = np.nonzero(ndi.binary_dilation(footprint, iterations=2))
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    base = rgb2lab(clean[y0:y1, x0:x1])
    lab = rgb2lab(rgb8[y0:y1, x0:x1])
    delta = lab - base
    angle = math.radians(35.0)
    da = delta[..., 1] * math.cos(angle) - delta[..., 2] * math.sin(angle)
    db = delta[..., 1] * math.sin(angle) + delta[..., 2] * math.cos(angle)
    turned = base + 0.75 * np.stack([delta[..., 0], da, db], axis=-1)
    out = rgb8.copy()
    window = footprint[y0:y1, x0:x1]
    recoloured = np.clip(np.rint(lab2rgb(turned) * 255.0), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1][window] = recoloured[window]
    return out


def _variant_mask(pipeline, variant, rgb8, spots, photo, scratch: Path):
    """The mask of a variant in the grid of its spots; returns (mask, spots in that grid, scale)."""
    scale = photo.photo.scale
    if variant in ("scale_0.5", "scale_2"):
        factor = 0.5 if variant == "scale_0.5" else 2.0
        height, width = rgb8.shape[:2]
        size = (max(1, round(width * factor)), max(1, round(height * factor)))
        interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
        resized = cv2.resize(rgb8, size, interpolation=interpolation)
        mask, _ = pipeline.mask(resized)
        return mask, [_resized_spot(spot, size) for spot in spots], max(1.0, scale * factor)
    if variant == "exif_rot90":
        stored = np.ascontiguousarray(np.rot90(rgb8, k=1))  # Orientation 6: shown turned 90 deg clockwise
        path = _write_jpeg(scratch / f"{photo.name}_rot.jpg", stored, quality=95, orientation=6)
        return np.rot90(pipeline.mask_of_file(path, scratch / "out"), k=-1), spots, scale
    if variant == "jpeg_q70":
        buffer = io.BytesIO()
        Image.fromarray(rgb8).save(buffer, format="JPEG", quality=70)
        with Image.open(io.BytesIO(buffer.getvalue())) as image:
            decoded = np.asarray(image.convert("RGB"), dtype=np.uint8)
        mask, _ = pipeline.mask(decoded)
        return mask, spots, scale
    mask, _ = pipeline.mask(rgb8)
    return mask, spots, scale


class _ResizedSpot:
    def __init__(self, spot, size):
        self.kind, self.keep = spot.kind, spot.keep
        self.footprint = _resize_mask(spot.footprint, size)
        self.core = _resize_mask(spot.core, size)


def _resized_spot(spot, size):
    return _ResizedSpot(spot, size)


def _resize_mask(mask: np.ndarray, size) -> np.ndarray:
    weights = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    out = weights >= 0.5
    if mask.any() and not out.any():  # a 1-px core halved: keep its strongest pixel
        out[np.unravel_index(np.argmax(weights), weights.shape)] = True
    return out


def _write_jpeg(path: Path, rgb: np.ndarray, *, quality: int, orientation: int | None = None) -> Path:
    image = Image.fromarray(rgb)
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION_TAG] = orientation
    image.save(path, format="JPEG", quality=quality, exif=exif.tobytes())
    return path


# --- helpers and CLI --------------------------------------------------------------------------


def _as_float(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / np.float32(255.0)
    return np.asarray(rgb, dtype=np.float32)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """A planted float photo as stored 8-bit, as a real photo would be."""
    if image.dtype == np.uint8:
        return image
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


def _spread(items: list, count: int) -> list:
    if len(items) <= count:
        return list(items)
    picks = np.linspace(0, len(items) - 1, count).round().astype(int)
    return [items[i] for i in sorted(set(picks))]


def _ratio(numerator, denominator) -> float:
    return float(numerator) / float(denominator) if denominator else float("nan")


def _bin_name(low: float, high: float) -> str:
    return f"r>={low:g}" if math.isinf(high) else f"{low:g}<=r<{high:g}"


def format_table(result: dict) -> str:
    """One table, dev and test side by side, then the sweep and the photos with nothing planted."""
    parts = result["parts"]
    columns = [p for p in PARTS if p in parts]
    rows: list[tuple[str, list[str]]] = []

    def row(label, getter, fmt="{:.3f}"):
        cells = []
        for part in columns:
            try:
                value = getter(parts[part])
            except (KeyError, TypeError):
                value = None
            cells.append("-" if value is None else (fmt.format(value) if isinstance(value, float) else str(value)))
        rows.append((label, cells))

    row("planting style", lambda s: s["style"])
    row("photos (light/medium/dark)", lambda s: "{}/{}/{}".format(*(s["tones"][t] for t in TONES)))
    row("planted spots", lambda s: s["planted"]["n_spots"])
    row("recall, planted", lambda s: s["planted"]["recall"])
    kinds = sorted({k for part in columns for k in parts[part]["planted"]["recall_per_kind"]})
    for kind in kinds:
        row(f"  recall {kind}", lambda s, k=kind: s["planted"]["recall_per_kind"].get(k))
    for tone in TONES:
        row(f"  recall, {tone} skin", lambda s, t=tone: s["planted"]["recall_per_tone"].get(t))
    row("false regions / planted spot", lambda s: s["planted"]["false_regions_per_spot"])
    row("moles hit / moles", lambda s: f"{s['planted']['moles_hit']}/{s['planted']['moles']}")
    for low, high in MOLE_SIZE_BINS:
        name = _bin_name(low, high)
        row(f"  moles hit, radius {name}", lambda s, n=name: s["planted"]["moles_hit_by_radius"][n])
    row("nothing planted: eye/brow/lip px", lambda s: s["nothing_planted_summary"]["feature_px_total"])
    row("nothing planted: regions found", lambda s: s["nothing_planted_summary"]["regions_total"])
    row("real acne: photos / lesions", lambda s: f"{s['real_acne']['photos']}/{s['real_acne']['lesions']}")
    row("real acne: recall inflamed", lambda s: s["real_acne"]["recall_inflamed"])
    row("real acne: inflamed area removed", lambda s: s["real_acne"]["inflamed_area_removed"])
    row("real acne: recall all lesions", lambda s: s["real_acne"]["recall_all"])
    for kind in LESION_KINDS:
        row(f"  real acne recall {kind}", lambda s, k=kind: s["real_acne"]["recall_per_kind"].get(k))
    row("real acne: false regions / photo", lambda s: s["real_acne"]["false_regions_per_photo"])
    row("real acne: photos with nothing found", lambda s: s["real_acne"]["photos_nothing_found"])

    width = max(len(label) for label, _ in rows) + 2
    lines = [f"Detection bench, detector {result['detector']!r}", "",
             f"{'':{width}}" + "".join(f"{part:>12}" for part in columns)]  # fmt: skip
    lines += [f"{label:{width}}" + "".join(f"{cell:>12}" for cell in cells) for label, cells in rows]
    if "dev_test_recall_gap" in result:
        lines.append(f"{'dev - test recall gap':{width}}{result['dev_test_recall_gap']:>12.3f}")
    if "sweep" in result:
        lines += ["", "Robustness sweep (dev photos, dev style): recall per variant"]
        for variant in VARIANTS:
            entry = result["sweep"][variant]
            lines.append(f"  {variant:14} recall {entry['recall']:.3f}  spots {entry['n_spots']:4d}  "
                         f"false/spot {entry['false_regions_per_spot']:.3f}  moles hit {entry['moles_hit']}/{entry['moles']}")  # fmt: skip
        exif = result["sweep"]["exif_rot90_nothing_planted_feature_px"]
        lines.append(f"  EXIF-rotated, nothing planted: eye/brow/lip px per photo {exif}")
    lines += ["", "Nothing planted, regions found per photo (eye/brow/lip px):"]
    for part in columns:
        listing = ", ".join(f"{name} {c['regions']} ({c['feature_px']})"
                            for name, c in parts[part]["nothing_planted"].items())  # fmt: skip
        lines.append(f"  {part}: {listing}")
    lines.append(f"\n{result['pipeline_calls']} pipeline runs, mean {result['pipeline_ms_mean']:.0f} ms, "
                 f"{result['seconds']:.0f} s in all")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skinretouch.benchmark.detection",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"{QUICK_PHOTOS_PER_PART} photos and {QUICK_ACNE_PER_PART} acne photos per part")  # fmt: skip
    parser.add_argument("--photos", nargs="+", default=None, help="only these catalogue photos")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-real-acne", action="store_true")
    parser.add_argument("--config", type=Path, default=None, help="config file selecting the detector")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where fetched photos are kept")
    parser.add_argument("--real-acne-dir", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results/detection.json"))
    args = parser.parse_args(argv)
    from skinretouch.benchmark.run import _quiet_logs

    _quiet_logs()
    result = run_detection_bench(
        parts=args.parts, seeds=tuple(args.seeds), quick=args.quick, sweep=not args.no_sweep,
        real_acne=not args.no_real_acne, photo_names=args.photos, config_path=args.config,
        cache_dir=args.cache_dir, real_acne_dir=args.real_acne_dir,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )  # fmt: skip
    table = format_table(result)
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    args.out.with_suffix(".txt").write_text(table + "\n")
    print(f"\nwrote {args.out} and {args.out.with_suffix('.txt')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
