"""Numbers and the nouns after them agree on screen: 1 message, 2 messages."""

from __future__ import annotations

from rich.console import Console

from sluice_tui.actions import WorkerAction
from sluice_tui.history import HistoryStatus
from sluice_tui.model.store import MAX_GAPS, JobStore
from sluice_tui.model.worker_info import WorkerFigures
from sluice_tui.ui.screens.diagnostics import render_diagnostics
from sluice_tui.ui.screens.worker_control import what_it_is


def diagnostics_text(store: JobStore, status: HistoryStatus | None = None) -> str:
    console = Console(width=160, record=True)
    console.print(render_diagnostics(store, status))
    return console.export_text()


def journal(count: int) -> HistoryStatus:
    return HistoryStatus(
        path="/tmp/j.sqlite3",
        mode="writing",
        last_write=None,
        unsaved=count,
        restored_jobs=count,
        restored_events=count,
    )


def test_diagnostics_says_1_message_and_2_messages():
    one = diagnostics_text(JobStore(), journal(1))
    saved = next(line for line in one.splitlines() if "not yet saved" in line)
    assert saved.split() == ["not", "yet", "saved", "1", "message"]
    assert "1 job (1 event replayed)" in one
    two = diagnostics_text(JobStore(), journal(2))
    assert "2 messages" in two and "2 jobs (2 events replayed)" in two


def test_diagnostics_counts_the_older_gaps_it_does_not_list():
    store = JobStore()
    for n in range(MAX_GAPS + 1):
        store.record_gap(1000.0 + n, 1000.5 + n, "broker connection lost")
    assert "(and 1 older gap)" in diagnostics_text(store)
    store.record_gap(2000.0, 2000.5, "broker connection lost")
    assert "(and 2 older gaps)" in diagnostics_text(store)


def test_pool_of_one_process():
    def pool(size: int) -> str:
        figures = WorkerFigures(hostname="w@h", asked_at=0.0, pool="prefork", pool_size=size)
        return what_it_is(WorkerAction.POOL_GROW, figures)

    assert "prefork, 1 process now" in pool(1)
    assert "prefork, 2 processes now" in pool(2)
