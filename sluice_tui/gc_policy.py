"""Garbage collection for a process that holds hundreds of thousands of jobs.

CPython's full collection walks every tracked object with the GIL held.  With
a store of 200 000 jobs that is 0.2-0.5 s on a small machine: the screen
freezes and a key waits that long.  The store's jobs hold no reference
cycles (reference counting frees an evicted job at once), so walking them
again and again finds nothing.  After each full collection the survivors are
therefore frozen (``gc.freeze``), and later full collections walk only what
is newer.  They come more often (CPython starts one when the objects left
unfrozen grow by a quarter), each of them short.  Young objects alive at that
moment are frozen too.

Cyclic garbage among frozen objects (the widgets of a screen closed since it
was frozen) would never be freed, so every ``thaw_every`` seconds the frozen
objects go back to the oldest generation and the next full collection sees
everything once.  That bounds the leak, at the price of one long pass that
often.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

THAW_EVERY = 900.0  # seconds
OLDEST = len(gc.get_threshold()) - 1  # the generation a full collection collects


class FreezeSurvivors:
    """The gc callback: freeze after a full collection, thaw now and then."""

    def __init__(self, thaw_every: float, clock: Callable[[], float]) -> None:
        self.thaw_every = thaw_every
        self.clock = clock
        self.next_thaw = clock() + thaw_every

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != OLDEST:
            return
        now = self.clock()
        if now >= self.next_thaw:
            self.next_thaw = now + self.thaw_every
            gc.unfreeze()  # the next full collection walks everything once
        else:
            gc.freeze()


_installed: FreezeSurvivors | None = None


def install(thaw_every: float = THAW_EVERY, clock: Callable[[], float] = time.monotonic) -> None:
    """Use this policy in this process from now on (once; later calls do nothing)."""
    global _installed
    if _installed is not None:
        return
    _installed = FreezeSurvivors(thaw_every, clock)
    gc.collect()
    gc.freeze()  # what start-up built (imports, a restored journal) is never garbage
    gc.callbacks.append(_installed)


def uninstall() -> None:
    """Back to CPython's own behaviour (tests, benchmarks comparing both)."""
    global _installed
    if _installed is None:
        return
    gc.callbacks.remove(_installed)
    _installed = None
    gc.unfreeze()
