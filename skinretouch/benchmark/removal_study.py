"""Removal study: the project's fill and its peers on oracle masks, with signed bias and seams.

``python -m skinretouch.benchmark.removal_study --part dev|test [--seeds ...]`` (photos and planting
style of that part of ``bench/split.toml``; tone groups from ``bench/photos.toml``), or
``--style NAME --photos NAME ...`` for the three original bench photos.

For each photo and seed, spots of the chosen planting style are planted; every method gets the
same oracle mask (footprints dilated by ``run.ORACLE_DILATION_PX`` at face scale) in the same
run. Printed and written (``bench/results/removal_<style>.json``):

- overall, per kind, per skin-tone group (ITA of the clean skin, ``metrics.skin_tone_group``) and
  for the large kinds (clusters, nodules): dE, lf_dE, texture ratio (median, ok share), the signed
  bias dL/da/db, the seam ring's lf dE and gradient ratio, collateral;
- the project's removal time (its removal stage, as :func:`.run.run_method` times it) over
  pypatchmatch-on-crops time on the same masks;
- the five worst spots of the project (by lf_dE) as before/after crops:
  ``bench/results/worst_<style>/NN_<photo>_<kind>.png`` = blemished | project | telea | clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from skinretouch.benchmark.metrics import finite_texture_ratios, removal_metrics, skin_tone_group, texture_summary
from skinretouch.benchmark.peers import available_peers
from skinretouch.benchmark.photos import BENCH_PHOTO_NAMES, load_bench_photos
from skinretouch.benchmark.run import (
    INPUT,
    ORACLE_DILATION_PX,
    PATCHMATCH,
    PROJECT,
    _jsonable,
    _Project,
    _quiet_logs,
    _to_uint8,
    run_method,
)
from skinretouch.benchmark.styles import PLANTING_STYLES, planting_style

__all__ = ["main", "pool_spots", "run_study"]

WORST_COUNT = 5
CROP_MARGIN_PX = 12  # px at face scale around a worst spot's footprint
CROP_ZOOM = 4  # nearest-neighbour magnification of the saved crops (at least 192 px tall)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="removal_study", description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("dev", "test"), default=None,
                        help="the split's photos and planting style (bench/split.toml)")  # fmt: skip
    parser.add_argument("--style", default=None, choices=sorted(PLANTING_STYLES))
    parser.add_argument("--photos", nargs="+", default=None, help=f"from {', '.join(BENCH_PHOTO_NAMES)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--peers", nargs="+", default=None)
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args(argv)
    _quiet_logs()
    if args.part is not None:
        from skinretouch.benchmark.photoset import load_set_photos, load_split

        split = load_split()
        style = args.style or split.style(args.part)
        names = args.photos or list(split.photos(args.part))
        photos = [(p.photo, p.tone) for p in load_set_photos(names)]
        tag = f"{args.part}_{style}"
    else:
        style = args.style or "clustered"
        photos = [(p, None) for p in load_bench_photos(names=args.photos)]
        tag = style
    peers = [name for name in available_peers() if not args.peers or name in args.peers]
    report = run_study(photos, args.seeds, peers, style=style, out=args.out, tag=tag)
    print(format_study(report))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"removal_{tag}.json"
    path.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
    print(f"written: {path}")
    return 0


def run_study(photos, seeds, peers, *, style: str, out: Path | None = None, project=None, tag=None) -> dict:
    """Plant, fill with every method on the oracle masks, score; returns the pooled report.

    ``photos``: (BenchPhoto, tone group or None) pairs; None: the group is the photo's ITA
    class (:func:`.metrics.skin_tone_group`).
    """
    planter = planting_style(style)
    project = _Project.load() if project is None else project
    methods = [INPUT, *peers] + ([PROJECT] if project.ready else [])
    spots_by_method: dict[str, list[dict]] = {name: [] for name in methods}
    runs: dict[str, list[dict]] = {name: [] for name in methods}
    cases = []  # (photo, seed, blemished rgb8, {method: result}) for the worst-case crops
    for photo, tone in photos:
        group, ita = skin_tone_group(photo.rgb, photo.skin)
        group = tone or group
        for seed in seeds:
            blemished, spots = planter.plant_spots(photo, seed=seed)
            rgb8 = _to_uint8(blemished)
            mask = planter.oracle_mask(spots, rgb8.shape, dilation_px=round(ORACLE_DILATION_PX * photo.scale))
            results = {}
            for name in methods:
                result, ms = run_method(name, project, rgb8, mask)
                results[name] = result
                scores = removal_metrics(result, photo.rgb, spots, scale=photo.scale, blemished=rgb8, mask=mask)
                outside = ~mask
                identical = bool(np.array_equal(_to_uint8(unit_float(result))[outside], rgb8[outside]))
                runs[name].append({"photo": photo.name, "seed": seed, "time_ms": ms,
                                   "collateral": scores["collateral"], "outside_identical": identical})  # fmt: skip
                for spot in scores["per_spot"]:
                    spots_by_method[name].append({"photo": photo.name, "seed": seed, "tone": group,
                                                  "ita": ita, **spot})  # fmt: skip
            cases.append((photo, seed, rgb8, spots, results))
            print(f"  {style}: {photo.name} ({group}) seed {seed}: {sum(not s.keep for s in spots)} spots",
                  file=sys.stderr, flush=True)  # fmt: skip
    large = set(getattr(planter, "LARGE_KINDS", ()))
    report = {"style": style, "photos": [p.name for p, _ in photos], "seeds": list(seeds), "methods": {}}
    for name in methods:
        spots = spots_by_method[name]
        times = np.array([run["time_ms"] for run in runs[name]], dtype=np.float64)
        entry = pool_spots(spots)
        entry["collateral"] = float(np.nanmean([run["collateral"] for run in runs[name]]))
        entry["outside_identical"] = all(run["outside_identical"] for run in runs[name])
        entry["time_ms_total"] = float(np.nansum(times)) if np.isfinite(times).any() else float("nan")
        entry["per_kind"] = {k: pool_spots([s for s in spots if s["kind"] == k]) for k in sorted({s["kind"] for s in spots})}
        entry["per_tone"] = {t: pool_spots([s for s in spots if s["tone"] == t]) for t in sorted({s["tone"] for s in spots})}
        if large:
            entry["large"] = pool_spots([s for s in spots if s["kind"] in large])
        report["methods"][name] = entry
    if PROJECT in report["methods"] and PATCHMATCH in report["methods"]:
        ours = report["methods"][PROJECT]["time_ms_total"]
        theirs = report["methods"][PATCHMATCH]["time_ms_total"]
        report["project_over_patchmatch_time"] = ours / theirs if theirs > 0 else float("nan")
    if out is not None and PROJECT in report["methods"]:
        report["worst"] = _save_worst(cases, spots_by_method[PROJECT], Path(out) / f"worst_{tag or style}")
    return report


def pool_spots(spots: list[dict]) -> dict:
    """Means over spots (texture ratio: median and share in range), NaN when empty."""
    out = {key: _nanmean([s[key] for s in spots])
           for key in ("dE", "lf_dE", "dL", "da", "db", "seam_lf_dE", "seam_grad")}  # fmt: skip
    out.update(texture_summary(finite_texture_ratios(spots)))
    out["texture_ok_ring_ceiling"] = texture_summary(finite_texture_ratios(spots, "ring_texture_ratio"))["texture_ok"]
    out["n_spots"] = len(spots)
    return out


def format_study(report: dict) -> str:
    methods = report["methods"]
    head = (f"{'method':26s} {'dE':>5s} {'lf_dE':>5s} {'texmed':>6s} {'texok':>5s} {'dL':>6s} {'da':>6s} "
            f"{'db':>6s} {'seamlf':>6s} {'seamgr':>6s} {'coll':>7s} {'n':>4s}")  # fmt: skip
    lines = [f"REMOVAL STUDY, style {report['style']}, {len(report['photos'])} photos: {', '.join(report['photos'])}, "
             f"seeds {report['seeds']} (oracle masks)", head]  # fmt: skip
    for name, entry in methods.items():
        lines.append(_row(name, entry, entry.get("collateral")))
    project = methods.get(PROJECT)
    if project:
        for title, key in (("BY KIND", "per_kind"), ("BY SKIN TONE", "per_tone")):
            lines += ["", f"{PROJECT} {title} (telea below each)", head]
            for group, entry in project[key].items():
                lines.append(_row(group, entry))
                telea = methods.get("telea", {}).get(key, {}).get(group)
                if telea:
                    lines.append(_row("  telea", telea))
        if "large" in project:
            lines += ["", "LARGE / CLUSTERED MASKS", head]
            for name, entry in methods.items():
                if "large" in entry:
                    lines.append(_row(name, entry["large"]))
        lines.append("")
        lines.append(f"pixels outside the mask identical: {project['outside_identical']}")
        lines.append(f"texture_ok of a fill with exactly the clean ring's strength (the most a fill can learn "
                     f"from around the hole): {project['texture_ok_ring_ceiling']:.2f}")  # fmt: skip
    ratio = report.get("project_over_patchmatch_time")
    if ratio is not None:
        lines.append(f"removal time / pypatchmatch-on-crops time (same masks, same run): {ratio:.3f}")
    for case in report.get("worst", []):
        lines.append(f"worst: {case['file']}  lf_dE {case['lf_dE']:.2f} dE {case['dE']:.2f} "
                     f"tex {case['texture_ratio']:.2f}")  # fmt: skip
    return "\n".join(lines)


def _row(name, entry, collateral=None) -> str:
    def f(value, digits=2, width=6):
        ok = value is not None and np.isfinite(value)
        return f"{value:{width}.{digits}f}" if ok else f"{'-':>{width}s}"

    return (f"{name:26s} {f(entry['dE'], 2, 5)} {f(entry['lf_dE'], 2, 5)} {f(entry['texture_ratio_median'])} "
            f"{f(entry['texture_ok'], 2, 5)} {f(entry['dL'])} {f(entry['da'])} {f(entry['db'])} "
            f"{f(entry['seam_lf_dE'])} {f(entry['seam_grad'])} {f(collateral, 5, 7)} {entry['n_spots']:4d}")  # fmt: skip


def _save_worst(cases, project_spots, folder: Path) -> list[dict]:
    clear_crop_folder(folder)
    ranked = sorted(project_spots, key=lambda s: -s["lf_dE"])[:WORST_COUNT]
    saved = []
    for rank, worst in enumerate(ranked, 1):
        for photo, seed, rgb8, spots, results in cases:
            if photo.name != worst["photo"] or seed != worst["seed"]:
                continue
            spot = next(s for s in spots if not s.keep and list(map(float, s.center)) == worst["center"])
            ys, xs = np.nonzero(spot.footprint)
            margin = int(CROP_MARGIN_PX * photo.scale)
            window = (slice(max(0, ys.min() - margin), ys.max() + margin + 1),
                      slice(max(0, xs.min() - margin), xs.max() + margin + 1))  # fmt: skip
            tiles = [rgb8, results[PROJECT], results.get("telea", photo.rgb), photo.rgb]
            path = folder / f"{rank:02d}_{photo.name}_{worst['kind']}.png"
            save_crop_row(tiles, window, path, min_zoom=CROP_ZOOM)
            saved.append({"file": str(path), **{k: worst[k] for k in ("photo", "seed", "kind", "dE", "lf_dE",
                                                                     "texture_ratio", "dL", "da")}})  # fmt: skip
            break
    return saved


def unit_float(image: np.ndarray) -> np.ndarray:
    """An 8-bit or float image as float in [0, 1]."""
    image = np.asarray(image)
    return image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else np.clip(image, 0.0, 1.0)


def clear_crop_folder(folder: Path) -> None:
    """Make ``folder`` and remove the crops of an earlier run from it."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()


def save_crop_row(tiles, window, path: Path, *, min_zoom: int = 1) -> None:
    """Save the ``window`` of each tile side by side, enlarged to at least 192 px high."""
    from PIL import Image

    row = np.concatenate([_to_uint8(unit_float(tile))[window] for tile in tiles], axis=1)
    zoom = max(min_zoom, int(np.ceil(192 / row.shape[0])))
    Image.fromarray(np.repeat(np.repeat(row, zoom, axis=0), zoom, axis=1)).save(path)


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


if __name__ == "__main__":
    sys.exit(main())
