"""Removal on real acne: the labelled lesions, dilated into cluster masks, filled by every method.

``python -m skinretouch.benchmark.removal_real_acne --part dev|test`` (photos of
``../shared/real-acne`` split by ``bench/split.toml``, labels of ``bench/real_acne_labels.json``).

Each photo's lesions become one mask: every lesion's ellipse grown by ``HALO_SHARE`` of its
radius (at least ``HALO_MIN_PX``), the inflamed halo a retoucher would paint over, then closed
over gaps up to ``MERGE_GAP_PX`` so that neighbouring lesions merge into clusters, as they do
on real skin. The project and its peers (Telea, PatchMatch) get the same mask in the same run.

There is no clean photo to compare with, so each connected region (a cluster or a lone
lesion) is judged against **clean skin around it**: the pixels ``REFERENCE_GAP_PX`` to
``REFERENCE_GAP_PX + REFERENCE_WIDTH_PX`` outside the region, off every grown lesion:

- ``texture_ratio``: std of the high-pass L* (sigma ``HIGH_PASS_SIGMA_PX``) inside the region
  over that std on the reference ring (texture_ok: within ``metrics.TEXTURE_OK_RANGE``);
- ``lf_dE``: mean over the region of the CIE76 distance between the low-passed result (sigma
  ``LOW_PASS_SIGMA_PX``) and the reference ring's mean Lab;
- ``dL``, ``da``, ``db``: signed mean of the region minus the reference ring's mean (a region
  left red shows ``da > 0``).

Regions whose reference ring holds fewer than ``MIN_REFERENCE_PX`` pixels are not judged, nor
regions near the black fill some of these photos carry (the dataset's rotations: more than
``MAX_BACKGROUND_SHARE`` of the region and its ring below L* ``BACKGROUND_L``). The
five regions with the project's worst lf_dE are saved as before | project | telea |
patchmatch crops in ``bench/results/worst_real_acne_<part>/``; the figures go to
``bench/results/removal_real_acne_<part>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.color import rgb2lab

from skinretouch.benchmark.metrics import finite_texture_ratios, texture_summary
from skinretouch.benchmark.real_acne import default_real_acne_dir, file_sha256, lesion_ellipse, load_labels
from skinretouch.benchmark.removal_study import clear_crop_folder, save_crop_row
from skinretouch.benchmark.run import PATCHMATCH, PROJECT, _jsonable, _Project, _quiet_logs, run_method

__all__ = ["background_of", "cluster_mask", "judge_regions", "main", "run_real_acne"]

HALO_SHARE = 0.5  # a lesion's ellipse is grown by this share of its mean radius ...
HALO_MIN_PX = 3  # ... and by at least this many px
MERGE_GAP_PX = 6  # grown lesions this close merge into one cluster
REFERENCE_GAP_PX = 2
REFERENCE_WIDTH_PX = 8
MIN_REFERENCE_PX = 40
MIN_REGION_PX = 40
BACKGROUND_L = 8.0
MAX_BACKGROUND_SHARE = 0.01
HIGH_PASS_SIGMA_PX = 1.0
LOW_PASS_SIGMA_PX = 2.0
WORST_COUNT = 5
CROP_MARGIN_PX = 16
PEERS = ("telea", PATCHMATCH)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="removal_real_acne", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("dev", "test"), required=True)
    parser.add_argument("--folder", type=Path, default=None, help="the real-acne photos (default ../shared/real-acne)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many photos (quick runs)")
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    _quiet_logs()
    folder = args.folder or default_real_acne_dir()
    if not folder.is_dir():
        print(f"removal_real_acne: {folder} not found; skipped")
        return 0
    report = run_real_acne(folder, args.part, out=args.out, limit=args.limit)
    print(format_report(report))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"removal_real_acne_{args.part}.json"
    path.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
    print(f"written: {path}")
    return 0


def cluster_mask(lesions, shape) -> tuple[np.ndarray, np.ndarray]:
    """(mask to remove, grown lesions): lesion ellipses grown by their halo, merged over small gaps."""
    grown = np.zeros(shape, dtype=bool)
    for lesion in lesions:
        x0, y0, x1, y1 = lesion.box
        radius = 0.25 * ((x1 - x0) + (y1 - y0))
        halo = max(HALO_MIN_PX, int(round(HALO_SHARE * radius)))
        box = (max(0, x0 - halo), max(0, y0 - halo), min(shape[1], x1 + halo), min(shape[0], y1 + halo))
        grown |= lesion_ellipse(box, shape)
    closing = np.ones((2 * (MERGE_GAP_PX // 2) + 1,) * 2, dtype=bool)
    padded = np.pad(grown, MERGE_GAP_PX)
    mask = ndi.binary_closing(padded, structure=closing)[MERGE_GAP_PX:-MERGE_GAP_PX, MERGE_GAP_PX:-MERGE_GAP_PX]
    return mask | grown, grown


def background_of(rgb8: np.ndarray) -> np.ndarray:
    """The black fill of a rotated or padded photo: L* below ``BACKGROUND_L``, grown by 2 px."""
    dark = rgb2lab(rgb8)[..., 0] < BACKGROUND_L
    return ndi.binary_dilation(dark, iterations=2)


def judge_regions(result: np.ndarray, mask: np.ndarray, grown: np.ndarray, background: np.ndarray) -> list[dict]:
    """Per connected region of ``mask``: texture ratio, lf_dE and signed bias against the clean
    skin around it (module doc); ``result`` is uint8 or float RGB, ``background`` the photo's
    black fill (:func:`background_of`)."""
    rgb = result.astype(np.float64) / 255.0 if result.dtype == np.uint8 else np.clip(result, 0, 1)
    labels, count = ndi.label(mask, structure=np.ones((3, 3), dtype=bool))
    boxes = ndi.find_objects(labels)
    regions = []
    reach = REFERENCE_GAP_PX + REFERENCE_WIDTH_PX + 4 * int(np.ceil(LOW_PASS_SIGMA_PX)) + 2
    for index, box in enumerate(boxes, 1):
        if box is None:
            continue
        ys = slice(max(0, box[0].start - reach), box[0].stop + reach)
        xs = slice(max(0, box[1].start - reach), box[1].stop + reach)
        region = labels[ys, xs] == index
        if region.sum() < MIN_REGION_PX:
            continue
        distance = ndi.distance_transform_edt(~region)
        reference = (distance > REFERENCE_GAP_PX) & (distance <= REFERENCE_GAP_PX + REFERENCE_WIDTH_PX)
        reference &= ~ndi.binary_dilation(grown[ys, xs], iterations=REFERENCE_GAP_PX) & ~mask[ys, xs]
        near = region | reference
        if reference.sum() < MIN_REFERENCE_PX or background[ys, xs][near].mean() > MAX_BACKGROUND_SHARE:
            continue
        lab = rgb2lab(rgb[ys, xs])
        high = lab[..., 0] - ndi.gaussian_filter(lab[..., 0], HIGH_PASS_SIGMA_PX)
        low = np.stack([ndi.gaussian_filter(lab[..., c], LOW_PASS_SIGMA_PX) for c in range(3)], axis=-1)
        clean = lab[reference].mean(axis=0)
        reference_texture = high[reference].std()
        ratio = float(high[region].std() / reference_texture) if reference_texture > 1e-9 else float("nan")
        signed = lab[region].mean(axis=0) - clean
        regions.append({
            "box": [int(xs.start), int(ys.start), int(xs.stop), int(ys.stop)],
            "area_px": int(region.sum()),
            "texture_ratio": ratio,
            "lf_dE": float(np.linalg.norm(low[region] - clean, axis=-1).mean()),
            "dL": float(signed[0]),
            "da": float(signed[1]),
            "db": float(signed[2]),
        })  # fmt: skip
    return regions


def run_real_acne(folder: Path, part: str, *, out: Path | None = None, limit: int | None = None, project=None) -> dict:
    """Fill every photo of ``part`` with every method on its cluster mask; returns the pooled report."""
    from PIL import Image

    from skinretouch.benchmark.photoset import load_split

    split = load_split()
    labels = load_labels()
    names = sorted(name for name in labels if split.real_acne_part(name) == part)[:limit]
    project = _Project.load() if project is None else project
    methods = ["input", *PEERS] + ([PROJECT] if project.ready else [])
    regions = {name: [] for name in methods}
    times = {name: 0.0 for name in methods}
    cases = []
    for name in names:
        path = Path(folder) / name
        if not path.exists() or file_sha256(path) != labels[name]["sha256"]:
            print(f"  {name}: missing or changed; skipped", file=sys.stderr)
            continue
        with Image.open(path) as image:
            rgb8 = np.asarray(image.convert("RGB"), dtype=np.uint8)
        lesions = labels[name]["lesions"]
        if not lesions:
            continue
        mask, grown = cluster_mask(lesions, rgb8.shape[:2])
        background = background_of(rgb8)
        results = {}
        for method in methods:
            if method == "input":
                result, ms = rgb8, 0.0
            else:
                result, ms = run_method(method, project, rgb8, mask)
            results[method] = result
            times[method] += ms
            for region in judge_regions(np.asarray(result), mask, grown, background):
                regions[method].append({"photo": name, **region})
        cases.append((name, rgb8, results))
        print(f"  real acne {part}: {name}: {len(lesions)} lesions, mask {mask.mean():.3f} of the photo",
              file=sys.stderr, flush=True)  # fmt: skip
    report = {"part": part, "photos": [c[0] for c in cases], "methods": {}}
    for method in methods:
        report["methods"][method] = {**pool_regions(regions[method]), "time_ms_total": times[method]}
    if out is not None and PROJECT in regions:
        report["worst"] = _save_worst(cases, regions[PROJECT], Path(out) / f"worst_real_acne_{part}")
    return report


def pool_regions(regions: list[dict]) -> dict:
    out = {key: float(np.mean([r[key] for r in regions])) if regions else float("nan")
           for key in ("lf_dE", "dL", "da", "db")}  # fmt: skip
    out.update(texture_summary(finite_texture_ratios(regions)))
    out["n_regions"] = len(regions)
    return out


def format_report(report: dict) -> str:
    lines = [f"REMOVAL ON REAL ACNE, {report['part']}: {len(report['photos'])} photos, labelled lesions grown into "
             "cluster masks; judged against the clean skin around each region",
             f"{'method':14s} {'lf_dE':>6s} {'texmed':>6s} {'texok':>6s} {'dL':>6s} {'da':>6s} {'db':>6s} "
             f"{'n':>5s} {'ms':>9s}"]  # fmt: skip
    for name, entry in report["methods"].items():
        lines.append(f"{name:14s} {entry['lf_dE']:6.2f} {entry['texture_ratio_median']:6.2f} {entry['texture_ok']:6.2f} "
                     f"{entry['dL']:6.2f} {entry['da']:6.2f} {entry['db']:6.2f} {entry['n_regions']:5d} "
                     f"{entry['time_ms_total']:9.0f}")  # fmt: skip
    for case in report.get("worst", []):
        lines.append(f"worst: {case['file']}  lf_dE {case['lf_dE']:.2f} tex {case['texture_ratio']:.2f} "
                     f"da {case['da']:+.2f}")  # fmt: skip
    return "\n".join(lines)


def _save_worst(cases, project_regions, folder: Path) -> list[dict]:
    clear_crop_folder(folder)
    ranked = sorted(project_regions, key=lambda r: -r["lf_dE"])[:WORST_COUNT]
    saved = []
    by_name = {name: (rgb8, results) for name, rgb8, results in cases}
    for rank, worst in enumerate(ranked, 1):
        rgb8, results = by_name[worst["photo"]]
        x0, y0, x1, y1 = worst["box"]
        window = (slice(y0, y1), slice(x0, x1))
        tiles = [rgb8, results[PROJECT], results["telea"], results[PATCHMATCH]]
        path = folder / f"{rank:02d}_{Path(worst['photo']).stem}.png"
        save_crop_row(tiles, window, path)
        saved.append({"file": str(path), **worst})
    return saved


if __name__ == "__main__":
    sys.exit(main())
