"""``skinretouch doctor``: what can run here, and for what cannot, why not."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .config import Config

__all__ = ["Check", "collect_checks", "run_doctor"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's answer."""

    group: str
    name: str
    available: bool
    detail: str


def collect_checks(config: Config) -> list[Check]:
    """Every engine and backend with its state; never raises."""
    probes: list[Callable[[Config], Check]] = [
        _detector_mode,
        _detector_classical,
        _detector_verifier,
        _detector_onnx,
        _detector_backbone,
        _face_cascades,
        _kernels_numba,
        _patchmatch,
    ]
    checks = []
    for probe in probes:
        try:
            checks.append(probe(config))
        except Exception as exc:  # a probe must not hide the others
            checks.append(Check("?", probe.__name__.strip("_"), False, f"probe failed: {exc}"))
    try:
        checks.extend(_neural_rows(config))
    except Exception as exc:
        checks.append(Check("inpaint", "neural", False, f"probe failed: {exc}"))
    return checks


def run_doctor(config: Config) -> int:
    checks = collect_checks(config)
    width = max(len(f"{c.group}/{c.name}") for c in checks)
    for check in checks:
        state = "available  " if check.available else "unavailable"
        print(f"{check.group + '/' + check.name:<{width}}  {state}  {check.detail}")
    default_ok = all(c.available for c in checks if c.group in ("detector", "removal"))
    print()
    print("default path (classical, CPU, no weights): " + ("ready" if default_ok else "NOT READY"))
    return 0 if default_ok else 1


def _detector_classical(config: Config) -> Check:
    importlib.import_module("skinretouch.engines.classical_detector")
    return Check("detector", "classical", True, "no weights needed")


def _detector_verifier(config: Config) -> Check:
    """The precision stage after the classical candidates; without a model nothing is filtered."""
    from .detection.verify import DEFAULT_VERIFIER_MODEL, Verifier

    verify = config.detect.verify
    if not verify.enabled:
        return Check("precision", "verifier", False, "off (detect.verify.enabled = false): classical "
                     "candidates are not filtered")  # fmt: skip
    path = Path(verify.model).expanduser() if verify.model else DEFAULT_VERIFIER_MODEL
    if not path.is_file():
        return Check("precision", "verifier", False, f"no model at {path}: classical candidates are not "
                     "filtered (run `make train-verifier`)")  # fmt: skip
    try:
        verifier = Verifier.from_json(json.loads(path.read_text()))
    except Exception as exc:  # a wrong file is the answer here, not a crash
        return Check("precision", "verifier", False, f"{path}: {exc}")
    trees = verifier.model.feature.shape[0]
    return Check("precision", "verifier", True, f"{trees} trees of depth {verifier.model.depth}, threshold "
                 f"{verifier.threshold:.3f}{verify.threshold_shift:+.2f} at {path} (CPU)")  # fmt: skip


MODES = {
    "reference": "reference mode: finds what 1-3 example photos with masks show (one-shot, no training)",
    "onnx": "plug-in YOLO detector (detect.onnx.model), protected features from the classical detector",
    "anomaly": "standalone anomaly detector: a single-photo nearest-neighbour novelty score (any skin unlike "
    "the rest of this photo's skin; not MuSc, which compares many photos)",
    "anomaly-filtered": "classical rules per blemish kind, candidates kept only if the single-photo "
    "nearest-neighbour novelty score reaches detect.anomaly_threshold",
    "classical": "classical rules per blemish kind (colour/shape/contrast on the skin map; CPU, no weights)",
}


def _detector_mode(config: Config) -> Check:
    detect = config.detect
    if detect.references:
        mode = "reference"
    elif detect.onnx.model:
        mode = "onnx"
    elif detect.anomaly_detector:
        mode = "anomaly"
    elif detect.anomaly_filter:
        mode = "anomaly-filtered"
    else:
        mode = "classical"
    return Check("detector", "mode", True, f"{mode}: {MODES[mode]}")


def _detector_onnx(config: Config) -> Check:
    onnx = config.detect.onnx
    if not onnx.model:
        return Check("plug-in", "yolo-onnx", False, "off (detect.onnx.model is empty)")
    if not Path(onnx.model).expanduser().is_file():
        return Check("plug-in", "yolo-onnx", False, f"no model at {onnx.model} (detect.onnx.model)")
    from .engines.formats.yolo_formats import inspect_yolo
    from .engines.runtime import OnnxRuntimeBackend

    ok, reason = OnnxRuntimeBackend.available("cpu")
    if not ok:
        return Check("plug-in", "yolo-onnx", False, reason)
    path = Path(onnx.model).expanduser()
    try:
        layout = inspect_yolo(OnnxRuntimeBackend(path, device="cpu").session, path, layout=onnx.layout,
                              input_size=onnx.input_size or None)  # fmt: skip
    except Exception as exc:  # a wrong file is the answer here, not a crash
        return Check("plug-in", "yolo-onnx", False, str(exc))
    masks = "mask head" if layout.mask_coefficients else "boxes refined by Lab contrast"
    dtype = "float16" if layout.input_dtype.__name__ == "float16" else "float32"
    return Check("plug-in", "yolo-onnx", True, f"{layout.form} ({dtype}, {layout.num_classes} classes, input "
                 f"{layout.input_size} px, masks from {masks}) at {path}, run by onnxruntime")  # fmt: skip


def _detector_backbone(config: Config) -> Check:
    backbone = config.detect.backbone
    if not backbone.weights:
        return Check("plug-in", "vit-backbone", False, "off (detect.backbone.weights is empty; reference mode "
                     "uses the numba descriptors)")  # fmt: skip
    from .engines.formats.vit_formats import read_vit

    try:
        found = read_vit(backbone.weights)
    except Exception as exc:  # a wrong file is the answer here, not a crash
        return Check("plug-in", "vit-backbone", False, str(exc))
    spec = found.spec
    position = "RoPE" if spec.position == "rope" else "learned position embedding"
    return Check("plug-in", "vit-backbone", True, f"{found.form} (width {spec.width}, {spec.depth} blocks, patch "
                 f"{spec.patch}, {spec.registers} registers, {position}) at {found.path}, run by "
                 f"{backbone.backend} (reference mode only)")  # fmt: skip


def _face_cascades(config: Config) -> Check:
    import cv2

    folder = Path(cv2.data.haarcascades)
    cascade = folder / "haarcascade_frontalface_default.xml"
    if cascade.exists():
        return Check("detector", "face-haar", True, f"OpenCV {cv2.__version__} cascades in {folder}")
    return Check(
        "detector",
        "face-haar",
        False,
        f"OpenCV {cv2.__version__} ships no Haar cascades; faces fall back to the skin-colour map",
    )


def _kernels_numba(config: Config) -> Check:
    import numba

    from .kernels import ahead_of_time, removal_batch

    cache = os.environ.get("NUMBA_CACHE_DIR", "(next to the package; set NUMBA_CACHE_DIR for a service)")
    library = ahead_of_time.compiled_library_path()
    if library.is_file():
        compiled = f"kernels compiled ahead of time ({library.name}: a photo does not import numba)"
    elif removal_batch.batch_fill_compiled():
        compiled = ("kernels compiled in numba's cache only (importing numba costs every start ~0.3 s; "
                    "`skinretouch compile` compiles them ahead of time)")  # fmt: skip
    else:
        compiled = "kernels not compiled yet: the first photo waits for them (~1.5 min); `skinretouch compile` does it now"
    return Check("removal", "freqsplit-numba", True, f"numba {numba.__version__}, cache {cache}; {compiled}")


def _patchmatch(config: Config) -> Check:
    import patchmatch.patch_match  # noqa: F401  (loads the prebuilt library)

    return Check("removal", "patchmatch+poisson", True, "pypatchmatch prebuilt library loaded")


def _neural_rows(config: Config) -> list[Check]:
    from .engines.manager import doctor_rows

    return [Check(group, name, ok, reason) for group, name, ok, reason in doctor_rows(config.engines)]


if __name__ == "__main__":
    sys.exit(run_doctor(Config()))
