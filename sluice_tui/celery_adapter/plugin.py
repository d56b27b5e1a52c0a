"""`celery -A proj sluice`: the TUI as a Celery subcommand, as Flower does it.

Celery finds this through the ``celery.commands`` entry point.  The project's
app arrives already loaded, with its broker and config, so nothing else needs
to be said on the command line.
"""

from __future__ import annotations

import click

from sluice_tui.model.states import JobState
from sluice_tui.model.store import DEFAULT_MAX_JOBS


@click.group(
    name="sluice",
    invoke_without_command=True,
    help="Watch this app's cluster in sluice-tui (retry and revoke included).",
)
@click.option(
    "--max-jobs",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_JOBS,
    show_default=True,
    help="Jobs kept in memory; finished ones go first.",
)
@click.option("--read-only", is_flag=True, help="Never change the cluster.")
@click.option(
    "--no-enable-events",
    is_flag=True,
    help="Do not ask workers started without -E to send task events.",
)
@click.pass_context
def sluice(ctx: click.Context, max_jobs: int, read_only: bool, no_enable_events: bool) -> None:
    ctx.ensure_object(dict)
    options = {"max_jobs": max_jobs, "read_only": read_only, "enable_events": not no_enable_events}
    ctx.meta["sluice"] = options
    if ctx.invoked_subcommand is None:
        from sluice_tui.launch import open_tui

        ctx.exit(open_tui(_app(ctx), **options))


@sluice.command(help="Listen for a while, then print every job seen as JSON.")
@click.option(
    "--seconds", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True
)
@click.option(
    "--until-idle",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop early once every job seen finished and nothing came for S seconds.",
)
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice([s.value for s in JobState]),
    help="Keep only this state.",
)
@click.pass_context
def dump(ctx: click.Context, seconds: float, until_idle: float | None, states: tuple) -> None:
    from sluice_tui.dump import dump_app

    options = ctx.meta["sluice"]
    ctx.exit(
        dump_app(
            _app(ctx),
            seconds=seconds,
            until_idle=until_idle,
            states={JobState(s) for s in states} or None,
            max_jobs=options["max_jobs"],
            read_only=options["read_only"],
            enable_events=options["enable_events"],
        )
    )


def _app(ctx: click.Context):
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
