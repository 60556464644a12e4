"""The detector chain :func:`skinretouch.detection.factory.build_detector` builds, looked into."""

from __future__ import annotations


def inside_collage(detector):
    """The detector a collage wrapper runs on each panel (the default wraps every classical
    chain: :mod:`skinretouch.detection.collage`)."""
    from skinretouch.detection.collage import CollageDetector

    assert isinstance(detector, CollageDetector)
    return detector.base
