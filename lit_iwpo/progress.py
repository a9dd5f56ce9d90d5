"""Progress bars for long work outside Lightning's loops (generation, judging, reference log-probs,
weight refresh, embedding): shown on the main process when the run shows progress at all."""

from __future__ import annotations

import os
import sys
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_enabled(trainer: Any = None) -> bool:
    """Bars are on unless ``LIT_IWPO_PROGRESS=0``, the trainer has no progress bar, or this is not rank 0."""
    if os.environ.get("LIT_IWPO_PROGRESS", "1") == "0":
        return False
    if trainer is not None:
        if not getattr(trainer, "is_global_zero", True):
            return False
        if getattr(trainer, "progress_bar_callback", True) is None:
            return False
    return True


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, unit: str = "batch",
             trainer: Any = None, enabled: bool | None = None) -> Iterator[T]:
    """``iterable`` wrapped in a tqdm bar titled ``desc`` (on stderr), or unwrapped when bars are off."""
    if enabled is None:
        enabled = progress_enabled(trainer)
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True) as bar:
        yield from bar


class phase:
    """Time a phase of the run into ``trainer.lit_iwpo_phase_seconds[name]`` (accumulated; written to
    summary.json as ``time/<name>_s``). Use as ``with phase(trainer, "reference_logps"): ...``."""

    def __init__(self, trainer: Any, name: str) -> None:
        self.trainer, self.name = trainer, name

    def __enter__(self) -> "phase":
        import time

        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        import time

        if self.trainer is None:
            return
        times = phase_seconds(self.trainer)
        times[self.name] = times.get(self.name, 0.0) + time.perf_counter() - self._start


def phase_seconds(trainer: Any) -> dict[str, float]:
    """The phase timings recorded on ``trainer`` so far (a live dict)."""
    times = getattr(trainer, "lit_iwpo_phase_seconds", None)
    if times is None:
        times = {}
        trainer.lit_iwpo_phase_seconds = times
    return times
