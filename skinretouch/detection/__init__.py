"""The detection wing: what a detector hands to the pipeline, and the detectors.

- :mod:`.types`: the labelled spots and protected features a detector returns;
- :mod:`.protocol`: the :class:`Detector` protocol every mode implements;
- :mod:`.faces`: face parsing (MediaPipe landmark polygons, Haar fallback);
- :mod:`.analysis`: the typed analysis of one photo (faces, skin, protected areas,
  working grid) that every mode shares instead of re-running the classical detector;
- :mod:`.factory`: the detector ``detect.mode`` asks for.
"""

from .types import BBox, Background, BackgroundTile, Detection, FeatureKind, ProtectedFeature, Spot, SpotKind, bbox_of

__all__ = ["BBox", "Background", "BackgroundTile", "Detection", "FeatureKind", "ProtectedFeature", "Spot", "SpotKind", "bbox_of"]
