"""``make bench-speed`` (issue 17): what a user waits for, as whole processes, beside the floor.

Each figure is a fresh interpreter timed from ``exec`` to exit, start-up included:

- ``process`` of a 2048x2048 JPEG with 10 planted spots, against its floor: a process that
  only decodes the same JPEG and encodes it at the project's output quality (numpy and
  simplejpeg, nothing else). Runs alternate (floor, process, floor, process...) so that load on
  the shared machine hits both alike; the report gives the median ratio and its range.
- ``process`` of 6000x4000 (and 100 MP with ``--large``): wall time and peak RSS (the child's
  ``ru_maxrss`` from ``wait4``), peak per megapixel.
- The daemon at 2048x2048: sustained photos/s and close -> report latency (p95). This
  source's daemon gets a numba cache holding its kernels compiled ahead of time, as an
  installed service's holds them; a baseline's daemon compiles its kernels at start into a
  fresh one (``startup_s``), before anything is timed.

``--baseline SRC`` (a folder with an older ``skinretouch/``, e.g. from ``git worktree add``)
runs that version's ``process`` alternately with this one's, for before/after ratios from
one run on a shared machine.

Prints one JSON document (also written to ``--out``/speed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FLOOR_CODE = (
    "import sys, numpy, simplejpeg\n"
    "data = open(sys.argv[1], 'rb').read()\n"
    "rgb = simplejpeg.decode_jpeg(data, colorspace='RGB')\n"
    "out = simplejpeg.encode_jpeg(rgb, quality=int(sys.argv[3]), colorspace='RGB', colorsubsampling=sys.argv[4])\n"
    "open(sys.argv[2], 'wb').write(out)\n"
)
SUBSAMPLING = {"4:4:4": "444", "4:2:2": "422", "4:2:0": "420"}


def timed_process(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int]:
    """(wall seconds, peak RSS in MB, exit status) of one child process.

    Linux counts the bench's own resident memory at ``fork`` in the child's peak, so a peak not
    above the bench's own is unknown (NaN) rather than the bench's. The child's CPU seconds
    (user + system, all its threads) are kept in :data:`LAST_CPU_S`: on a shared machine they
    move less than wall time.
    """
    own_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _pid, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    LAST_CPU_S[0] = usage.ru_utime + usage.ru_stime
    peak_mb = usage.ru_maxrss / 1024.0
    return wall, (peak_mb if peak_mb > own_mb * 1.01 else float("nan")), child.returncode


LAST_CPU_S = [0.0]


def _env(source: Path | None) -> dict[str, str]:
    """The environment that runs ``source``'s skinretouch (an older checkout), or this one's.

    Children run with ``-P`` (see :func:`process_command`), so neither the current folder nor
    the editable install shadows the checkout named here: without that, ``python -m`` put the
    current folder first on ``sys.path`` and a "baseline" run from this tree ran this tree.

    Children may write bytecode (:func:`_bytecode_env`), as a user's first run does.
    """
    root = Path(source).resolve() if source is not None else Path(__file__).resolve().parents[2]
    return {**_bytecode_env(), "PYTHONPATH": str(root)}


def _bytecode_env() -> dict[str, str]:
    """This environment without ``PYTHONDONTWRITEBYTECODE``.

    With it set (as on the project's shared build machine), the unmeasured first run left no
    ``.pyc`` behind and every measured ``process`` compiled skinretouch's modules from source
    again, about 40 ms a run (0.81 -> 0.77 s at 2048x2048) that no installed copy pays: pip
    compiles a package's bytecode on install, and a checkout writes it on its first run. The
    floor's own modules (numpy, simplejpeg) come compiled from their wheels.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def process_command(path: Path, out_dir: Path) -> list[str]:
    return [sys.executable, "-P", "-m", "skinretouch", "process", str(path), "--out-dir", str(out_dir), "--force"]


def floor_command(path: Path, out: Path) -> list[str]:
    from skinretouch.config import Config

    output = Config().output
    return [sys.executable, "-c", FLOOR_CODE, str(path), str(out), str(output.jpeg_quality),
            SUBSAMPLING[output.jpeg_subsampling]]  # fmt: skip


def _summary(values: list[float]) -> dict:
    if any(v != v for v in values):
        return {"median": None, "reason": "below the bench's own size (masked by fork)", "n": len(values)}
    return {"median": round(float(np.median(values)), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}  # fmt: skip


def compile_as_installed() -> str:
    """Build the kernels ahead of time as ``make install-service`` does (``skinretouch
    compile``) if this source has none yet: the bench measures what an installed service
    runs. Returns how the kernels run."""
    from skinretouch.kernels.ahead_of_time import compiled_library_path

    if not compiled_library_path().is_file():
        print("building the kernels ahead of time first (skinretouch compile)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-P", "-m", "skinretouch", "compile"], env=_env(None), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    return "compiled ahead of time" if compiled_library_path().is_file() else "numba's JIT (the build failed)"


def _installed_cache(folder: Path) -> dict[str, str]:
    """A fresh ``NUMBA_CACHE_DIR`` for the daemon holding this source's kernels compiled ahead
    of time, as the service's cache holds them after ``make install-service``."""
    from skinretouch.kernels.ahead_of_time import compiled_library_path, library_folder, module_name

    built = compiled_library_path()
    target = library_folder(str(folder))
    target.mkdir(parents=True, exist_ok=True)
    for path in built.parent.glob(module_name(built) + ".*"):  # the module and its table
        shutil.copy2(path, target / path.name)
    return {"NUMBA_CACHE_DIR": str(folder)}


def side_by_side(path: Path, workdir: Path, repeats: int, baseline: Path | None = None) -> dict:
    """Floor and whole process of ``path`` (and of the ``baseline`` checkout), alternating,
    ``repeats`` times each, after one unmeasured run of each (numba cache, page cache)."""
    runs = {"process": _env(None)} | ({"baseline": _env(baseline)} if baseline else {})
    times: dict[str, list[float]] = {"floor": [], **{name: [] for name in runs}}
    cpu: dict[str, list[float]] = {"floor": [], **{name: [] for name in runs}}
    rss: dict[str, list[float]] = {name: [] for name in runs}
    for name, env in runs.items():
        timed_process(process_command(path, workdir / f"warm-{name}"), env)
    for i in range(repeats):
        floor_s, _, rc = timed_process(floor_command(path, workdir / f"floor-{i}.jpg"), _bytecode_env())
        times["floor"].append(floor_s)
        cpu["floor"].append(LAST_CPU_S[0])
        for name, env in runs.items():
            seconds, peak, code = timed_process(process_command(path, workdir / f"out-{name}-{i}"), env)
            if rc or code:
                return {"reason": f"exit status floor={rc} {name}={code}"}
            times[name].append(seconds)
            cpu[name].append(LAST_CPU_S[0])
            rss[name].append(peak)
    out = {"floor_s": _summary(times["floor"]), "floor_cpu_s": _summary(cpu["floor"])}
    for name in runs:
        out[f"{name}_s"] = _summary(times[name])
        out[f"{name}_cpu_s"] = _summary(cpu[name])
        out[f"{name}_cpu_over_floor"] = _summary([p / f for p, f in zip(cpu[name], cpu["floor"])])
        out[f"{name}_over_floor"] = _summary([p / f for p, f in zip(times[name], times["floor"])])
        out[f"{name}_peak_rss_mb"] = _summary(rss[name])
    return out


def whole_process(path: Path, workdir: Path, megapixels: float, repeats: int, baseline: Path | None = None) -> dict:
    """Wall time and peak RSS of whole ``process`` runs (alternating with ``baseline``'s), after
    one unmeasured run of each on this photo: a checkout whose numba cache lacks a kernel
    compiles it on its first run (a minute or more), which is not what a user waits for."""
    runs = {"process": _env(None)} | ({"baseline": _env(baseline)} if baseline else {})
    for name, env in runs.items():
        timed_process(process_command(path, workdir / f"warm-big-{name}"), env)
    walls: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    peaks: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(repeats):
        for name, env in runs.items():
            wall, peak, rc = timed_process(process_command(path, workdir / f"big-{name}-{i}"), env)
            if rc:
                return {"reason": f"{name} exited {rc}"}
            walls[name].append(wall)
            cpu[name].append(LAST_CPU_S[0])
            peaks[name].append(peak)
    out: dict = {"megapixels": round(megapixels, 1)}
    for name in runs:
        out[f"{name}_s"] = _summary(walls[name])
        out[f"{name}_cpu_s"] = _summary(cpu[name])
        out[f"{name}_peak_rss_mb"] = _summary(peaks[name])
        out[f"{name}_peak_rss_mb_per_mp"] = round(float(np.median(peaks[name])) / megapixels, 1)
    return out


def planted_jpeg(width: int, height: int, path: Path, spots: int = 10) -> Path:
    """Write the portrait resized to ``width`` x ``height`` with ``spots`` planted spots.

    Made in a child process: a 24 MP float photo in the bench's own memory would be counted
    in every later child's peak RSS (Linux counts the parent's resident pages at fork).
    """
    subprocess.run([sys.executable, "-c", MAKE_PHOTO_CODE, str(width), str(height), str(path), str(spots)],
                   check=True)  # fmt: skip
    return path


def _make_photo(width: int, height: int, path: str, spots: int) -> None:
    from skinretouch.benchmark.photos import load_bench_photos
    from skinretouch.benchmark.planting import plant_spots
    from skinretouch.benchmark.run import _resized, _to_uint8, _write_jpeg

    base = load_bench_photos(names=["grace_hopper"])[0]  # a portrait, no download
    photo = _resized(base, width, height)
    blemished, _spots = plant_spots(photo, seed=0, n_spots=spots, n_moles=0)
    _write_jpeg(Path(path), _to_uint8(blemished))


MAKE_PHOTO_CODE = (
    "import sys; from skinretouch.benchmark.speed import _make_photo; "
    "_make_photo(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skinretouch.benchmark.speed", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--large", action="store_true", help="also 100 MP (slow)")
    parser.add_argument("--no-daemon", action="store_true")
    parser.add_argument("--only-large", action="store_true", help="skip the 2048x2048 floor comparison")
    parser.add_argument("--daemon-photos", type=int, default=12)
    parser.add_argument("--daemon-workers", type=int, default=2)
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="a folder holding an older skinretouch/ package, run side by side with this one")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="skinretouch-speed-"))
    result: dict = {"cpus": os.cpu_count(), "base_photo": "grace_hopper", "kernels": compile_as_installed()}
    try:
        small = planted_jpeg(2048, 2048, workdir / "2048x2048.jpg")
        if not args.only_large:
            result["process_2048"] = side_by_side(small, workdir, args.repeats, args.baseline)
            print(json.dumps({"process_2048": result["process_2048"]}), flush=True)
        big = planted_jpeg(6000, 4000, workdir / "6000x4000.jpg")
        result["process_6000x4000"] = whole_process(big, workdir, 24.0, max(1, args.repeats // 2), args.baseline)
        print(json.dumps({"process_6000x4000": result["process_6000x4000"]}), flush=True)
        big.unlink()
        if args.large:
            huge = planted_jpeg(12248, 8165, workdir / "100mp.jpg")
            result["process_100mp"] = whole_process(huge, workdir, 12248 * 8165 / 1e6, 1, args.baseline)
            print(json.dumps({"process_100mp": result["process_100mp"]}), flush=True)
            huge.unlink()
        if not args.no_daemon:
            from skinretouch.benchmark.daemon_throughput import measure_throughput

            daemon_dir = workdir / "daemon"
            daemon_dir.mkdir()
            for name, source in {"daemon_2048": None, "baseline_daemon_2048": args.baseline}.items():
                if name.startswith("baseline") and args.baseline is None:
                    continue
                folder = daemon_dir / name
                folder.mkdir()
                env = _env(source) if source is not None else _env(None) | _installed_cache(folder / "numba")
                result[name] = measure_throughput([small] * args.daemon_photos, folder, workers=args.daemon_workers,
                                                  paced=5, env=env)  # fmt: skip
                print(json.dumps({name: result[name]}), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
