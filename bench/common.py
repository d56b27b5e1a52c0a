"""Shared helpers: timing that holds up on a shared, noisy machine."""

from __future__ import annotations

import contextlib
import gc
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager

import celery

from sluice_tui import gc_policy


def machine() -> str:
    import os

    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Celery {celery.__version__}"
    )


def best_cpu_seconds(
    runs: list[Callable[[], None]],
    repeat: int,
    prepare: Callable[[], None] = lambda: None,
    settings: Sequence[Callable[[], AbstractContextManager[object]]] = (),
) -> list[float]:
    """CPU seconds of each run, best of ``repeat``, interleaved so noise hits all alike.

    ``prepare`` builds the runs' input before each round; that input is then
    frozen out of the garbage collector, so each side pays only for the objects
    it makes itself, as it would when events arrive one by one off the wire.
    ``settings[i]``, when given, is entered around run ``i``, outside its timing
    (:func:`shipped_gc`).
    """
    best = [float("inf")] * len(runs)
    for _ in range(repeat):
        prepare()
        gc.collect()
        gc.freeze()
        try:
            for i, run in enumerate(runs):
                with settings[i]() if i < len(settings) else contextlib.nullcontext():
                    started = time.process_time()
                    run()
                    seconds = time.process_time() - started
                best[i] = min(best[i], seconds)
                gc.collect()
        finally:
            gc.unfreeze()
    return best


@contextlib.contextmanager
def shipped_gc() -> Iterator[None]:
    """Garbage collection as sluice-tui's commands run it (``gc_policy``), for one run.

    Celery's side keeps CPython's default, as ``celery events`` runs it.
    """
    gc_policy.install()
    try:
        yield
    finally:
        gc_policy.uninstall()  # which thaws everything: the other runs' input goes back
        gc.freeze()


def report(title: str, rows: list[tuple[str, str]]) -> None:
    print(f"\n{title}")
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
