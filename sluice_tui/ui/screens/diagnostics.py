"""What the monitor itself knows about its blind spots: gaps, bad events, the store, the journal."""

from __future__ import annotations

import time

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from sluice_tui.history import HistoryStatus, file_size
from sluice_tui.model.store import JobStore
from sluice_tui.ui.messages import Host
from sluice_tui.ui.screens.report import ReportScreen
from sluice_tui.ui.text import duration, full_time, inert


class DiagnosticsScreen(ReportScreen):
    TITLE = "Diagnostics"
    app: Host  # type: ignore[assignment]  # what this screen reads

    def report_key(self) -> object:
        store = self.app.store
        return (
            store.status,
            store.gap_count,
            store.last_gap(),
            store.stats(),
            store.notices(),
            self._history(),
        )

    def render_report(self) -> RenderableType:
        return render_diagnostics(self.app.store, self._history())

    def _history(self) -> HistoryStatus | None:
        history = self.app.history
        return None if history is None else history.status()


STALLED_AFTER = 10.0  # seconds without a journal commit while messages wait


def render_diagnostics(store: JobStore, history: HistoryStatus | None = None) -> RenderableType:
    parts: list[RenderableType] = []
    if history is not None:
        parts = [_heading("History: the journal on disk"), _history(history)]
    return Group(
        _heading("Connection"),
        _connection(store),
        *parts,
        _heading("Gaps: times when events may have been lost"),
        _gaps(store),
        _heading("Bad events"),
        _bad_events(store),
        _heading("Store"),
        _store(store),
        _heading("Notices"),
        _notices(store),
    )


def _counted(count: int, noun: str) -> str:
    """``1 message``, ``2 messages``: the number and a noun that agrees with it."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _heading(title: str) -> Text:
    return Text(f"\n{title}", "bold underline")


def _table(*columns: str) -> Table:
    table = Table(box=None, padding=(0, 1), header_style="bold")
    for label in columns:
        table.add_column(label, overflow="fold")
    return table


def _plain(value: object) -> Text:
    """Cluster or file text as written: a Rich table reads a bare str as markup."""
    return Text(inert(str(value)))


def _none(text: str) -> Text:
    return Text(text, "grey50")


def _connection(store: JobStore) -> RenderableType:
    status = store.status
    text = Text()
    text.append(status.state, "bold")
    text.append(f" since {full_time(status.since)}  ")
    text.append(inert(status.broker), "bold")
    if status.receiving:
        text.append(f"\nreceiving: {status.receiving}")
    if status.error:
        text.append(f"\nlast error: {inert(status.error)}", "red")
    return text


def _history(status: HistoryStatus) -> RenderableType:
    table = _table("", "")
    table.show_header = False
    if status.mode == "off":
        table.add_row("mode", "off: jobs are kept in memory only, and lost on quitting")
        if status.path:
            table.add_row("file", _plain(status.path))
        if status.problem:
            table.add_row("why", Text(inert(status.problem), "red"))
        else:
            table.add_row("why", "--no-history")
        return table
    table.add_row("file", _plain(status.path))
    table.add_row("mode", status.mode)
    table.add_row("size", _size(status))
    if status.keeps:
        table.add_row("keeps", _plain(status.keeps))
    table.add_row("last write", full_time(status.last_write) or "none yet")
    if status.unsaved and status.problem is None:
        # Saved every half second: a backlog that outlives a few seconds means a slow disk.
        late = status.last_write is not None and time.time() - status.last_write > STALLED_AFTER
        table.add_row(
            "not yet saved",
            Text(_counted(status.unsaved, "message"), "red" if late else ""),
        )
    if status.dropped_notes:
        table.add_row("not recorded", Text(_dropped(status.dropped_notes), "red"))
    if status.checkpoints:
        style = "red" if status.checkpoints.startswith("stopped") else ""
        table.add_row("checkpoints", Text(inert(status.checkpoints), style))
    table.add_row(
        "restored at start",
        f"{_counted(status.restored_jobs, 'job')} "
        f"({_counted(status.restored_events, 'event')} replayed) "
        f"in {duration(status.restore_seconds)}",
    )
    if status.problem:
        table.add_row("problem", Text(inert(status.problem), "red"))
    return table


def _size(status: HistoryStatus) -> str:
    """The file, and apart from it the write-ahead log SQLite keeps beside it."""
    total, wal = status.size_bytes, status.wal_bytes
    if total is None or not wal:
        return file_size(total)
    return f"{file_size(total - wal)} (+ {file_size(wal)} write-ahead log)"


def _dropped(count: int) -> str:
    """Changes the monitor made itself, which no event carries, that the journal lost."""
    if count == 1:
        return (
            "1 change that sluice-tui made to a job itself (a resync correction, a retry or "
            "revoke it sent, a job marked lost) could not be saved to the journal: after a "
            "restart that job will not show it"
        )
    return (
        f"{count:,} changes that sluice-tui made to jobs itself (resync corrections, retries "
        "or revokes it sent, jobs marked lost) could not be saved to the journal: after a "
        "restart those jobs will not show them"
    )


def _gaps(store: JobStore) -> RenderableType:
    gaps = store.gaps()
    if not gaps:
        return _none("None: the event stream has not broken since the monitor connected.")
    table = _table("from", "to", "length", "why", "resync")
    for gap in reversed(gaps):
        table.add_row(
            full_time(gap.start),
            full_time(gap.end),
            duration(gap.end - gap.start),
            _plain(gap.reason),
            _plain(gap.resync),
        )
    if store.gap_count > len(gaps):
        older = _counted(store.gap_count - len(gaps), "older gap")
        return Group(table, _none(f"(and {older})"))
    return table


def _bad_events(store: JobStore) -> RenderableType:
    stats = store.stats()
    if not stats.bad_events:
        return _none("None received.")
    counts = _table("count", "reason")
    for reason, count in sorted(stats.bad_by_reason.items(), key=lambda kv: -kv[1]):
        counts.add_row(f"{count:,}", _plain(reason))
    samples = _table("time", "reason", "sample (latest first)")
    for when, reason, sample in reversed(store.bad_event_samples()[-50:]):
        samples.add_row(full_time(when), _plain(reason), _plain(sample))
    return Group(counts, Text(""), samples)


def _store(store: JobStore) -> RenderableType:
    stats = store.stats()
    online, known = store.worker_counts()
    table = _table("", "")
    table.show_header = False
    table.add_row("events taken in", f"{stats.events:,}")
    table.add_row(
        "jobs held", f"{stats.jobs:,} of at most {stats.max_jobs:,} (running and scheduled kept)"
    )
    table.add_row("finished jobs forgotten to make room", f"{stats.evicted:,}")
    table.add_row("unfinished jobs forgotten to make room", f"{stats.crowded_out:,}")
    table.add_row(
        f"unfinished jobs aged out (no event for {_period(stats.stale_after)})",
        f"{stats.aged_out:,}",
    )
    table.add_row("late events for forgotten jobs", f"{stats.dropped_late:,}")
    table.add_row("workers online", f"{online} of {known}")
    table.add_row(
        f"workers forgotten (offline for {_period(stats.forget_workers_after)})",
        f"{stats.workers_forgotten:,}",
    )
    return table


def _period(seconds: float) -> str:
    """A configured length of time, as it was most likely given: 24 h, 90 min, 45 s."""
    whole = round(seconds)
    if whole >= 3600 and whole % 3600 == 0:
        return f"{whole // 3600} h"
    if whole >= 60 and whole % 60 == 0:
        return f"{whole // 60} min"
    return f"{seconds:g} s"


def _notices(store: JobStore) -> RenderableType:
    notices = store.notices()
    if not notices:
        return _none("None.")
    table = _table("time", "notice")
    for when, text in reversed(notices):
        table.add_row(full_time(when), _plain(text))
    return table
