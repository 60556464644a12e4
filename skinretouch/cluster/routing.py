"""Hard cases to the GPU queue: a photo whose hard regions wanted a neural engine this worker
lacks is handed on to ``cluster.gpu_queue`` while a worker consumes it, else it is finished
classically here with the fallback recorded in its report (as in local mode)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HardCaseRouter", "NeedsGpu", "regions_wanting_gpu"]

NEURAL_ROUTES = frozenset({"lama", "flux"})


class NeedsGpu(BaseException):
    """The photo has hard cases for a GPU worker.

    A BaseException on purpose: it must pass through the file stage, which turns every
    Exception into a ``failed`` report. It is raised after the pixels are retouched in
    memory and before any output is written, so nothing is left behind.
    """

    def __init__(self, regions: list[Any]) -> None:
        super().__init__(f"{len(regions)} hard case(s) want a neural engine")
        self.regions = regions


def regions_wanting_gpu(regions: list[Any]) -> list[Any]:
    """Hard regions that were filled classically (their neural engine was not available)."""
    return [r for r in regions if getattr(r, "hard_case", False) and getattr(r, "route", None) not in NEURAL_ROUTES]


class HardCaseRouter:
    """Wraps a :class:`~skinretouch.pipeline.Retoucher` for the file stage: ``retouch`` raises :class:`NeedsGpu` when a hard case fell back and
    ``gpu_workers_up()`` says a GPU worker is there to take it. Everything else is the
    wrapped retoucher's."""

    def __init__(self, retoucher: Any, gpu_workers_up: Callable[[], bool]) -> None:
        self._inner = retoucher
        self._gpu_workers_up = gpu_workers_up

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def retouch(self, image: Any, *, mask: Any = None, orientation: int = 1) -> Any:
        result = self._inner.retouch(image, mask=mask, orientation=orientation)
        wanting = regions_wanting_gpu(result.regions)
        if wanting and self._gpu_workers_up():
            raise NeedsGpu(wanting)
        return result
