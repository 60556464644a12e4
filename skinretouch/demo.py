"""``make demo``: a sample portrait with blemishes goes through the hot-folder daemon.

The sample is made at demo time from a public-domain portrait that a PyPI package ships
(Grace Hopper, US Navy, in matplotlib's sample data), with blemishes planted by the
benchmark's renderer; then ``skinretouch watch HOT --once`` processes it like any dropped
photo, and the paths of the outputs are printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from .sidecars import output_paths

__all__ = ["main", "make_sample"]

SAMPLE_NAME = "sample_portrait.jpg"


def make_sample(folder: Path, *, seed: int = 7) -> Path:
    """Write a blemished sample portrait (JPEG) into ``folder`` and return its path."""
    from PIL import Image

    from .benchmark.photos import load_bench_photos
    from .benchmark.planting import plant_spots

    (photo,) = load_bench_photos(names=["grace_hopper"])
    blemished, _spots = plant_spots(photo, seed=seed)
    pixels = np.clip(np.rint(blemished * 255), 0, 255).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SAMPLE_NAME
    Image.fromarray(pixels).save(target, format="JPEG", quality=95, subsampling=0)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skinretouch.demo", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("demo-output"), help="where the hot folder is made")
    args = parser.parse_args(argv)

    hot = args.dir / "hot"
    sample = make_sample(hot)
    print(f"sample portrait with planted blemishes: {sample}")
    # --force semantics: the demo always re-runs, so drop an earlier report.
    paths = output_paths(sample)
    paths.report.unlink(missing_ok=True)

    command = [sys.executable, "-m", "skinretouch", "watch", str(hot), "--once"]
    print(f"running: skinretouch watch {hot} --once")
    completed = subprocess.run(command, stdout=subprocess.DEVNULL)
    if completed.returncode != 0:
        print(f"demo failed: the daemon exited with {completed.returncode}", file=sys.stderr)
        return 1
    report = json.loads(paths.report.read_text())
    if report["status"] != "ok":
        print(f"demo failed: {report['error']}", file=sys.stderr)
        return 1
    print(f"found and removed {len(report['regions'])} blemish region(s)")
    print(f"retouched photo: {paths.image}")
    print(f"mask:            {paths.mask}")
    print(f"report:          {paths.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
