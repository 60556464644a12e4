"""Bench for reference mode and anomaly scores: a defect kind the classical detector does not know.

The new kind is a ``scar``: a thin, slightly curved line, paler and pinker than the skin and
smoother (scar tissue has no pores), rendered in CIE Lab like the kinds of ``planting.py``:

- length 8..16 px at face scale (times ``BenchPhoto.scale``), half-width 0.9..1.5 px;
- L* +12..+18, a* +4..+8, b* -1..+1 on the line, fading out over 0.6..1.6 half-widths;
- the fine L detail under it damped by 50..70 %.

Ground truth as in ``PlantedSpot``: ``footprint`` (changed by more than ``FOOTPRINT_DE``) and
``core`` (pixels within 0.6 half-widths of the centre line). The classical detector rejects
elongated regions and has no "paler" seed, so it finds (nearly) none of them.

Reference mode is judged with ONE example taken from a DIFFERENT photo: for each target photo
the next bench photo (in ``load_bench_photos`` order) gets a single scar, and that image plus
the scar's footprint is the reference pair.
"""

from __future__ import annotations

import time

import numpy as np
from scipy import ndimage as ndi
from skimage.color import lab2rgb, rgb2lab

from skinretouch.benchmark.metrics import detection_metrics
from skinretouch.benchmark.photos import BenchPhoto
from skinretouch.benchmark.planting import (
    BLEMISH_KINDS,
    FOOTPRINT_DE,
    SPOT_GAP_PX,
    PlantedSpot,
    _Sites,
    _smoothstep,
    default_spot_count,
    plant_spots,
)

__all__ = [
    "NEW_KIND",
    "format_anomaly_table",
    "format_reference_table",
    "main",
    "plant_scars",
    "reference_pair",
    "run_anomaly_bench",
    "run_reference_bench",
]

NEW_KIND = "scar"
SCAR_LENGTH_PX = (8.0, 16.0)  # px at face scale
SCAR_HALF_WIDTH_PX = (0.9, 1.5)  # px at face scale
SCAR_EDGE = (0.6, 1.6)  # ramp in half-widths: full inside 0.6, none beyond 1.6
SCAR_CORE = 0.6  # half-widths
MAX_TRIES = 80
REFERENCE_SEED_OFFSET = 1000  # the reference photo's scar uses seed + this


def plant_scars(photo: BenchPhoto, *, seed: int, n_spots: int | None = None) -> tuple[np.ndarray, list[PlantedSpot]]:
    """Plant thin pale scar lines on a clean bench photo (deterministic for a seed).

    Parameters
    ----------
    photo : BenchPhoto
    seed : int
    n_spots : int, optional
        Scars wanted (default as ``planting.default_spot_count``); fewer when the skin is full.

    Returns
    -------
    blemished : (H, W, 3) float32 RGB in [0, 1]
    spots : list of PlantedSpot
        ``kind == "scar"``, ``keep == False``.
    """
    scale = float(photo.scale)
    wanted = default_spot_count(photo) if n_spots is None else int(n_spots)
    rng = np.random.default_rng(seed)
    blemished = photo.rgb.astype(np.float32) / np.float32(255.0)
    sites = _Sites(photo.skin, scale)
    spots = []
    for _ in range(wanted):
        spot = _plant_scar(rng, scale, photo.skin, sites, photo.rgb, blemished)
        if spot is not None:
            spots.append(spot)
    return blemished, spots


def reference_pair(photo: BenchPhoto, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """One example of the new kind on ``photo``: (image float32 RGB, mask bool = its footprint)."""
    image, spots = plant_scars(photo, seed=seed, n_spots=1)
    if not spots:
        raise ValueError(f"no scar fits on bench photo {photo.name!r}")
    return image, spots[0].footprint.copy()


def run_reference_bench(photos, seeds, *, config=None) -> dict:
    """Reference mode vs the default (classical) mode on photos carrying planted scars.

    For each photo and seed: scars are planted (seed), the reference is one scar on the next
    photo (seed + ``REFERENCE_SEED_OFFSET``), and both detectors run on the same image.

    Returns
    -------
    dict
        ``{"rows": {"classical": pooled, "reference": pooled}, "runs": [...]}`` where pooled
        holds ``recall``, ``found``, ``n_spots``, ``false_regions``, ``false_regions_per_spot``
        and ``time_ms`` (mean per photo).
    """
    from skinretouch.config import DetectConfig
    from skinretouch.engines.classical_detector import ClassicalDetector
    from skinretouch.engines.reference import ReferenceDetector

    photos = list(photos)
    if len(photos) < 2:
        raise ValueError("the reference bench needs at least two photos (the example comes from another one)")
    config = config or DetectConfig()
    base = ClassicalDetector(config)
    runs = []
    for index, photo in enumerate(photos):
        donor = photos[(index + 1) % len(photos)]
        for seed in seeds:
            image, spots = plant_scars(photo, seed=seed)
            if not spots:
                continue
            ref = reference_pair(donor, seed=seed + REFERENCE_SEED_OFFSET)
            started = time.perf_counter()
            plain = base.detect(image)
            classical_ms = 1000.0 * (time.perf_counter() - started)
            detector = ReferenceDetector(config, [ref], base=base)
            started = time.perf_counter()
            found = detector.detect(image)
            reference_ms = 1000.0 * (time.perf_counter() - started)
            for mode, detection, ms in (("classical", plain, classical_ms), ("reference", found, reference_ms)):
                metrics = detection_metrics(detection.mask, spots)
                runs.append({"mode": mode, "photo": photo.name, "reference_photo": donor.name,
                             "seed": seed, "time_ms": ms,
                             **{k: metrics[k] for k in ("found", "n_spots", "false_regions")}})  # fmt: skip
    return {"kind": NEW_KIND, "rows": {mode: _pool([r for r in runs if r["mode"] == mode])
                                        for mode in ("classical", "reference")}, "runs": runs}  # fmt: skip


def run_anomaly_bench(photos, seeds, *, config=None, threshold: float | None = None) -> dict:
    """The classical detector with and without the anomaly filter, on the standard planted kinds.

    Returns
    -------
    dict
        ``{"rows": {"classical": pooled, "classical+anomaly": pooled}, "runs": [...]}``.
    """
    from skinretouch.config import DetectConfig
    from skinretouch.engines.anomaly import filter_by_anomaly
    from skinretouch.engines.classical_detector import ClassicalDetector

    config = config or DetectConfig()
    threshold = config.anomaly_threshold if threshold is None else threshold
    base = ClassicalDetector(config)
    runs = []
    for photo in photos:
        for seed in seeds:
            image, spots = plant_spots(photo, seed=seed, kinds=BLEMISH_KINDS)
            started = time.perf_counter()
            plain = base.detect(image)
            classical_ms = 1000.0 * (time.perf_counter() - started)
            started = time.perf_counter()
            filtered = filter_by_anomaly(plain, image, threshold=threshold)
            anomaly_ms = classical_ms + 1000.0 * (time.perf_counter() - started)
            for mode, detection, ms in (("classical", plain, classical_ms),
                                        ("classical+anomaly", filtered, anomaly_ms)):  # fmt: skip
                metrics = detection_metrics(detection.mask, spots)
                runs.append({"mode": mode, "photo": photo.name, "seed": seed, "time_ms": ms,
                             **{k: metrics[k] for k in ("found", "n_spots", "false_regions", "moles_hit")}})  # fmt: skip
    return {"threshold": threshold, "rows": {mode: _pool([r for r in runs if r["mode"] == mode])
                                             for mode in ("classical", "classical+anomaly")}, "runs": runs}  # fmt: skip


def format_reference_table(result: dict) -> str:
    """Printable table of :func:`run_reference_bench` (rows pooled, then per photo)."""
    return _table(f"reference mode, new kind {result.get('kind', NEW_KIND)!r} (1 example from another photo)", result)


def format_anomaly_table(result: dict) -> str:
    """Printable table of :func:`run_anomaly_bench`."""
    return _table(f"anomaly filter (threshold {result.get('threshold')})", result)


def _table(title: str, result: dict) -> str:
    lines = [title, f"{'mode':<20} {'photo':<14} {'recall':>7} {'found':>6} {'spots':>6} {'false':>6} {'false/spot':>11} {'ms':>8}"]
    photos = sorted({r["photo"] for r in result["runs"]})
    for mode, pooled in result["rows"].items():
        for name, row in [("all", pooled)] + [(p, _pool([r for r in result["runs"] if r["mode"] == mode and r["photo"] == p])) for p in photos]:
            lines.append(f"{mode:<20} {name:<14} {row['recall']:>7.3f} {row['found']:>6d} {row['n_spots']:>6d} "
                         f"{row['false_regions']:>6d} {row['false_regions_per_spot']:>11.3f} {row['time_ms']:>8.0f}")  # fmt: skip
    return "\n".join(lines)


def _pool(runs: list[dict]) -> dict:
    n_spots = sum(r["n_spots"] for r in runs)
    found = sum(r["found"] for r in runs)
    false_regions = sum(r["false_regions"] for r in runs)
    times = [r["time_ms"] for r in runs]
    return {
        "recall": found / n_spots if n_spots else float("nan"),
        "found": found,
        "n_spots": n_spots,
        "false_regions": false_regions,
        "false_regions_per_spot": false_regions / n_spots if n_spots else float("nan"),
        "time_ms": float(np.mean(times)) if times else float("nan"),
        "n_runs": len(runs),
    }


def _plant_scar(rng, scale, skin, sites, clean_rgb, blemished):
    height, width = skin.shape
    gap = SPOT_GAP_PX * scale
    for _ in range(MAX_TRIES):
        length = rng.uniform(*SCAR_LENGTH_PX) * scale
        half_width = rng.uniform(*SCAR_HALF_WIDTH_PX) * scale
        reach = 0.5 * length + SCAR_EDGE[1] * half_width + 1.0
        # The disc test uses a third of the reach: a line fits where a disc of its length does
        # not; the footprint-inside-skin test below is the real one.
        site = sites.pick(rng, max(reach / 3.0, 2.0), gap)
        if site is None:
            continue
        cy, cx = site
        half = int(np.ceil(reach + 3.0 * scale)) + 2
        y0, y1 = max(0, cy - half), min(height, cy + half + 1)
        x0, x1 = max(0, cx - half), min(width, cx + half + 1)
        window = (slice(y0, y1), slice(x0, x1))
        points = _arc_points(rng, (cy - y0, cx - x0), length)
        before = blemished[window].astype(np.float64)
        lab = rgb2lab(before)
        distance = _distance_to_points(lab.shape[:2], points) / half_width
        weight = 1.0 - _smoothstep(SCAR_EDGE[0], SCAR_EDGE[1], distance)
        lightness = lab[..., 0]
        detail = lightness - ndi.gaussian_filter(lightness, scale)
        out = lab.copy()
        out[..., 0] -= rng.uniform(0.5, 0.7) * weight * detail
        out[..., 0] += rng.uniform(12.0, 18.0) * weight
        out[..., 1] += rng.uniform(4.0, 8.0) * weight
        out[..., 2] += rng.uniform(-1.0, 1.0) * weight
        touched = weight > 1e-3
        patch = before.copy()
        patch[touched] = np.clip(lab2rgb(out), 0.0, 1.0)[touched]
        patch = patch.astype(np.float32).astype(np.float64)
        delta = np.linalg.norm(rgb2lab(patch) - rgb2lab(clean_rgb[window]), axis=-1)
        footprint = delta > FOOTPRINT_DE
        if not footprint.any() or not skin[window][footprint].all():
            continue
        ys, xs = np.nonzero(footprint)
        centre = (float(ys.mean() + y0), float(xs.mean() + x0))
        outer = max(np.hypot(ys + y0 - centre[0], xs + x0 - centre[1]).max(), 1.0)
        if any(np.hypot(y - centre[0], x - centre[1]) < outer + r + gap for y, x, r in sites.taken):
            continue
        core = (distance <= SCAR_CORE) & footprint
        if not core.any():
            continue
        full_fp = np.zeros_like(skin)
        full_fp[window] = footprint
        full_core = np.zeros_like(skin)
        full_core[window] = core
        blemished[window] = patch
        sites.taken.append((centre[0], centre[1], outer))
        return PlantedSpot(NEW_KIND, centre, full_fp, full_core, keep=False)
    return None


def _arc_points(rng, centre, length):
    """Points every 0.25 px along a gently curved line of ``length`` px through ``centre``."""
    angle = rng.uniform(0.0, np.pi)
    bend = rng.uniform(-0.25, 0.25) * length  # sagitta of the arc, px
    t = np.linspace(-0.5, 0.5, max(8, int(length * 4)))
    along = t * length
    across = bend * (1.0 - 4.0 * t * t)
    ys = centre[0] + along * np.sin(angle) + across * np.cos(angle)
    xs = centre[1] + along * np.cos(angle) - across * np.sin(angle)
    return np.stack([ys, xs], axis=1)


def _distance_to_points(shape, points):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    best = np.full(shape, np.inf)
    for y, x in points:
        np.minimum(best, np.hypot(yy - y, xx - x), out=best)
    return best


def main(argv: list[str] | None = None) -> int:
    """``python -m skinretouch.benchmark.reference [--seeds 0,1,2,3]``: print both tables."""
    import argparse

    from skinretouch.benchmark.photos import load_bench_photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3", help="comma-separated planting seeds")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    photos = load_bench_photos()
    print(format_reference_table(run_reference_bench(photos, seeds)))
    print()
    print(format_anomaly_table(run_anomaly_bench(photos, seeds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
