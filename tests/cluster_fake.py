"""A stand-in pipeline behind the real file stage, for the cluster's hard-case routing.

Every photo gets one hard region that fell back to the classical route (as on a machine
without LaMa weights), so a CPU worker hands it to the GPU queue while a GPU worker is up.
No pixel changes; the outputs and the report are the real file stage's.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from skinretouch.files.stage import process_file, report_settings
from skinretouch.pipeline import OwnedPhoto
from skinretouch.results import RegionRecord, RetouchResult


class HardCaseRetoucher:
    def __init__(self, config) -> None:
        self.config = config
        self.detector = SimpleNamespace(name="fake-hard-case")

    def retouch(self, image, *, mask=None, orientation: int = 1) -> RetouchResult:
        if isinstance(image, OwnedPhoto):  # the file stage hands its float photo over
            image = image.take()
        height, width = image.shape[:2]
        region = RegionRecord(
            id=1, bbox=(0, 0, 4, 4), area_px=16, area_fraction=16 / (height * width), kind="papule", score=1.0,
            route="freqsplit", engine="freqsplit-numba", hard_case=True, hard_reasons=["area"],
            texture_ratio=1.0, fallback_reason="lama unavailable: no weights on this machine",
        )
        return RetouchResult(original=image, patches=[], applied_mask=np.zeros((height, width), bool),
                             regions=[region], detection=SimpleNamespace(protected=[], method="skin_colour", scale=1.0))


class HardCaseFiles:
    """A :class:`skinretouch.files.outcome.FileProcessor` around :class:`HardCaseRetoucher`."""

    def __init__(self, config) -> None:
        self.retoucher = HardCaseRetoucher(config)

    def process_file(self, path, *, out_dir=None, force=False):
        return process_file(self.retoucher, path, out_dir=out_dir, force=force)

    def report_settings(self) -> dict:
        return report_settings(self.retoucher)

    def close(self) -> None:
        pass
