"""The detector ``detect.mode`` asks for: one rule for the CLI, the daemon and the bench."""

from __future__ import annotations

from pathlib import Path

from ..config import DetectConfig, detect_mode
from .protocol import Detector

__all__ = ["build_detector"]


def build_detector(config: DetectConfig, *, references=None) -> Detector:
    """Build the detector of ``config.mode`` (see :func:`skinretouch.config.detect_mode`).

    ``references`` (in-memory ``(image, mask)`` pairs, e.g. from CLI flags) select the
    reference mode whatever the config says. Every mode shares the classical detector's
    analysis (faces, skin, protected features); only "classical" uses its spots.
    """
    from ..engines.anomaly import AnomalyDetector, AnomalyFilteredDetector
    from ..engines.reference import ReferenceDetector, ReferenceError, load_references
    from .classical import ClassicalDetector

    base = ClassicalDetector(config)
    mode = "reference" if references else detect_mode(config)
    if mode == "reference":
        if references is None:
            if len(config.references) != len(config.reference_masks):
                raise ReferenceError(
                    f"detect.references has {len(config.references)} paths but detect.reference_masks "
                    f"has {len(config.reference_masks)}; give one mask per reference"
                )
            pairs = [(Path(i), Path(m)) for i, m in zip(config.references, config.reference_masks)]
            references = load_references(pairs)
        backbone = None
        if config.backbone.weights:
            from ..engines.backbone import VitBackbone

            backbone = VitBackbone.from_config(config.backbone)
        return ReferenceDetector(config, references, base=base, backbone=backbone)
    if mode == "onnx":
        from ..engines.onnx_detector import OnnxBoxDetector

        onnx = config.onnx
        return OnnxBoxDetector(
            onnx.model,
            score_threshold=onnx.score,
            iou_threshold=onnx.iou,
            input_size=onnx.input_size or None,
            class_kinds=onnx.class_names,
            layout=onnx.layout,
            base=base,
        )
    if mode == "anomaly":
        return AnomalyDetector(base, threshold=config.anomaly_detector_threshold)
    from .verify import VerifiedDetector, load_verifier

    verifier = load_verifier(config.verify)
    candidates = VerifiedDetector(base, verifier) if verifier is not None else base
    if config.anomaly_filter:
        candidates = AnomalyFilteredDetector(candidates, threshold=config.anomaly_threshold)
    if config.split_collages:
        from .collage import CollageDetector

        return CollageDetector(candidates)
    return candidates
