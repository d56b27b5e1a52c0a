"""Sustained rate with the UI open, against Flower: `pytest -m bench` (not in the default run).

Short rungs (bench.sustained --quick sizes: 6 s each, rates 250 to 8 000
events/s) on the real Redis and RabbitMQ; Flower 2 must be installed
(``pip install -e '.[bench]'``).  The target is the issue's: the TUI keeps up
with at least twice the rate Flower keeps up with, on each broker, judged as
bench.sustained judges (every event taken in within 5 s of the end, tick and
key p95 under 50 and 100 ms, Flower's tasks page p95 under 100 ms).

Noise, measured on the 2-core development machine while other sessions ran
(load average 4 to 12), 2026-11-23: one figure moves a whole rung or more
between runs (Flower on RabbitMQ: below 250/s in one run, 1 000/s in the
next; the TUI: 0 to 1 000/s), because the p95 of a 6 s rung rests on its
two or three slowest presses or requests, and the TUI's slowest keys are
the ones a full garbage collection lands in (see key_less_gc_p95_ms in the
figures).  So the floor is the target itself with no margin: it can fail on
a loaded machine, and the figures worth quoting come from the 60 s runs.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os

import pytest

from bench import sustained
from tests.cluster import RABBITMQ_URL, REDIS_URL, require_broker

pytestmark = pytest.mark.bench

TARGET = 2.0  # x Flower's highest sustained rate
BROKERS = [("rabbitmq", RABBITMQ_URL), ("redis", REDIS_URL)]


def require_flower() -> None:
    """Skip without Flower, except in CI, where the bench extra must be installed."""
    if importlib.util.find_spec("flower") is None:
        message = "Flower is not installed: pip install -e '.[bench]'"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true)")
        pytest.skip(message)


@pytest.mark.parametrize(("broker", "url"), BROKERS, ids=[b for b, _ in BROKERS])
def test_sluice_sustains_twice_flowers_rate(broker, url):
    require_broker(url)
    require_flower()
    rungs = asyncio.run(
        sustained.climb(
            broker,
            list(sustained.QUICK_RATES),
            sustained.QUICK_SECONDS,
            monitors=("sluice", "flower"),
        )
    )
    figures = sustained.summary({broker: rungs}, ("sluice", "flower"))[broker]
    print(figures)
    sluice, flower = figures["sluice"][0], figures["flower"][0]
    assert sluice > 0, figures
    assert sluice >= TARGET * flower, figures


@pytest.mark.parametrize(("broker", "url"), BROKERS, ids=[b for b, _ in BROKERS])
def test_the_store_takes_in_every_event_published(broker, url):
    # Nothing lost: the count the publishers sent is the count the TUI's
    # store took in, not one more or less, and none of it was malformed.
    require_broker(url)
    rung = asyncio.run(sustained.run_rung(broker, 1000, 10.0, {"sluice"}, seed=42))
    verdict = rung.verdicts["sluice"]
    print(rung)
    assert rung.events >= 9_000, "the publishers fell far short: nothing was tested"
    assert verdict.taken == rung.events, rung
    assert verdict.figures["bad_events"] == 0, rung
