"""The queue board: depth, rate of change, history and the no-consumer flag."""

from __future__ import annotations

from sluice_tui.model.queues import HISTORY_SECONDS, QueueBoard, QueueSample

T = 1_700_000_000.0


def test_rate_says_filling_or_draining_and_history_keeps_ten_minutes():
    board = QueueBoard()
    board.watch(["celery", "slow"], "app")
    for n in range(400):  # 800 s of polls, 2 s apart
        board.record("celery", QueueSample(T + 2 * n, 10 + n, 1))
        board.record("slow", QueueSample(T + 2 * n, 1000 - n, 2))
    celery, slow = board.snapshot()
    assert celery.messages == 409 and celery.rate == 0.5
    assert slow.rate == -0.5
    assert len(celery.history) == HISTORY_SECONDS // 2 + 1
    assert celery.history[-1] == 409.0


def test_a_backlog_without_consumers_is_flagged_from_the_workers_word():
    board = QueueBoard()
    board.watch(["orphans", "celery"], "option")
    board.record("orphans", QueueSample(T, 5, None))
    board.record("celery", QueueSample(T, 5, None))
    assert board.get("orphans").consumers is None  # nobody said yet
    board.set_worker_consumers({"celery": 2})
    assert board.get("orphans").stuck and board.get("orphans").consumers == 0
    assert not board.get("celery").stuck


def test_a_missing_queue_reads_missing_with_no_count():
    board = QueueBoard()
    board.record("gone", QueueSample(T, None, None, missing=True))
    (gone,) = board.snapshot()
    assert gone.missing and gone.messages is None and not gone.stuck and gone.rate is None


def test_queues_come_from_events_workers_and_the_app():
    from celery import Celery

    from sluice_tui.celery_adapter.events import EventAdapter
    from sluice_tui.celery_adapter.queues import QueuePoller
    from sluice_tui.model.store import JobStore
    from sluice_tui.model.worker_info import WorkerFigures, board_of
    from tests import events as ev

    store = JobStore()
    EventAdapter(store)(ev.sent("job-1", T, queue="from-event", routing_key="from-event"))
    board_of(store).record_figures([WorkerFigures("w1@h", T, queues=("celery", "from-worker"))])
    app = Celery("t", set_as_current=False)
    poller = QueuePoller(app, store, extra_queues=["from-option"])
    poller._learn_worker_queues()  # what each poll does before asking the broker
    board = store.queues
    assert board.watched() == ["celery", "from-event", "from-option", "from-worker"]
    assert board.get("from-worker").sources == ("worker",)
    board.record("from-event", QueueSample(T, 3, None))
    assert board.get("from-event").stuck  # the workers answered, and none consumes it


def test_a_queue_emptied_reads_drained_not_still_draining():
    """A trial: `trial_default  0  1  -37.9/s draining` half a minute after a burst."""
    from sluice_tui.ui.screens.queues import rate_text

    assert rate_text(-37.9, 0).plain == "drained"
    assert rate_text(-37.9, 12).plain == "-37.9/s draining"
    assert rate_text(4.0, 0).plain == "+4.0/s filling"
