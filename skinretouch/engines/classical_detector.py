"""Moved: the classical detector lives in :mod:`skinretouch.detection.classical`."""

from ..detection.classical import ClassicalDetector

__all__ = ["ClassicalDetector"]
