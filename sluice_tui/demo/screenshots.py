"""Regenerate screenshots/ from the deterministic sample: `make screenshots`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from sluice_tui.demo.sample import NOW, job_id, sample_store
from sluice_tui.model.queues import QueueSample, queues_of
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp

SIZE = (120, 34)
SMALL = (80, 24)  # the smallest common terminal
LARGE = (200, 50)

# (file name, keys pressed after start-up, terminal size)
VIEWS = [
    ("jobs.svg", [], SIZE),
    ("jobs_80x24.svg", [], SMALL),
    ("jobs_200x50.svg", [], LARGE),
    ("job_detail.svg", ["g", *job_id(2)[:8], "enter"], SIZE),
    ("job_detail_80x24.svg", ["g", *job_id(2)[:8], "enter"], SMALL),
    ("workers.svg", ["w"], SIZE),
    ("help.svg", ["question_mark"], SIZE),
    ("help_80x24.svg", ["question_mark"], SMALL),
    ("diagnostics.svg", ["d"], SIZE),
    ("queues.svg", ["b"], SIZE),
    ("queues_80x24.svg", ["b"], SMALL),
    ("queue_detail.svg", ["b", "down", "down", "down", "enter"], SIZE),
    ("task_types.svg", ["t"], SIZE),
    ("task_types_80x24.svg", ["t"], SMALL),
    ("task_types_200x50.svg", ["t"], LARGE),
]


def sample_queues(store: JobStore) -> None:
    """Ten minutes of polls: one queue draining, one filling, one with no consumer, one missing."""
    board = queues_of(store)
    board.watch(["celery", "emails", "reports"], "app")
    board.watch(["gone"], "option")
    for n in range(300):
        at = NOW - 600 + 2 * n
        board.record("celery", QueueSample(at, max(0, 240 - n), 4))
        board.record("emails", QueueSample(at, 20 + n * 3 // 2 + n % 7, 1))
        split = {0: 31, 3: 0, 6: 5, 9: 6}
        board.record("reports", QueueSample(at, 42, 0, priorities=split))
        board.record("gone", QueueSample(at, None, None, missing=True))


def sample_app() -> SluiceApp:
    """The app over the sample store, with frozen time and no live timer."""
    store = sample_store()
    sample_queues(store)
    return SluiceApp(store, clock=lambda: NOW, tick_seconds=None)


async def _shoot(name: str, keys: list[str], size: tuple[int, int], folder: Path) -> None:
    app = sample_app()
    async with app.run_test(size=size) as pilot:
        await pilot.press(*keys)
        await pilot.pause()
        app.save_screenshot(name, path=str(folder))


def main(folder: str = "screenshots") -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    target = Path(folder)
    target.mkdir(exist_ok=True)
    for name, keys, size in VIEWS:
        asyncio.run(_shoot(name, keys, size, target))
        print(target / name)


if __name__ == "__main__":
    main(*sys.argv[1:])
