"""One photo file in, its retouched photo, mask and report out (atomically).

A bad photo never raises: it gets a report with ``"status": "failed"`` and a readable
``error``, and no retouched photo or mask is left behind for it.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import structlog
from PIL import Image

from .atomic import atomic_write_bytes
from .config import config_sha256
from .errors import InputError, MaskError
from .imageio import ImageFile, encode_image, read_image, to_float
from .report import InputInfo, Report, read_report
from .sidecars import OVERLAY_SUFFIX, output_paths
from .timing import ms_since

if TYPE_CHECKING:
    from .pipeline import Retoucher

__all__ = ["FileOutcome", "encode_mask_png", "load_user_mask", "process_file"]

log = structlog.get_logger(__name__)


@dataclass(kw_only=True)
class FileOutcome:
    """What happened to one input file."""

    input_path: Path
    status: str  # "ok" | "failed" | "skipped"
    error: str | None = None
    report_path: Path | None = None
    image_path: Path | None = None
    mask_path: Path | None = None
    overlay_path: Path | None = None
    regions: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)


def process_file(
    retoucher: Retoucher,
    path: Path,
    *,
    out_dir: Path | None = None,
    mask_path: Path | None = None,
    force: bool = False,
    debug_overlay: bool = False,
) -> FileOutcome:
    """Process one photo; see :meth:`skinretouch.pipeline.Retoucher.process_file`."""
    started = time.perf_counter()
    paths = output_paths(path, out_dir)
    config = retoucher.config
    report = Report(input=InputInfo(path=str(path.absolute()), sha256=""))
    report.settings = {
        "config_sha256": config_sha256(config),
        "detector": "user_mask" if mask_path is not None else retoucher.detector.name,
        "mask_dilation_px": 0 if mask_path is not None else config.mask.dilation_px,
    }
    written: list[Path] = []
    outcome = FileOutcome(input_path=path, status="failed", report_path=paths.report)
    try:
        data = _read_input_bytes(path)
        report.input.sha256 = hashlib.sha256(data).hexdigest()
        if not force and _already_done(paths.report, report.input.sha256):
            outcome.status = "skipped"
            outcome.image_path, outcome.mask_path = paths.image, paths.mask
            return outcome

        tick = time.perf_counter()
        image = read_image(path, data=data)
        report.timings_ms["decode"] = ms_since(tick)
        _describe_input(report.input, image)
        user_mask = load_user_mask(mask_path, image) if mask_path is not None else None

        result = retoucher.retouch(to_float(image.pixels), mask=user_mask,
                                   orientation=image.orientation)
        report.timings_ms.update(result.timings_ms)

        tick = time.perf_counter()
        encoded = encode_image(image, result.apply_to(image.pixels), options=config.output)
        mask_png = encode_mask_png(result.applied_mask)
        report.timings_ms["encode"] = ms_since(tick)

        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        for target, payload in ((paths.image, encoded), (paths.mask, mask_png)):
            atomic_write_bytes(target, payload)
            written.append(target)
        if debug_overlay:
            outcome.overlay_path = _write_overlay(result, paths.mask.parent, path.name)
            written.append(outcome.overlay_path)

        report.outputs = {"image": str(paths.image.absolute()), "mask": str(paths.mask.absolute())}
        report.regions = result.regions
        report.protected = [
            {"kind": feature.kind, "bbox": list(feature.bbox)} for feature in result.detection.protected
        ]
        report.detection = {"method": result.detection.method, "scale": round(result.detection.scale, 4)}
        outcome.status = "ok"
        outcome.image_path, outcome.mask_path = paths.image, paths.mask
        outcome.regions = len(result.regions)
    except InputError as exc:
        outcome.error = str(exc)
    except OSError as exc:
        outcome.error = _describe_os_error(exc)
    except Exception as exc:  # a bug must not take a batch or the daemon down
        log.exception("internal_error", path=str(path))
        outcome.error = f"internal error: {type(exc).__name__}: {exc}"

    if outcome.status == "failed":
        _remove_quietly(written)
        report.status, report.error = "failed", outcome.error
        report.regions, report.protected = [], []
    report.timings_ms["total"] = ms_since(started)
    outcome.timings_ms = dict(report.timings_ms)
    try:
        atomic_write_bytes(paths.report, report.to_json())
    except OSError as exc:
        if outcome.status == "ok":
            _remove_quietly(written)
        outcome.status = "failed"
        outcome.error = f"cannot write report: {_describe_os_error(exc)}"
        outcome.report_path = None
    return outcome


def load_user_mask(mask_path: Path, image: ImageFile) -> np.ndarray:
    """The non-zero pixels of a mask image, checked against the image's stored size."""
    try:
        with Image.open(mask_path) as mask_image:
            mask_image.load()
            values = np.asarray(mask_image)
    except FileNotFoundError:
        raise MaskError(f"mask {mask_path}: no such file") from None
    except OSError as exc:
        raise MaskError(f"mask {mask_path}: cannot read it as an image ({exc})") from None
    height, width = image.pixels.shape[:2]
    if values.shape[:2] != (height, width):
        raise MaskError(
            f"mask {mask_path} is {values.shape[1]}x{values.shape[0]} but the image is "
            f"{width}x{height} (stored pixel grid)"
        )
    return values.any(axis=2) if values.ndim == 3 else values != 0


def encode_mask_png(mask: np.ndarray) -> bytes:
    """8-bit greyscale PNG: 255 where pixels were replaced, 0 elsewhere."""
    buffer = io.BytesIO()
    Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def _write_overlay(result, folder: Path, name: str) -> Path:
    from .engines.overlay import debug_overlay

    target = folder / f"{name}{OVERLAY_SUFFIX}"
    picture = debug_overlay(result.original, result.detection)
    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, format="PNG")
    atomic_write_bytes(target, buffer.getvalue())
    return target


def _read_input_bytes(path: Path) -> bytes:
    if path.is_dir():
        raise InputError("is a folder, not an image")
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file") from None
    except PermissionError:
        raise InputError("permission denied") from None


def _already_done(report_path: Path, sha256: str) -> bool:
    previous = read_report(report_path)
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
