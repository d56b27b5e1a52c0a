"""The README's speed targets, at the README's sizes: `pytest -m bench` (not in the default run).

Each floor is the target in the README's "Speed" table, loosened only by the
noise measured on the 2-core development machine (shared with other work).
Each margin is the spread (largest / smallest - 1) of the figure over five
runs of this module on the same code, 2026-11-23:

- ingest ratio, 400k events: issue 13 asks for 5x in every run, so there is
  no margin.  Measured 5.27-5.39x without eviction (5.15x with helpers
  loading the machine) and 6.7-7.6x evicting at 10 000 jobs, 2026-11-24,
  each side with its own program's garbage collection (bench/README.md);
- memory ratio at 100k jobs: 0.1996 in every run (tracemalloc is exact): none;
- drain ratio: checked on whole processes (``bench.drain``), the figure users
  see: ``sluice-tui dump`` against a process running Celery's bare receiver,
  24k-event RabbitMQ backlog and 10k Redis burst.  The issue behind it (13)
  sets the floor at 1.0x in every run, so it has no margin: the median of
  three interleaved rounds must reach 1.0x.  The in-process figure
  (``python -m bench.end_to_end``: receiver thread and store only) left out
  the resync, enable_events and broadcast threads and dump's own loop, so it
  read 1.00x while the shipped command ran at 0.89-0.91x; it stays as a tool
  for looking at the receive path alone, without a floor here;
- UI at 100k jobs and 5k events/s (medians, ms): filter 27-65, sort 49-87,
  tick 8.6-12.5, cursor 4.8-31.  The highs all came from one run made while
  other tests loaded the machine; the spread is too wide to be a margin, so
  the UI has none, and a cursor move over one frame on a loaded machine fails;
- the journal (2026-11-24): receiving with it on 0.92-0.94x of off, ingest
  with it on 4.10-4.30x Celery's State in six runs; issue 14 sets both
  floors, so no margin;
- scaling, max_jobs 10 000: the 10k-event time per event moved 2.67-3.10 us
  (16 %), the 1M / 10k ratio was 0.92-1.08; memory at 1M events was below
  the 100k figure in every run: none.
"""

from __future__ import annotations

import asyncio

import pytest

from bench import drain, ingest, journal, memory, scaling, ui
from tests.cluster import RABBITMQ_URL, REDIS_URL, require_broker

pytestmark = pytest.mark.bench

# Targets, as the README states them.
INGEST_RATIO = 5.0  # x Celery's State, 400k events, with and without eviction, every run
MEMORY_RATIO = 0.30  # bytes per job / State's, at 100k jobs
DRAIN_RATIO = 1.0  # x Celery's bare Receiver, whole processes: 24k RabbitMQ, 10k Redis
SWITCH_MS = 100.0  # filter or sort switch, key to redraw, 100k jobs, 5k events/s
TICK_MS = 20.0  # one refresh tick, main-thread CPU
FRAME_MS = 1000 / 60  # a cursor move redraws within one frame
JOURNAL_ON_OFF = 0.85  # receiving with the history journal on, x off (wall clock)
JOURNAL_INGEST_RATIO = 4.0  # x Celery's State with the journal on (the monitor process's CPU)

# Noise margins: the spread measured over repeated runs (see the docstring).
INGEST_NOISE = {"full": 0.0, "evicting": 0.0}
MEMORY_NOISE = 0.0
UI_NOISE = 0.0
TIME_PER_EVENT_NOISE = 0.16
MEMORY_FLAT_NOISE = 0.0


@pytest.mark.parametrize(
    ("case", "max_jobs"),
    [("full", ingest.UNBOUNDED), ("evicting", 10_000)],
    ids=["full", "evicting"],
)
def test_ingest_is_five_times_celery_state(case, max_jobs):
    result = ingest.measure(400_000, repeat=3, max_jobs=max_jobs)
    print(result)
    assert result["ratio"] >= INGEST_RATIO * (1 - INGEST_NOISE[case]), result


def test_the_history_journal_costs_the_receiver_at_most_15_percent(tmp_path):
    result = journal.measure_ingest(200_000, 3, tmp_path)
    print(result)
    assert result["on_ratio"] >= JOURNAL_ON_OFF, result


def test_ingest_with_the_journal_on_is_four_times_celery_state(tmp_path):
    result = journal.measure_against_state(400_000, 3, tmp_path)
    print(result)
    assert result["ratio"] >= JOURNAL_INGEST_RATIO, result


def test_memory_per_job_is_under_a_third_of_celery_state():
    result = memory.measure(100_000)
    print(result)
    assert result["ratio"] <= MEMORY_RATIO * (1 + MEMORY_NOISE), result


@pytest.mark.parametrize(
    ("url", "broker", "events"),
    [(RABBITMQ_URL, drain.RABBITMQ, 24_000), (REDIS_URL, drain.REDIS, 10_000)],
    ids=["rabbitmq", "redis"],
)
def test_dump_process_drains_a_backlog_for_no_more_cpu_than_celerys_receiver(url, broker, events):
    # The whole `sluice-tui dump` process against a process running Celery's
    # bare EventReceiver with a counting handler, same stream, CPU ticks read
    # from /proc; the harness also checks that both took every event in.
    require_broker(url)
    result = drain.measure(broker, events, repeat=3)
    print(result)
    assert result["ratio"] >= DRAIN_RATIO, result


def test_ui_switches_and_ticks_within_budget():
    store = ui.filled_store(100_000)
    figures = asyncio.run(ui.sluice_figures(store, rate=5_000, rounds=3))
    print(figures)
    over = 1 + UI_NOISE
    budgets = {"filter": SWITCH_MS, "sort": SWITCH_MS, "tick": TICK_MS, "cursor": FRAME_MS}
    missed = {name: figures[name] for name, ms in budgets.items() if figures[name] >= ms * over}
    assert not missed, figures


def test_ingest_stays_linear_and_memory_flat_with_eviction():
    # README: time per event flat from 10k to 1M events; memory the same at
    # 100k and at 1M events once max_jobs (10 000) is reached.
    rows = scaling.measure((10_000, 100_000, 1_000_000), max_jobs=10_000)
    print(rows)
    small, mid, large = rows
    assert large["us_per_event"] <= small["us_per_event"] * (1 + TIME_PER_EVENT_NOISE), rows
    assert large["mb"] <= mid["mb"] * (1 + MEMORY_FLAT_NOISE), rows
