"""Reduced benchmarks with their targets: `pytest -m bench` (not in the default run).

Noise margins, from repeated runs on the 2-core development machine:
- ingest ratio: CPU-time best of three still moved between 4.5x and 5.2x from
  run to run (the machine is shared), so a fall of more than 25 % fails;
- memory: tracemalloc counts are deterministic to within a few percent: 10 %;
- end to end: the drain ratio moved by about 10 % between runs: 15 %;
- UI: key-to-redraw CPU times vary by about a third between runs: 50 % over.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import end_to_end, ingest, memory, scaling, ui
from tests.cluster import RABBITMQ_URL, require_broker

pytestmark = pytest.mark.bench


def test_ingest_is_four_times_celery_state():
    result = ingest.measure(40_000, repeat=2)
    assert result["ratio"] >= 4.0 * 0.75, result


def test_memory_per_job_is_under_a_third_of_celery_state():
    result = memory.measure(5_000)
    assert result["ratio"] <= 0.30 * 1.10, result


def test_end_to_end_drain_costs_no_more_than_the_bare_receiver():
    require_broker(RABBITMQ_URL)
    result = end_to_end.measure(end_to_end.RABBITMQ, 5_000, repeat=2)
    assert result["ratio"] >= 1.0 * 0.85, result


def test_ui_switches_and_ticks_within_budget():
    store = ui.filled_store(10_000)
    figures = asyncio.run(ui.sluice_figures(store, rate=5_000, rounds=1))
    assert figures["filter"] < 100 * 1.5, figures
    assert figures["sort"] < 100 * 1.5, figures
    assert figures["tick"] < 20 * 1.5, figures


def test_ingest_grows_linearly_with_eviction():
    rows = scaling.measure((10_000, 60_000), max_jobs=2_000)
    assert rows[1]["us_per_event"] <= rows[0]["us_per_event"] * 1.5, rows
    assert rows[1]["mb"] <= rows[0]["mb"] * 3 + 1, rows  # bounded by max_jobs, not events
