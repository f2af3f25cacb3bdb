"""The report hook: methods call `report(step, metrics)`, a plain callable.

Tests pass a list-appending function; the single-trial CLI passes one that
drives a progress bar; the orchestrator one that calls `tune.report`.
"""

from __future__ import annotations

from typing import Callable

ReportFn = Callable[[int, dict], None]


class Reporter:
    """Adds the image name, a global step and overall progress in [0, 1] to each report."""

    def __init__(self, report: ReportFn | None, n_images: int):
        self.report = report
        self.n_images = max(n_images, 1)
        self.index = 0
        self.offset = 0  # global step at the start of the current image

    def begin_image(self, index: int, offset: int) -> None:
        self.index, self.offset = index, offset

    def step(self, image: str, it: int, total: int, metrics: dict) -> None:
        if self.report is None:
            return
        progress = (self.index + it / max(total, 1)) / self.n_images
        self.report(self.offset + it, {"image": image, "iter": it, "progress": progress, **metrics})
