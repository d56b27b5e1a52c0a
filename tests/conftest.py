from __future__ import annotations

import os
import time

import pytest

from sluice_tui import gc_policy
from sluice_tui.celery_adapter.events import EventAdapter
from sluice_tui.model.store import JobStore
from tests.own_servers import OwnRedis


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> JobStore:
    return JobStore(clock=clock)


@pytest.fixture
def feed(store: JobStore, clock: FakeClock) -> EventAdapter:
    """Feeds event dicts into the store exactly as the receiver does."""
    return EventAdapter(store, clock=clock)


@pytest.fixture(autouse=True)
def cpython_gc():
    """A command run in-process (``collect``) installs the GC policy: not for the next test."""
    yield
    gc_policy.uninstall()


@pytest.fixture(autouse=True, scope="session")
def session_state_home(tmp_path_factory):
    """History is on by default: nothing a test starts may write under the real home.

    Session-wide first, so monitors started by module fixtures are covered too;
    subprocesses inherit the variable.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture(autouse=True)
def own_environment(session_state_home, tmp_path_factory, monkeypatch):
    """Each test its own default journal (two monitors of one broker would share
    it), and CELERY_BROKER_URL as it was: ``--broker`` sets it, as ``celery -b``
    does, so a command run in-process would otherwise point later tests elsewhere.
    """
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    broker = os.environ.get("CELERY_BROKER_URL")
    yield
    if broker is None:
        os.environ.pop("CELERY_BROKER_URL", None)
    else:
        os.environ["CELERY_BROKER_URL"] = broker


@pytest.fixture
def own_redis():
    """A redis-server only this test uses: free to stop, restart or reconfigure."""
    redis = OwnRedis()
    redis.start()
    yield redis
    redis.remove()


# Times are shown in local time: pin the zone so screens and snapshots are stable.
os.environ["TZ"] = "UTC"
time.tzset()
