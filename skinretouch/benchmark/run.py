"""The bench run: removal with oracle masks, detection, speed; one printed table and a JSON file.

``python -m skinretouch.benchmark [--quick] [--photos NAME ...] [--seeds N ...] [--out PATH]``
(also ``skinretouch bench ...`` and ``make bench``). See ``bench/README.md`` and BENCHMARK.md.

Sections:

1. Removal: for each photo and seed, spots are planted and the blemished photo is stored as 8-bit
   (as a real photo would be). Every method gets the same oracle mask: the footprints of the spots
   to remove dilated by ``ORACLE_DILATION_PX`` (times the face scale). Metrics per spot, pooled
   over photos and seeds, then averaged (``metrics.removal_metrics``).
2. Detection: the project detects on its own; its applied mask (what the mask sidecar holds) is
   scored with ``metrics.detection_metrics``, and its output with the removal metrics.
3. Speed: a warm ``process`` of one photo (decode, detect, remove, encode) as a ratio to the floor
   (decode + encode of the same file, same run); the same for 2048x2048 and 6000x4000 photos with
   10 spots; peak memory of a process run in a subprocess; JPEG round-trip PSNR of an untouched
   photo; project removal time / PatchMatch-on-crops time on the same masks; the daemon's
   sustained photos per second.

The project (``skinretouch.pipeline.Retoucher``) and its image I/O are imported guarded: when they
are missing or fail, their rows say so and the peers still run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import cv2
import numpy as np

from skinretouch.benchmark.metrics import detection_metrics, removal_metrics
from skinretouch.benchmark.peers import available_peers, run_peer
from skinretouch.benchmark.photos import BENCH_PHOTO_NAMES, BenchPhoto, load_bench_photos
from skinretouch.benchmark.planting import oracle_mask, plant_spots
from skinretouch.scale import image_scale

__all__ = ["main"]

ORACLE_DILATION_PX = 1  # px at face scale around each footprint: a careful hand-drawn mask
DEFAULT_SEEDS = (0, 1, 2)
SPEED_SIZES = ((2048, 2048), (6000, 4000))  # (width, height)
SPEED_SPOTS = 10
SPEED_REPEATS = 3  # timings are the median of this many warm runs (small photos)
JPEG_QUALITY = 95  # bench inputs are written at this quality
DAEMON_PHOTOS = 6
PROJECT = "skinretouch"
PROJECT_AUTO = "skinretouch (auto-detect)"
INPUT = "input (untouched)"
PATCHMATCH = "patchmatch"


def main(argv: list[str] | None = None) -> int:
    """Run the bench; print the tables; write the JSON. Returns the exit status."""
    args = _parse(argv)
    _quiet_logs()
    started = time.perf_counter()
    names = args.photos or (["grace_hopper"] if args.quick else list(BENCH_PHOTO_NAMES))
    seeds = args.seeds or (list(DEFAULT_SEEDS[:1]) if args.quick else list(DEFAULT_SEEDS))
    photos = load_bench_photos(args.cache_dir, names=names)
    if not photos:
        print("bench: no photo could be loaded", file=sys.stderr)
        return 1
    peers = [name for name in available_peers() if not args.peers or name in args.peers]
    project = _Project.load()
    print(f"photos: {', '.join(p.name for p in photos)}; seeds: {seeds}; peers: {', '.join(peers)}")
    print(f"project: {'ready' if project.ready else 'unavailable (' + project.reason + ')'}")

    removal = _removal_section(photos, seeds, peers, project)
    detection = _detection_section(removal.pop("_runs"), project)
    one_shot = {}
    if project.ready and not args.quick and not args.no_reference:
        from .reference import run_anomaly_bench, run_reference_bench

        one_shot = {
            "reference": run_reference_bench(photos, seeds),
            "anomaly": run_anomaly_bench(photos, seeds),
        }
    speed = {}
    if not args.no_speed:
        speed = _speed_section(photos, project, removal, quick=args.quick, daemon=not args.no_daemon)

    report = {
        "benchmark": "skinretouch",
        "photos": [{"name": p.name, "shape": list(p.rgb.shape), "scale": p.scale,
                    "skin_px": int(p.skin.sum())} for p in photos],  # fmt: skip
        "seeds": seeds,
        "oracle_dilation_px_at_face_scale": ORACLE_DILATION_PX,
        "project": {"ready": project.ready, "reason": project.reason},
        "removal": removal,
        "detection": detection,
        "one_shot": one_shot,
        "speed": speed,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    text = _format_report(report)
    print(text)
    json_path, text_path = _output_paths(args.out)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n")
    if text_path is not None:
        text_path.write_text(text + "\n")
    print(f"written: {json_path}")
    return 0


def _parse(argv):
    parser = argparse.ArgumentParser(prog="skinretouch bench", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"),
                        help="folder (gets bench.json and bench.txt) or a .json file path")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one photo, one seed, light speed section")
    parser.add_argument("--photos", nargs="+", type=_names, default=None, metavar="NAME",
                        help=f"photos to use, from {', '.join(BENCH_PHOTO_NAMES)}")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=_ints, default=None, metavar="N",
                        help="planting seeds (default 0 1 2; --quick: 0)")  # fmt: skip
    parser.add_argument("--peers", nargs="+", type=_names, default=None, metavar="NAME",
                        help="only these peers")  # fmt: skip
    parser.add_argument("--no-speed", action="store_true", help="skip the speed section")
    parser.add_argument("--no-reference", action="store_true",
                        help="skip the reference-mode and anomaly-filter sections")  # fmt: skip
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon throughput run")
    parser.add_argument("--cache-dir", type=Path, default=None, help="where downloaded photos are kept")
    args = parser.parse_args(argv)
    for key in ("photos", "seeds", "peers"):
        value = getattr(args, key)
        if value is not None:
            setattr(args, key, [item for group in value for item in group])
    return args


def _quiet_logs() -> None:
    """Warnings and errors only: the pipeline's per-photo info/debug lines would bury the table."""
    try:
        from skinretouch.config import LoggingConfig
        from skinretouch.logs import configure_logging

        configure_logging(LoggingConfig(format="console", level="warning"), stream=sys.stderr)
    except Exception:  # logging set-up is a nicety; the bench runs without it
        pass


def _names(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


def _output_paths(out: Path) -> tuple[Path, Path | None]:
    if out.suffix == ".json":
        return out, out.with_suffix(".txt")
    return out / "bench.json", out / "bench.txt"


# --- the project, guarded -------------------------------------------------------------------------


class _Project:
    """The project's pipeline and image I/O, or why they are unavailable."""

    def __init__(self, retoucher=None, io=None, reason: str = "") -> None:
        self.retoucher = retoucher
        self.io = io  # module skinretouch.imageio, or None
        self.reason = reason
        self._warm_modes: set[bool] = set()  # with mask / without: each warmed on a real photo

    @property
    def ready(self) -> bool:
        return self.retoucher is not None

    @classmethod
    def load(cls) -> _Project:
        io = None
        try:
            from skinretouch import imageio

            needed = ("read_image", "decode_image", "encode_image", "to_float", "from_float")
            if all(hasattr(imageio, name) for name in needed):
                io = imageio
        except Exception:  # a half-written module must not stop the peers' bench
            io = None
        try:
            from skinretouch.config import Config
            from skinretouch.pipeline import Retoucher

            retoucher = Retoucher(Config())
            if hasattr(retoucher, "warm_up"):
                retoucher.warm_up()
        except Exception as exc:
            return cls(None, io, f"{type(exc).__name__}: {exc}")
        return cls(retoucher, io)

    def retouch(self, rgb8: np.ndarray, mask: np.ndarray | None):
        """Return (pixels float32, applied mask, result, wall ms)."""
        image = rgb8.astype(np.float32) / np.float32(255.0)
        if (mask is not None) not in self._warm_modes:
            # Timings are warm: the first real photo of each mode may still compile kernels
            # that the pipeline's own tiny warm-up did not reach.
            self.retoucher.retouch(image, mask=mask)
            self._warm_modes.add(mask is not None)
        started = time.perf_counter()
        result = self.retoucher.retouch(image, mask=mask)
        pixels = result.pixels
        elapsed = (time.perf_counter() - started) * 1000.0
        return pixels, np.asarray(result.applied_mask, dtype=bool), result, elapsed


# --- 1. removal with oracle masks -----------------------------------------------------------------


def run_method(name: str, project: _Project, rgb8: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    """One removal method of the table on ``rgb8`` with the oracle ``mask``: (result, ms).

    The project's time is its removal stage's (``timings_ms["inpaint"]``): the peers' is their
    fill alone, and a mask's retouch also parses the photo's face for its scale first (tens of
    ms a photo: on the test split 0.209 of PatchMatch's time counted in, 0.049 without)."""
    if name == INPUT:
        return rgb8, float("nan")
    if name == PROJECT:
        pixels, _, result, wall_ms = project.retouch(rgb8, mask)
        return pixels, float(result.timings_ms.get("inpaint", wall_ms))
    return run_peer(name, rgb8, mask)


def _removal_section(photos, seeds, peers, project) -> dict:
    methods = [INPUT, *peers] + ([PROJECT] if project.ready else [])
    collected = {name: _Collector() for name in methods}
    runs = []
    errors: dict[str, str] = {}
    for photo in photos:
        for seed in seeds:
            blemished, spots = plant_spots(photo, seed=seed)
            rgb8 = _to_uint8(blemished)
            mask = oracle_mask(spots, rgb8.shape, dilation_px=round(ORACLE_DILATION_PX * photo.scale))
            runs.append((photo, seed, rgb8, spots))
            for name in methods:
                if name in errors:
                    continue
                try:
                    result, ms = run_method(name, project, rgb8, mask)
                except Exception as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
                    traceback.print_exc(limit=3)
                    continue
                metrics = removal_metrics(result, photo.rgb, spots, scale=photo.scale, blemished=rgb8)
                collected[name].add(photo.name, seed, metrics, ms)
            print(f"  removal: {photo.name} seed {seed}: {sum(not s.keep for s in spots)} spots, "
                  f"{sum(s.keep for s in spots)} moles", flush=True)  # fmt: skip
    section = {
        "methods": {name: collected[name].summary() for name in methods if name not in errors},
        "errors": errors,
        "_runs": runs,
    }
    if PROJECT in section["methods"] and PATCHMATCH in section["methods"]:
        ours = section["methods"][PROJECT]["time_ms_total"]
        theirs = section["methods"][PATCHMATCH]["time_ms_total"]
        section["project_over_patchmatch_time"] = ours / theirs if theirs > 0 else float("nan")
    return section


class _Collector:
    """Per-spot figures and per-run figures of one method, pooled over photos and seeds."""

    def __init__(self) -> None:
        self.spots: list[dict] = []
        self.runs: list[dict] = []

    def add(self, photo: str, seed: int, metrics: dict, ms: float) -> None:
        for spot in metrics["per_spot"]:
            self.spots.append({"photo": photo, "seed": seed, **spot})
        self.runs.append({
            "photo": photo, "seed": seed, "time_ms": ms, "collateral": metrics["collateral"],
            "moles_dE": metrics.get("moles_dE", float("nan")),
            "dE": metrics["dE"], "lf_dE": metrics["lf_dE"],
            "texture_ratio_median": metrics["texture_ratio_median"],
        })  # fmt: skip

    def summary(self) -> dict:
        out = _pool(self.spots)
        times = np.array([run["time_ms"] for run in self.runs], dtype=np.float64)
        out["collateral"] = _nanmean([run["collateral"] for run in self.runs])
        out["moles_dE"] = _nanmean([run["moles_dE"] for run in self.runs])
        out["time_ms"] = _nanmean(times)
        out["time_ms_total"] = float(np.nansum(times)) if np.isfinite(times).any() else float("nan")
        out["per_photo"] = {
            name: _pool([s for s in self.spots if s["photo"] == name])
            for name in sorted({s["photo"] for s in self.spots})
        }
        out["per_kind"] = {
            kind: _pool([s for s in self.spots if s["kind"] == kind])
            for kind in sorted({s["kind"] for s in self.spots})
        }
        out["runs"] = self.runs
        return out


def _pool(spots: list[dict]) -> dict:
    ratios = np.array([s["texture_ratio"] for s in spots], dtype=np.float64)
    ratios = ratios[np.isfinite(ratios)]
    return {
        "dE": _nanmean([s["dE"] for s in spots]),
        "lf_dE": _nanmean([s["lf_dE"] for s in spots]),
        "texture_ratio_median": float(np.median(ratios)) if ratios.size else float("nan"),
        "texture_ratio_mean": float(ratios.mean()) if ratios.size else float("nan"),
        "texture_ok": float(np.mean((ratios >= 0.7) & (ratios <= 1.3))) if ratios.size else float("nan"),
        "n_spots": len(spots),
        "n_texture_spots": int(ratios.size),
    }


# --- 2. detection ---------------------------------------------------------------------------------


def _detection_section(runs, project) -> dict:
    if not project.ready:
        return {"available": False, "reason": project.reason}
    per_run, removal = [], _Collector()
    try:
        for photo, seed, rgb8, spots in runs:
            pixels, applied, _, ms = project.retouch(rgb8, None)
            metrics = detection_metrics(applied, spots)
            per_run.append({"photo": photo.name, "seed": seed, "time_ms": ms, **metrics})
            scores = removal_metrics(pixels, photo.rgb, spots, scale=photo.scale, blemished=rgb8)
            removal.add(photo.name, seed, scores, ms)
    except Exception as exc:
        traceback.print_exc(limit=3)
        return {"available": False, "reason": f"{type(exc).__name__}: {exc}"}
    n_spots = sum(run["n_spots"] for run in per_run)
    n_moles = sum(run["n_moles"] for run in per_run)
    kinds = sorted({kind for run in per_run for kind in run["recall_per_kind"]})
    per_kind = {}
    for kind in kinds:
        # recall_per_kind holds fractions; weight them back by that kind's count in each run.
        found = total = 0
        for photo_run, (photo, seed, rgb8, spots) in zip(per_run, runs):
            count = sum(1 for s in spots if s.kind == kind and not s.keep)
            total += count
            found += photo_run["recall_per_kind"].get(kind, 0.0) * count
        per_kind[kind] = found / total if total else float("nan")
    false_regions = sum(run["false_regions"] for run in per_run)
    clean_photos = {}
    for photo in {photo.name: photo for photo, *_ in runs}.values():
        # The same photos with nothing planted: every region found there is a false one.
        _, _, result, _ = project.retouch(photo.rgb, None)
        clean_photos[photo.name] = {
            "regions": len(result.regions),
            "masked_fraction": float(result.applied_mask.mean()),
            "protected": sorted({feature.kind for feature in result.detection.protected}),
        }
    return {
        "clean_photos": clean_photos,
        "available": True,
        "recall": sum(run["found"] for run in per_run) / n_spots if n_spots else float("nan"),
        "recall_per_kind": per_kind,
        "false_regions": false_regions,
        "false_regions_per_spot": false_regions / n_spots if n_spots else float("nan"),
        "moles_hit": sum(run["moles_hit"] for run in per_run),
        "n_moles": n_moles,
        "n_spots": n_spots,
        "removal_after_detection": removal.summary(),
        "runs": per_run,
    }


# --- 3. speed -------------------------------------------------------------------------------------


def _speed_section(photos, project, removal, *, quick: bool, daemon: bool) -> dict:
    section: dict = {}
    if PROJECT in removal["methods"] and PATCHMATCH in removal["methods"]:
        section["project_over_patchmatch_removal_time"] = removal["project_over_patchmatch_time"]
    if project.io is None:
        section["reason"] = "skinretouch.imageio unavailable"
        return section
    base = max(photos, key=lambda p: p.rgb.size)
    workdir = Path(tempfile.mkdtemp(prefix="skinretouch-bench-"))
    try:
        section["round_trip"] = _round_trip(project, base, workdir)
        blemished, spots = plant_spots(base, seed=0)
        path = _write_jpeg(workdir / f"{base.name}.jpg", _to_uint8(blemished))
        section["photos"] = [_time_photo(project, path, spots, repeats=SPEED_REPEATS, label=base.name)]
        if not quick:
            for width, height in SPEED_SIZES:
                photo = _resized(base, width, height)
                blemished, spots = plant_spots(photo, seed=0, n_spots=SPEED_SPOTS, n_moles=0)
                path = _write_jpeg(workdir / f"{width}x{height}.jpg", _to_uint8(blemished))
                del blemished
                label = f"{width}x{height}"
                section["photos"].append(_time_photo(project, path, spots, repeats=1, label=label))
                if (width, height) == SPEED_SIZES[-1] and project.ready:
                    section["memory"] = _memory(path)
        if project.ready and not quick:
            section["portrait_detection"] = _portrait_detection_speed(photos, project, workdir)
        if project.ready and daemon and not quick:
            # Issue 6 measures the daemon at 2048x2048.
            sample = workdir / "2048x2048.jpg"
            section["daemon"] = daemon_sustained_photos_per_second(sample, DAEMON_PHOTOS, workdir / "daemon")
            section["daemon"]["sample"] = sample.name
        else:
            section["daemon"] = {"photos_per_s": None, "reason": "skipped (--quick or --no-daemon)"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return section


def _time_photo(project, path: Path, spots, *, repeats: int, label: str) -> dict:
    io = project.io
    from skinretouch.config import Config
    from skinretouch.files.stage import process_file

    options = Config().output
    floor = []
    for _ in range(max(2, repeats)):
        started = time.perf_counter()
        image = io.read_image(path)
        io.encode_image(image, image.pixels, options=options)
        floor.append((time.perf_counter() - started) * 1000.0)
        del image
    entry = {"photo": label, "file_bytes": path.stat().st_size, "floor_ms": float(np.median(floor))}
    if not project.ready:
        entry["reason"] = project.reason
        return entry
    out_dir = path.parent / f"out-{label}"
    totals, stages = [], []
    try:
        if repeats > 1:  # one unmeasured run first: caches, thread pools, page cache
            process_file(project.retoucher, path, out_dir=out_dir, force=True)
        for _ in range(repeats):
            started = time.perf_counter()
            outcome = process_file(project.retoucher, path, out_dir=out_dir, force=True)
            totals.append((time.perf_counter() - started) * 1000.0)
            stages.append(dict(outcome.timings_ms))
            if outcome.status != "ok":
                entry["reason"] = f"process failed: {outcome.error}"
                return entry
        mask = _read_mask(outcome.mask_path)
    except Exception as exc:
        traceback.print_exc(limit=3)
        entry["reason"] = f"{type(exc).__name__}: {exc}"
        return entry
    process_ms = float(np.median(totals))
    entry["process_ms"] = process_ms
    entry["process_over_floor"] = process_ms / entry["floor_ms"]
    for stage in ("detect", "inpaint", "decode", "encode"):
        values = [s[stage] for s in stages if stage in s]
        if values:
            entry[f"{stage}_ms"] = float(np.median(values))
            entry[f"{stage}_over_floor"] = entry[f"{stage}_ms"] / entry["floor_ms"]
    if mask is not None and mask.shape == spots[0].footprint.shape:
        found = detection_metrics(mask, spots)
        entry["detection"] = {k: v for k, v in found.items() if k != "recall_per_kind"}
    return entry


def _portrait_detection_speed(photos, project, workdir: Path) -> dict:
    """Detection alone on a 2048x2048 portrait (issue 5's budget), warm, beside its decode floor."""
    portrait = next((p for p in photos if p.name == "grace_hopper"), None)
    if portrait is None:
        return {"reason": "grace_hopper not among the bench photos"}
    photo = _resized(portrait, 2048, 2048)
    path = _write_jpeg(workdir / "portrait-2048.jpg", photo.rgb)
    decode = []
    for _ in range(3):
        started = time.perf_counter()
        image = project.io.read_image(path)
        decode.append((time.perf_counter() - started) * 1000.0)
    pixels = project.io.to_float(image.pixels)
    detector = project.retoucher.detector
    detector.detect(pixels)  # warm
    times = []
    for _ in range(SPEED_REPEATS):
        started = time.perf_counter()
        detection = detector.detect(pixels)
        times.append((time.perf_counter() - started) * 1000.0)
    detect_ms, decode_ms = float(np.median(times)), float(np.median(decode))
    return {
        "photo": photo.name,
        "method": detection.method,
        "detect_ms": detect_ms,
        "decode_ms": decode_ms,
        "detect_over_decode": detect_ms / decode_ms,
    }


def _round_trip(project, photo: BenchPhoto, workdir: Path) -> dict:
    """PSNR of an untouched photo re-encoded by the project, and after a whole process."""
    from skinretouch.config import Config
    from skinretouch.files.stage import process_file

    io = project.io
    path = _write_jpeg(workdir / f"clean-{photo.name}.jpg", photo.rgb)
    image = io.read_image(path)
    decoded = np.asarray(image.pixels)
    again = io.decode_image(io.encode_image(image, image.pixels, options=Config().output))
    out = {"photo": photo.name, "encode_decode_psnr_db": _psnr(decoded, np.asarray(again.pixels))}
    if project.ready:
        outcome = process_file(project.retoucher, path, out_dir=workdir / "clean-out", force=True)
        if outcome.status == "ok":
            processed = np.asarray(io.read_image(outcome.image_path).pixels)
            out["process_psnr_db"] = _psnr(decoded, processed)
            mask = _read_mask(outcome.mask_path)
            out["process_masked_fraction"] = float(mask.mean()) if mask is not None else None
    return out


def _memory(path: Path) -> dict:
    """Peak resident memory of a process run, measured in a fresh interpreter."""
    code = "from skinretouch.benchmark.run import _memory_probe; import sys; _memory_probe(sys.argv[1])"
    env = dict(os.environ)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                              timeout=300, env=env)  # fmt: skip
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"reason": f"memory probe failed: {exc}"}


def _memory_probe(path: str) -> None:
    """Print the memory figures of one process run as a JSON line (run in a fresh interpreter).

    ``ru_maxrss`` survives ``exec`` on Linux (it would report the parent bench's peak), so the
    peak is read from ``VmHWM`` in ``/proc/self/status``, reset through ``clear_refs`` between
    the steps where the kernel allows it.
    """
    from skinretouch.config import Config
    from skinretouch.files.stage import process_file
    from skinretouch.imageio import encode_image, read_image
    from skinretouch.pipeline import Retoucher

    config = Config()
    retoucher = Retoucher(config)
    retoucher.warm_up()
    loaded = _proc_status_mb("VmRSS")
    resettable = _reset_peak_rss()
    image = read_image(path)
    encode_image(image, image.pixels, options=config.output)
    del image
    floor_peak = _proc_status_mb("VmHWM")
    if resettable:
        _reset_peak_rss()
    outcome = process_file(retoucher, path, out_dir=Path(path).parent / "memory-out", force=True)
    peak = _proc_status_mb("VmHWM")
    print(json.dumps({
        "photo": Path(path).name, "status": outcome.status, "peak_rss_mb": round(peak, 1),
        "loaded_rss_mb": round(loaded, 1), "decode_encode_peak_rss_mb": round(floor_peak, 1),
        "process_delta_mb": round(peak - loaded, 1), "peak_reset_between_steps": resettable,
    }))  # fmt: skip


def _proc_status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def daemon_sustained_photos_per_second(sample: Path, count: int, folder: Path) -> dict:
    """The real daemon (``skinretouch watch``) on ``count`` copies of ``sample`` dropped at once,
    then a few dropped one at a time: sustained photos/s and close -> report latency.

    Returns ``{"photos_per_s": None, "reason": ...}`` ("n/a") when the daemon is absent or fails.
    """
    try:
        from skinretouch.benchmark.daemon_throughput import measure_throughput
    except Exception as exc:
        return {"photos_per_s": None, "reason": f"daemon unavailable: {type(exc).__name__}: {exc}"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result = measure_throughput([sample] * count, folder)
    except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
        return {"photos_per_s": None, "reason": f"daemon run failed: {exc}"}
    if result.get("failed"):
        result["reason"] = f"{result['failed']} photo(s) failed"
    return result


def _resized(photo: BenchPhoto, width: int, height: int) -> BenchPhoto:
    """A bench photo cropped to the aspect ratio and upscaled (cubic) to width x height."""
    h, w = photo.skin.shape
    if w / h > width / height:
        crop_w, crop_h = int(round(h * width / height)), h
    else:
        crop_w, crop_h = w, int(round(w * height / width))
    y0, x0 = (h - crop_h) // 2, (w - crop_w) // 2
    rgb = cv2.resize(photo.rgb[y0 : y0 + crop_h, x0 : x0 + crop_w], (width, height),
                     interpolation=cv2.INTER_CUBIC)  # fmt: skip
    skin = cv2.resize(photo.skin[y0 : y0 + crop_h, x0 : x0 + crop_w].astype(np.uint8), (width, height),
                      interpolation=cv2.INTER_NEAREST).astype(bool)  # fmt: skip
    return BenchPhoto(f"{photo.name}@{width}x{height}", rgb, skin, image_scale(height, width))


def _write_jpeg(path: Path, rgb8: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(rgb8).save(path, quality=JPEG_QUALITY, subsampling=0)
    return path


def _read_mask(path) -> np.ndarray | None:
    if path is None or not Path(path).exists():
        return None
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("L")) > 0


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    peak = 255.0 if a.dtype == np.uint8 else 65535.0
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10.0 * math.log10(peak * peak / mse))


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


# --- output ---------------------------------------------------------------------------------------


def _format_report(report: dict) -> str:
    lines = ["", "REMOVAL (oracle masks; per spot, pooled over photos and seeds)"]
    header = (f"{'method':<28}{'dE':>7}{'lf_dE':>8}{'tex_med':>9}{'tex_ok':>8}{'collat':>9}"
              f"{'moles':>7}{'time_ms':>10}{'spots':>7}")  # fmt: skip
    lines.append(header)
    lines.append("-" * len(header))
    methods = dict(report["removal"]["methods"])
    detection = report["detection"]
    if detection.get("available"):
        methods[PROJECT_AUTO] = detection["removal_after_detection"]
    for name, m in methods.items():
        lines.append(
            f"{name:<28}{_f(m['dE'], 2):>7}{_f(m['lf_dE'], 2):>8}{_f(m['texture_ratio_median'], 2):>9}"
            f"{_f(m['texture_ok'], 2):>8}{_f(m['collateral'], 4):>9}{_f(m['moles_dE'], 2):>7}"
            f"{_f(m['time_ms'], 1):>10}{m['n_spots']:>7}"
        )
    for name, error in report["removal"]["errors"].items():
        lines.append(f"{name:<28}error: {error}")
    if not report["project"]["ready"]:
        lines.append(f"{PROJECT:<28}project: unavailable ({report['project']['reason']})")
    lines.append("  dE/lf_dE: CIE76 over footprints vs clean; tex: high-pass L std ratio (1 = texture kept);")
    lines.append("  collat: share of far pixels changed > 3/255; moles: dE the method caused on kept moles.")
    if "project_over_patchmatch_time" in report["removal"]:
        lines.append(f"  removal time, project / pypatchmatch-on-crops (same masks): "
                     f"{_f(report['removal']['project_over_patchmatch_time'], 2)}")  # fmt: skip
    for title, key in (("dE BY KIND", "per_kind"), ("dE / lf_dE / tex_med BY PHOTO", "per_photo")):
        groups = sorted({group for m in methods.values() for group in m[key]})
        if not groups:
            continue
        width = 11 if key == "per_kind" else 19
        lines += ["", f"{title} (same runs)"]
        lines.append(f"{'method':<28}" + "".join(f"{group:>{width}}" for group in groups))
        for name, m in methods.items():
            cells = ""
            for group in groups:
                figures = m[key].get(group, {})
                cell = _f(figures.get("dE"), 2)
                if key == "per_photo":
                    cell += f"/{_f(figures.get('lf_dE'), 2)}/{_f(figures.get('texture_ratio_median'), 2)}"
                cells += f"{cell:>{width}}"
            lines.append(f"{name:<28}{cells}")

    lines += ["", "DETECTION (project's own mask)"]
    if detection.get("available"):
        kinds = ", ".join(f"{k} {_f(v, 2)}" for k, v in detection["recall_per_kind"].items())
        lines.append(f"  recall {_f(detection['recall'], 3)} of {detection['n_spots']} spots ({kinds})")
        lines.append(f"  false regions {detection['false_regions']} "
                     f"({_f(detection['false_regions_per_spot'], 2)} per planted spot)")  # fmt: skip
        lines.append(f"  moles hit {detection['moles_hit']} of {detection['n_moles']} (must be 0)")
        for name, clean in detection.get("clean_photos", {}).items():
            lines.append(f"  {name} with nothing planted: {clean['regions']} region(s), "
                         f"{100 * clean['masked_fraction']:.3f} % masked; protected: "
                         f"{', '.join(clean['protected']) or 'none'}")  # fmt: skip
    else:
        lines.append(f"  n/a: {detection.get('reason', '')}")

    one_shot = report.get("one_shot") or {}
    if one_shot:
        from .reference import format_anomaly_table, format_reference_table

        lines += ["", "ONE-SHOT REFERENCE MODE AND ANOMALY FILTER (detection on planted spots)"]
        lines += [format_reference_table(one_shot["reference"]), format_anomaly_table(one_shot["anomaly"])]

    speed = report["speed"]
    lines += ["", "SPEED"]
    if not speed:
        lines.append("  skipped")
    if "reason" in speed:
        lines.append(f"  n/a: {speed['reason']}")
    if "project_over_patchmatch_removal_time" in speed:
        lines.append(f"  removal time, project / pypatchmatch-on-crops: "
                     f"{_f(speed['project_over_patchmatch_removal_time'], 2)}")  # fmt: skip
    for entry in speed.get("photos", []):
        text = f"  {entry['photo']:<24} floor (decode+encode) {_f(entry['floor_ms'], 0)} ms"
        if "process_ms" in entry:
            text += (f"; process {_f(entry['process_ms'], 0)} ms = "
                     f"{_f(entry['process_over_floor'], 2)}x floor "
                     f"(detect {_f(entry.get('detect_over_floor'), 2)}x, "
                     f"remove {_f(entry.get('inpaint_over_floor'), 2)}x)")  # fmt: skip
        if "reason" in entry:
            text += f"; process n/a: {entry['reason']}"
        if "detection" in entry:
            text += f"; recall {_f(entry['detection']['recall'], 2)}"
        lines.append(text)
    if "memory" in speed:
        mem = speed["memory"]
        if "peak_rss_mb" in mem:
            lines.append(f"  peak memory ({mem['photo']}): {mem['peak_rss_mb']} MB RSS "
                         f"(+{mem['process_delta_mb']} MB over the loaded pipeline's "
                         f"{mem['loaded_rss_mb']} MB; decode+encode alone peaks at "
                         f"{mem['decode_encode_peak_rss_mb']} MB)")  # fmt: skip
        else:
            lines.append(f"  peak memory: n/a: {mem.get('reason')}")
    if "round_trip" in speed:
        rt = speed["round_trip"]
        text = f"  JPEG decode->encode PSNR of an untouched photo: {_f(rt['encode_decode_psnr_db'], 1)} dB"
        if "process_psnr_db" in rt:
            text += f"; after a whole process: {_f(rt['process_psnr_db'], 1)} dB"
        lines.append(text)
    portrait = speed.get("portrait_detection")
    if portrait and "detect_ms" in portrait:
        lines.append(f"  detection alone, {portrait['photo']} ({portrait['method']}): "
                     f"{_f(portrait['detect_ms'], 0)} ms warm = {_f(portrait['detect_over_decode'], 2)}x "
                     f"its decode ({_f(portrait['decode_ms'], 0)} ms)")  # fmt: skip
    if "daemon" in speed:
        daemon = speed["daemon"]
        rate = daemon.get("photos_per_s")
        lines.append(f"  daemon sustained ({daemon.get('sample', '?')}): {_f(rate, 2) + ' photos/s' if rate else 'n/a'}"
                     + (f" ({daemon['reason']})" if daemon.get("reason") else ""))  # fmt: skip
        for key, label in (("latency_s", "one at a time"), ("burst_latency_s", "in the burst")):
            latency = daemon.get(key)
            if latency:
                lines.append(f"  daemon close->report latency {label}: median {_f(latency['median'], 2)} s, "
                             f"p95 {_f(latency['p95'], 2)} s (n={latency['n']})")  # fmt: skip
    lines.append(f"\nwall time {report['wall_s']} s")
    return "\n".join(lines)


def _f(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


if __name__ == "__main__":
    sys.exit(main())
