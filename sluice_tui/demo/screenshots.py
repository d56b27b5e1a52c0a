"""Regenerate screenshots/ from the deterministic sample: `make screenshots`."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

from sluice_tui.demo.sample import NOW, job_id, sample_store
from sluice_tui.ui.app import SluiceApp

SIZE = (120, 34)

# (file name, keys pressed after start-up)
VIEWS = [
    ("jobs.svg", []),
    ("job_detail.svg", ["g", *job_id(2)[:8], "enter"]),
    ("workers.svg", ["w"]),
    ("help.svg", ["question_mark"]),
    ("diagnostics.svg", ["d"]),
]


def sample_app() -> SluiceApp:
    """The app over the sample store, with frozen time and no live timer."""
    return SluiceApp(sample_store(), clock=lambda: NOW, tick_seconds=None)


async def _shoot(name: str, keys: list[str], folder: Path) -> None:
    app = sample_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*keys)
        await pilot.pause()
        app.save_screenshot(name, path=str(folder))


def main(folder: str = "screenshots") -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    target = Path(folder)
    target.mkdir(exist_ok=True)
    for name, keys in VIEWS:
        asyncio.run(_shoot(name, keys, target))
        print(target / name)


if __name__ == "__main__":
    main(*sys.argv[1:])
