"""Terminal escapes inside a real task's args and result never reach the terminal raw."""

from __future__ import annotations

from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.states import JobState
from sluice_tui.model.store import JobStore
from sluice_tui.ui.app import SluiceApp
from tests.cluster import Cluster, wait_for
from tests.events import CURSOR_ESCAPES, TITLE_ESCAPE
from tests.ui_helpers import SIZE, screen_text


async def test_a_real_result_with_escape_sequences_is_shown_inert(tmp_path):
    cluster = Cluster("filesystem", tmp_path)
    store = JobStore()
    receiver = ReceiverThread(cluster.app, store)
    try:
        cluster.start_worker("w1")
        receiver.start()
        # Send once the worker is heard: the monitor is then listening and has
        # asked for task events (the worker runs without -E). A job sent before
        # could finish unseen on a loaded machine.
        wait_for(lambda: any(w.online for w in store.workers()), 60, "the worker to be heard")
        job = cluster.send("demo.add", TITLE_ESCAPE, CURSOR_ESCAPES)
        wait_for(lambda: store.get(job.id).state is JobState.COMPLETED, 60, "the job to finish")
    finally:
        receiver.stop()
        cluster.close()

    app = SluiceApp(store, tick_seconds=None)
    async with app.run_test(size=SIZE) as pilot:
        shown = [screen_text(app)]
        await pilot.press("g", *job.id[:8], "enter")
        shown.append(screen_text(app))
    for text in shown:
        assert "\x1b" not in text and "\x07" not in text
    detail = shown[1]
    assert "\\x1b]0;pwned\\x07" in detail  # visible, and harmless
    assert "\\x1b[2J\\x1b[H" in detail
