"""The file stage: one photo file in, its retouched photo, mask and report out (atomically).

:func:`process_file` is the one entry for a photo on disk, used by the CLI loop, the
daemon's workers (through :class:`RetouchFiles`) and the benchmark. A bad photo never
raises: it gets a report with ``"status": "failed"`` and a readable ``error``, and no
retouched photo or mask is left behind for it (outputs of an earlier success included:
the failed report replaces the report that claimed them).

Whose files are whose
    A file at an output's name is ours only if this photo's report claims it as its
    output (``outputs.image`` / ``outputs.mask``). Anything else there (the user's own
    ``portrait.retouched.jpg``, the ``--mask`` file itself) is never overwritten: the
    photo fails and says so. In a hot folder the contract reserves the output names for
    us (files named so are never inputs there), so the daemon's worker replaces them.
A passing error is not a failure
    A full disk or quota (or a moment without memory or file handles) leaves the photo
    ``deferred``: its partial outputs are removed, no report is written (an earlier one
    stays as it was) and the caller tries again later.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..config import Config, config_sha256
from ..errors import InputError, is_transient
from ..imageio import ImageFile, encode_image, from_float_consuming, read_image, to_float
from ..imageio.masks import encode_mask_png, read_mask
from ..logs import get_logger
from ..pipeline import OwnedPhoto, Retoucher
from ..results import apply_patches
from ..safefs import read_regular_file_and_stat
from ..sidecars import OVERLAY_SUFFIX, output_paths
from ..timing import ms_since
from .outcome import FileOutcome
from .report import InputInfo, Report, read_report, stamp_report

__all__ = ["FileOutcome", "RetouchFiles", "encode_mask_png", "process_file", "report_settings"]

log = get_logger(__name__)


class RetouchFiles:
    """The daemon's :class:`~.outcome.FileProcessor`: a :class:`Retoucher` plus the file stage."""

    def __init__(self, config: Config) -> None:
        self.retoucher = Retoucher(config)

    def warm_up(self) -> None:
        self.retoucher.warm_up()

    def process_file(
        self, path: Path, *, out_dir: Path | None = None, force: bool = False, follow_symlinks: bool = True
    ) -> FileOutcome:
        return process_file(
            self.retoucher, path, out_dir=out_dir, force=force, follow_symlinks=follow_symlinks,
            outputs_reserved=True,
        )

    def report_settings(self) -> dict[str, Any]:
        return report_settings(self.retoucher)

    def close(self) -> None:
        self.retoucher.close()


def report_settings(retoucher: Retoucher, *, user_mask: bool = False) -> dict[str, Any]:
    """The report's ``settings`` for photos retouched by ``retoucher``."""
    config = retoucher.config
    return {
        "config_sha256": config_sha256(config),
        "detector": "user_mask" if user_mask else retoucher.detector.name,
        "mask_dilation_px": 0 if user_mask else config.mask.dilation_px,
    }


def process_file(
    retoucher: Retoucher,
    path: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    mask_path: str | os.PathLike[str] | None = None,
    force: bool = False,
    debug_overlay: bool = False,
    follow_symlinks: bool = True,
    outputs_reserved: bool = False,
) -> FileOutcome:
    """Decode, retouch and write one photo's outputs; never raises for a bad photo.

    Parameters
    ----------
    retoucher : Retoucher
        The loaded pipeline.
    path : path-like
        The photo.
    out_dir : path-like, optional
        Write the outputs here instead of beside the photo.
    mask_path : path-like, optional
        Replace exactly the pixels this mask selects (:mod:`skinretouch.imageio.masks`),
        without detection or dilation.
    force : bool
        Process even if an ``ok`` report with the same input sha256 exists.
    debug_overlay : bool
        Also write ``NAME.EXT.overlay.png`` showing what detection found.
    follow_symlinks : bool
        False (the daemon): a symlink at ``path`` is refused, not read.
    outputs_reserved : bool
        True where output names belong to us by contract (a hot folder): an existing
        file there is replaced even if no report claims it. False (``process``): only
        files this photo's report claims are replaced.
    """
    started = time.perf_counter()
    path = Path(path)
    out_dir = Path(out_dir) if out_dir is not None else None
    mask_path = Path(mask_path) if mask_path is not None else None
    paths = output_paths(path, out_dir)
    config = retoucher.config
    report = Report(input=InputInfo(path=str(path.absolute()), sha256=""))
    report.settings = report_settings(retoucher, user_mask=mask_path is not None)
    written: list[Path] = []
    outcome = FileOutcome(input_path=path, status="failed", report_path=paths.report)
    previous = read_report(paths.report)
    claimed = _claimed_outputs(previous)
    photo_ctime_ns: int | None = None
    try:
        if out_dir is not None:
            _make_folder(out_dir)
        _check_targets(paths, claimed, mask_path=mask_path, reserved=outputs_reserved)
        data, photo_stat = read_regular_file_and_stat(path, follow_symlinks=follow_symlinks)
        photo_ctime_ns = photo_stat.st_ctime_ns
        report.input.sha256 = hashlib.sha256(data).hexdigest()
        if not force and _already_done(previous, report.input.sha256):
            outcome.status = "skipped"
            outcome.image_path, outcome.mask_path = paths.image, paths.mask
            return outcome

        tick = time.perf_counter()
        image = read_image(path, data=data)
        report.timings_ms["decode"] = ms_since(tick)
        _describe_input(report.input, image)
        user_mask = read_mask(mask_path, shape=image.pixels.shape[:2]) if mask_path is not None else None

        # The retoucher takes the decoded integers' only reference: detection and the repair
        # read crops of them (no float copy of the whole photo), and the repair's new values
        # are written into them before encoding.
        photo = OwnedPhoto(image.pixels, image.bit_depth)
        image.pixels = _stand_in(image.pixels)  # the retouched photo takes its place when encoding
        result = retoucher.retouch(photo, mask=user_mask, orientation=image.orientation)
        del photo
        report.timings_ms.update(result.timings_ms)
        regions = result.regions
        protected = [{"kind": feature.kind, "bbox": list(feature.bbox)} for feature in result.detection.protected]
        detection = {"method": result.detection.method, "scale": round(result.detection.scale, 4)}
        applied_mask = result.applied_mask
        # One copy of the photo: the stored integers, which the repair reads and which take
        # the new values in place. The detection's full-size maps go before encoding, unless
        # the overlay still needs them.
        original, patches = result.original, result.patches
        overlay_source = result if debug_overlay else None
        del result
        # Already the stored integers (OwnedPhoto); a float original (a retoucher that made
        # no use of the hand-over) is converted over its own memory.
        if original.dtype == image.pixels.dtype:
            stored = original if overlay_source is None else original.copy()  # the overlay draws on it
        else:
            stored = from_float_consuming(original, image.bit_depth)
        del original
        retouched = apply_patches(stored, patches, in_place=stored.flags.writeable)
        del stored, patches

        tick = time.perf_counter()
        # The mask is deflated on a thread while the photo encodes: zlib and the image
        # encoders work outside the GIL, so on two cores the mask adds no wall time (it took
        # 10 ms of a 2048 x 2048 photo's 28 ms of encoding).
        with _BesideThisThread(encode_mask_png, applied_mask) as mask_encoding:
            encoded = encode_image(image, retouched, options=config.output, consume=True)
            del retouched
        mask_png = mask_encoding.result()
        report.timings_ms["encode"] = ms_since(tick)

        for target, payload in ((paths.image, encoded), (paths.mask, mask_png)):
            atomic_write_bytes(target, payload)
            written.append(target)
        del encoded
        if overlay_source is not None:
            outcome.overlay_path = _write_overlay(overlay_source, paths.mask.parent, path.name)
            written.append(outcome.overlay_path)

        report.outputs = {"image": str(paths.image.absolute()), "mask": str(paths.mask.absolute())}
        report.regions, report.protected, report.detection = regions, protected, detection
        outcome.status = "ok"
        outcome.image_path, outcome.mask_path = paths.image, paths.mask
        outcome.regions = len(regions)
    except InputError as exc:
        outcome.error = str(exc)
    except OSError as exc:
        outcome.error = _describe_os_error(exc)
        if is_transient(exc):
            outcome.status = "deferred"
    except Exception as exc:  # a bug must not take a batch or the daemon down
        log.exception("internal_error", path=str(path))
        outcome.error = f"internal error: {type(exc).__name__}: {exc}"

    if outcome.status != "ok":
        _remove_quietly(written)
    if outcome.status == "deferred":
        return _deferred(outcome, started)
    if outcome.status == "failed":
        report.fail(outcome.error)
    report.timings_ms["total"] = ms_since(started)
    outcome.timings_ms = dict(report.timings_ms)
    try:
        atomic_write_bytes(paths.report, report.to_json())
        if photo_ctime_ns is not None:
            stamp_report(paths.report, photo_ctime_ns)
    except OSError as exc:
        if outcome.status == "ok":
            _remove_quietly(written)
        if is_transient(exc):
            outcome.status = "deferred"
            outcome.error = _describe_os_error(exc)
            return _deferred(outcome, started)
        problem = f"cannot write its report: {_describe_os_error(exc)}"
        outcome.error = f"{outcome.error}; {problem}" if outcome.status == "failed" else problem
        outcome.status = "failed"
        outcome.report_path = None
    if outcome.status == "failed":
        # The failed report replaced the one that claimed these: they are stale now.
        _remove_quietly([target for target in (paths.image, paths.mask) if str(target.absolute()) in claimed])
    return outcome


class _BesideThisThread:
    """``function(*args)`` run on a thread of its own for the ``with`` block; :meth:`result`
    (after the block) is its return value, or raises what it raised. Leaving the block waits
    for it, so nothing outlives the photo even when the block raises."""

    def __init__(self, function, *args) -> None:
        self._function, self._args = function, args
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="skinretouch-encode", daemon=True)

    def _run(self) -> None:
        try:
            self._value = self._function(*self._args)
        except BaseException as exc:  # handed to the caller in result()
            self._error = exc

    def __enter__(self) -> _BesideThisThread:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def _stand_in(pixels: np.ndarray) -> np.ndarray:
    """An array of ``pixels``' shape and dtype that takes no memory (read-only zeros)."""
    return np.broadcast_to(np.zeros((), pixels.dtype), pixels.shape)


def _deferred(outcome: FileOutcome, started: float) -> FileOutcome:
    outcome.error = f"{outcome.error} (not a fault of the photo; it will be tried again)"
    outcome.report_path = outcome.image_path = outcome.mask_path = outcome.overlay_path = None
    outcome.timings_ms = {"total": ms_since(started)}
    return outcome


def _claimed_outputs(previous: dict[str, Any] | None) -> set[str]:
    """Absolute paths of the outputs an earlier report of this photo claims."""
    outputs = (previous or {}).get("outputs") or {}
    return {value for key in ("image", "mask") if isinstance(value := outputs.get(key), str)}


def _check_targets(paths, claimed: set[str], *, mask_path: Path | None, reserved: bool) -> None:
    """Refuse to overwrite a file that is not ours, before any work is done."""
    for target in (paths.image, paths.mask):
        if mask_path is not None and os.path.lexists(mask_path) and _same_file(target, mask_path):
            raise InputError(
                f"its mask output {target.name} would overwrite the --mask file; "
                "give --out-dir or rename the mask"
            )
        if reserved or not os.path.lexists(target) or str(target.absolute()) in claimed:
            continue
        raise InputError(
            f"would overwrite {target}, which no report of this photo claims as its output "
            "(a file of yours?); move it away or give --out-dir"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise InputError(f"output folder {folder} is a file, not a folder") from None
    except OSError as exc:
        if is_transient(exc):
            raise
        raise InputError(f"cannot create the output folder {folder}: {exc.strerror}") from None


def _write_overlay(result, folder: Path, name: str) -> Path:
    from PIL import Image

    from ..engines.overlay import debug_overlay

    target = folder / f"{name}{OVERLAY_SUFFIX}"
    original = result.original
    picture = debug_overlay(original if original.dtype == np.float32 else to_float(original), result.detection)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write_bytes(target, buffer.getvalue())
    return target


def _already_done(previous: dict[str, Any] | None, sha256: str) -> bool:
    if previous is None or previous.get("status") != "ok":
        return False
    if previous.get("input", {}).get("sha256") != sha256:
        return False
    outputs = previous.get("outputs") or {}
    return all(outputs.get(key) and Path(outputs[key]).exists() for key in ("image", "mask"))


def _describe_input(info: InputInfo, image: ImageFile) -> None:
    info.height, info.width = (int(v) for v in image.pixels.shape[:2])
    info.bit_depth = image.bit_depth
    info.format = image.format


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{reason}: {exc.filename}" if exc.filename else reason


def _remove_quietly(paths: list[Path]) -> None:
    for target in paths:
        try:
            target.unlink()
        except OSError:
            pass
