"""Shared helpers: timing that holds up on a shared, noisy machine."""

from __future__ import annotations

import gc
import platform
import time
from collections.abc import Callable

import celery


def machine() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Celery {celery.__version__}"
    )


def best_cpu_seconds(
    runs: list[Callable[[], None]], repeat: int, prepare: Callable[[], None] = lambda: None
) -> list[float]:
    """CPU seconds of each run, best of ``repeat``, interleaved so noise hits all alike.

    ``prepare`` builds the runs' input before each round; that input is then
    frozen out of the garbage collector, so each side pays only for the objects
    it makes itself, as it would when events arrive one by one off the wire.
    """
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        prepare()
        gc.collect()
        gc.freeze()
        try:
            for i, run in enumerate(runs):
                started = time.process_time()
                run()
                best[i] = min(best[i], time.process_time() - started)
                gc.collect()
        finally:
            gc.unfreeze()
    return best


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
