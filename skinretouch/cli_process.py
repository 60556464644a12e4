"""The ``skinretouch process`` loop: expand the inputs, process each, show progress and failures."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from .config import Config
from .files.stage import process_file
from .pipeline import Retoucher
from .precompile import FIRST_RUN_NOTICE, kernels_compiled
from .files.report import read_report
from .sidecars import REPORT_SUFFIX, is_ignored_name, is_sidecar_or_output, output_paths

__all__ = ["claiming_report", "collect_inputs", "output_collisions", "run_batch"]

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff"})


def collect_inputs(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """Files named directly, plus the images directly inside named folders.

    Folders contribute only files with an image extension that are not named like our
    outputs, hidden or temporary. A file named directly is tried (and fails clearly if it
    is not an image) unless a report claims it as its output: a ``portrait.retouched.jpg``
    no report claims is the user's own photo and is processed. Returns
    ``(inputs, missing)``; duplicates are dropped, order kept.
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
        elif path.exists() or path.is_symlink():  # a broken or looping link: the file stage says which
            candidates = [] if is_sidecar_or_output(path) and claiming_report(path) else [path]
        else:
            missing.append(path)
            continue
        for candidate in candidates:
            key = Path(os.path.realpath(candidate))  # never raises, even for a link loop
            if key not in seen:
                seen.add(key)
                inputs.append(candidate)
    return inputs, missing


def claiming_report(path: Path) -> Path | None:
    """The report beside ``path`` that lists ``path`` as its retouched photo or mask, if any."""
    folder = path.parent
    try:
        names = [n for n in os.listdir(folder) if n.endswith(REPORT_SUFFIX)]
    except OSError:
        return None
    target = str(path.absolute())
    for name in names:
        report = read_report(folder / name)
        outputs = (report or {}).get("outputs") or {}
        if target in (outputs.get("image"), outputs.get("mask")):
            return folder / name
    return None


def output_collisions(inputs: list[Path], out_dir: Path | None) -> list[str]:
    """One line per output file that two inputs of the batch would both write."""
    writers: dict[Path, Path] = {}
    problems = []
    for path in inputs:
        target = Path(os.path.abspath(output_paths(path, out_dir).report))
        if target in writers:
            image = output_paths(path, out_dir).image
            problems.append(f"{writers[target]} and {path} would both write {image.name} (and its mask and "
                            f"report) in {image.parent}; process them into different --out-dir folders")
        else:
            writers[target] = path
    return problems


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
    if force or not _probably_done(inputs[0], out_dir):
        if not kernels_compiled():
            print(FIRST_RUN_NOTICE, file=err, flush=True)
        retoucher.warm_up_in_background()
    try:
        progress = _Progress(len(inputs), err)
        for index, path in enumerate(inputs, start=1):
            progress.show(index, path)
            outcome = process_file(
                retoucher, path, out_dir=out_dir, mask_path=mask_path, force=force, debug_overlay=debug_overlay
            )
            progress.clear()
            if outcome.status in ("failed", "deferred"):  # deferred: no report, a rerun retries it
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


def _probably_done(path: Path, out_dir: Path | None) -> bool:
    """Whether an ok report already stands beside ``path``'s outputs (it is then most likely
    skipped as up to date, and nothing needs warming up for it)."""
    report = read_report(output_paths(path, out_dir).report)
    return bool(report) and report.get("status") == "ok"


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
