"""`celery -A proj sluice ...`: sluice-tui's commands as a Celery subcommand, as Flower does it.

Celery finds this through the ``celery.commands`` entry point.  The tree is
sluice-tui's own (:func:`sluice_tui.cli.build_commands`), without ``-A`` and
``--broker``: the project's app arrives already loaded by Celery's ``-A``,
with its broker and config, and Celery's ``-b`` sets the broker.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sluice_tui.cli import build_commands

if TYPE_CHECKING:
    from celery import Celery


def _celery_app(ctx: click.Context, options: dict[str, Any]) -> Celery:
    # Celery's CLI keeps its loaded app on the root context object.
    root = ctx.find_root()
    app = root.obj.app
    broker = root.params.get("broker")
    if broker:
        # `celery -b` only sets CELERY_BROKER_URL; an app that names its own
        # transport class or read/write URLs would still use those.  Make -b
        # win outright, as --broker does for sluice-tui.
        from sluice_tui.celery_adapter.connect import override_broker

        override_broker(app, broker)
    return app


sluice = build_commands(
    "sluice",
    find_app=_celery_app,
    app_options=False,
    help_text="Watch this app's cluster in sluice-tui (retry and revoke included), or run "
    "one of its commands on it.",
)
