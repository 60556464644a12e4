"""The ``skinretouch process`` loop: expand the inputs, process each, show progress and failures."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from .config import Config
from .files.stage import process_file
from .pipeline import Retoucher
from .sidecars import is_ignored_name, is_sidecar_or_output

__all__ = ["collect_inputs", "run_batch"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})


def collect_inputs(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files named directly, plus the images directly inside named folders.

    Folders contribute only files with an image extension that are not our own outputs,
    hidden or temporary; a file named directly is always tried (and fails clearly if it is
    not an image). Returns ``(inputs, missing)``; duplicates are dropped, order kept.
    """
    inputs: list[Path] = []
    missing: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            candidates = sorted(
                child
                for child in path.iterdir()
                if child.is_file()
                and child.suffix.lower() in IMAGE_EXTENSIONS
                and not is_sidecar_or_output(child)
                and not is_ignored_name(child)
            )
        elif path.exists():
            candidates = [path]
        else:
            missing.append(path)
            continue
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                inputs.append(candidate)
    return inputs, missing


def run_batch(
    config: Config,
    inputs: list[Path],
    *,
    missing: list[Path],
    out_dir: Path | None,
    mask_path: Path | None,
    force: bool,
    debug_overlay: bool,
    references: list | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Process every input; returns 0 if all succeeded (or were up to date), else 1."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    failures = 0
    for path in missing:
        print(f"{path}: no such file or folder", file=err)
        failures += 1
    if not inputs:
        return 1 if failures else 0

    retoucher = Retoucher(config, references=references)
    try:
        progress = _Progress(len(inputs), err)
        for index, path in enumerate(inputs, start=1):
            progress.show(index, path)
            outcome = process_file(
                retoucher, path, out_dir=out_dir, mask_path=mask_path, force=force, debug_overlay=debug_overlay
            )
            progress.clear()
            if outcome.status == "failed":
                failures += 1
                print(f"{path}: {outcome.error}", file=err)
            elif outcome.status == "skipped":
                print(f"{path}: up to date (use --force to redo)", file=out)
            else:
                seconds = outcome.timings_ms.get("total", 0.0) / 1000.0
                print(
                    f"{path}: {outcome.regions} region(s) in {seconds:.2f} s\n"
                    f"  retouched: {outcome.image_path}\n"
                    f"  mask:      {outcome.mask_path}\n"
                    f"  report:    {outcome.report_path}"
                    + (f"\n  overlay:   {outcome.overlay_path}" if outcome.overlay_path else ""),
                    file=out,
                )
            out.flush()
    finally:
        retoucher.close()
    progress.finish(failures - len(missing))
    return 1 if failures else 0


class _Progress:
    """A one-line progress indicator on a terminal; silent when stderr is not one."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.enabled = total > 1 and stream.isatty()
        self.started = time.monotonic()

    def show(self, index: int, path: Path) -> None:
        if self.enabled:
            elapsed = time.monotonic() - self.started
            eta = elapsed / max(index - 1, 1) * (self.total - index + 1) if index > 1 else 0.0
            self.stream.write(f"\r[{index}/{self.total}] {path.name[:40]:<40} eta {eta:5.0f} s")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def finish(self, failures: int) -> None:
        if self.total > 1:
            done = self.total - failures
            self.stream.write(
                f"{done}/{self.total} processed, {failures} failed in {time.monotonic() - self.started:.1f} s\n"
            )
            self.stream.flush()
