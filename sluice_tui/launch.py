"""Open the TUI on a Celery app: shared by the command line, the demo and the plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sluice_tui.actions import ActionsGate
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.celery_adapter.receiver import ReceiverThread
from sluice_tui.model.store import DEFAULT_MAX_JOBS, JobStore
from sluice_tui.ui.actions import UIActions
from sluice_tui.ui.app import SluiceApp

if TYPE_CHECKING:
    from celery import Celery


def build_app(
    celery_app: Celery,
    *,
    max_jobs: int = DEFAULT_MAX_JOBS,
    read_only: bool = False,
    enable_events: bool = True,
) -> SluiceApp:
    store = JobStore(max_jobs=max_jobs)
    receiver = ReceiverThread(celery_app, store, enable_events=enable_events, read_only=read_only)
    gate = ActionsGate(store, CeleryControl(celery_app), read_only=read_only)
    return SluiceApp(store, source=receiver, actions=UIActions(gate), read_only=read_only)


def open_tui(celery_app: Celery, **options) -> int:
    build_app(celery_app, **options).run()
    return 0
