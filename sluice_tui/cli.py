"""The command line: one click tree for ``sluice-tui`` and ``celery -A proj sluice``.

:func:`build_commands` makes both.  Every option is declared once, in the
tuples below, and applied where it belongs.  The trees differ only in where
the Celery app comes from: ``sluice-tui`` loads it from its own ``-A`` and
``--broker``; under ``celery``, Celery's ``-A`` and ``-b`` already did (see
:mod:`sluice_tui.celery_adapter.plugin`).

Options that say how to listen may come before the subcommand or after it:
``sluice-tui --read-only dump`` and ``sluice-tui dump --read-only`` mean the
same; the subcommand's own value wins when both are given.
"""

from __future__ import annotations

import logging
import os
import re
import select
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from click.core import ParameterSource

from sluice_tui import __version__
from sluice_tui.history import DEFAULT_MAX_JOURNAL_JOBS
from sluice_tui.launch import mask_passwords, report_crash
from sluice_tui.model.job import HISTORY_CAP, MIN_HISTORY_CAP
from sluice_tui.model.states import JobState
from sluice_tui.model.store import (
    DEFAULT_FORGET_WORKERS_AFTER,
    DEFAULT_MAX_JOBS,
    DEFAULT_STALE_AFTER,
)
from sluice_tui.terminal_text import inert

if TYPE_CHECKING:
    from celery import Celery

    from sluice_tui.history import HistoryOptions
    from sluice_tui.oneshot import JobRequest

SETUP_ERROR = 2
INTERRUPTED = 130
BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a filter cut off by `head`
Options = dict[str, Any]
# Finds the Celery app a command acts on, from its context and merged options.
AppFinder = Callable[[click.Context, Options], "Celery"]

EXAMPLES = """\
\b
examples:
  sluice-tui --broker redis://localhost:6379/0      watch a Redis-backed cluster
  sluice-tui -A proj                               use proj's Celery app and config
  sluice-tui dump -A proj --seconds 10 --state failed
                                                   print failed jobs as JSON
  sluice-tui stats -A proj --json                  queue depths, task types, workers
  sluice-tui collect -A proj                       keep the history, with no screen
  sluice-tui dump --history FILE --since 48h --state failed
                                                   what failed in two days, from the journal
  celery -A proj sluice retry 7513d231             the same commands under celery
"""

# -- options, each declared once ----------------------------------------------

# Only sluice-tui has these: under `celery`, its own -A and -b come first.
# Both may be given, as with `celery -A proj -b URL`: the app brings its config
# (exchanges, serializers, result backend) and --broker wins over it.
APP_OPTIONS = (
    click.option(
        "-b",
        "--broker",
        metavar="URL",
        help="Broker URL, e.g. redis://host:6379/0; overrides CELERY_BROKER_URL and the app's.",
    ),
    click.option("-A", "--app", metavar="APP", help="Celery app to load, as for `celery -A`."),
)


_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", re.IGNORECASE)
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Duration(click.ParamType):
    """A length of time: seconds, or a number with s, m, h or d (90s, 30m, 48h, 7d)."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        if isinstance(value, int | float):
            return float(value)
        found = _DURATION.fullmatch(str(value))
        seconds = float(found[1]) * _UNIT_SECONDS[found[2].lower()] if found else 0.0
        if not seconds:
            self.fail(f"{value!r} is not a length of time like 90s, 30m, 48h or 7d", param, ctx)
        return seconds


DURATION = Duration()


# What the store keeps: on the group and on every command that watches the cluster.
STORE_OPTIONS = (
    click.option(
        "--max-jobs",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_JOBS,
        metavar="N",
        help=f"Jobs kept in memory (default {DEFAULT_MAX_JOBS}); finished ones go first.",
    ),
    click.option(
        "--history-per-job",
        type=click.IntRange(min=MIN_HISTORY_CAP),
        default=HISTORY_CAP,
        metavar="N",
        help=f"History entries kept per job (default {HISTORY_CAP}); a job that retries "
        "without end keeps its first and latest attempts and counts the rest.",
    ),
    click.option(
        "--stale-after",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_STALE_AFTER,
        metavar="S",
        help="Forget unfinished jobs with no event for S seconds "
        f"(default {DEFAULT_STALE_AFTER:.0f}; a scheduled job counts from its ETA).",
    ),
    click.option(
        "--forget-workers-after",
        type=click.FloatRange(min=0, min_open=True),
        default=DEFAULT_FORGET_WORKERS_AFTER,
        metavar="S",
        help=f"Forget workers offline for S seconds (default {DEFAULT_FORGET_WORKERS_AFTER:.0f}).",
    ),
)
# What may be published: on every command that connects (retry and revoke too).
LISTEN_OPTIONS = (
    click.option(
        "--read-only",
        is_flag=True,
        help="Never change the cluster: no retry, revoke or worker control, and nothing "
        "published at all (no enable_events, no inspect requests).",
    ),
    click.option(
        "--no-enable-events",
        is_flag=True,
        help="Do not ask workers started without -E to send task events.",
    ),
)
WATCH_OPTIONS = (*STORE_OPTIONS, *LISTEN_OPTIONS)
# The journal on disk (sluice_tui.history): the TUI and collect.
HISTORY_PATH = click.option(
    "--history",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The history journal (SQLite) to keep; default: one file per broker under "
    "$XDG_STATE_HOME/sluice-tui (else ~/.local/state/sluice-tui).",
)
HISTORY_OPTIONS = (
    HISTORY_PATH,
    click.option("--no-history", is_flag=True, help="Keep no journal: jobs live in memory only."),
    click.option(
        "--history-max-age",
        type=DURATION,
        default="7d",
        metavar="AGE",
        help="Forget journaled jobs older than AGE (e.g. 48h, 30d; default 7d).",
    ),
    click.option(
        "--history-max-jobs",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_JOURNAL_JOBS,
        metavar="N",
        help=f"Keep at most N jobs in the journal (default {DEFAULT_MAX_JOURNAL_JOBS:,}).",
    ),
)
_SECONDS = click.FloatRange(min=0, min_open=True)
LISTEN_SECONDS = click.option(
    "--seconds", type=_SECONDS, default=5.0, metavar="N", help="How long to listen (default 5)."
)
# Which broker queues to watch besides the app's own, the workers' and the jobs'.
QUEUE_OPTIONS = (
    click.option(
        "--queue",
        "queues",
        multiple=True,
        metavar="NAME",
        help="Also watch this queue's depth (repeatable).",
    ),
)
TUI_OPTIONS = (
    click.option(
        "--queue-interval",
        type=click.FloatRange(min=0.2),
        default=2.0,
        metavar="S",
        help="Seconds between queue depth polls (default 2).",
    ),
)
UNTIL_IDLE = click.option(
    "--until-idle",
    type=_SECONDS,
    metavar="S",
    help="Stop early once every job seen has finished and no event came for S seconds.",
)
VERBOSE = click.option(
    "-v", "--verbose", is_flag=True, help="Report connection and worker changes on stderr."
)
DUMP_OPTIONS = (
    click.option(
        "--seconds",
        type=click.FloatRange(min=0),
        default=5.0,
        metavar="N",
        help="How long to listen (default 5). With --history: how long to follow the "
        "journal before printing (default 0: print it at once).",
    ),
    UNTIL_IDLE,
    click.option(
        "--state",
        "states",
        multiple=True,
        type=click.Choice([s.value for s in JobState]),
        help="Keep only jobs in this state (repeatable).",
    ),
    VERBOSE,
    click.option(
        "--history",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Print from this journal (a collector's or the TUI's) instead of listening.",
    ),
    click.option(
        "--since",
        type=DURATION,
        metavar="AGE",
        help="With --history: only jobs seen in the last AGE (e.g. 48h).",
    ),
)
COLLECT_OPTIONS = (
    click.option(
        "--log-every",
        type=click.FloatRange(min=0),
        default=60.0,
        metavar="S",
        help="Seconds between progress lines on stderr (default 60; 0: none).",
    ),
)
STATS_OPTIONS = (
    LISTEN_SECONDS,
    UNTIL_IDLE,
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object, not tables."),
    VERBOSE,
)
DEMO_OPTIONS = (
    click.option(
        "--dump",
        type=_SECONDS,
        metavar="N",
        help="No TUI: run for N seconds, then print the jobs as JSON (for scripts and tests).",
    ),
)
JOB_OPTIONS = (
    click.argument("job_id", metavar="JOB_ID"),
    click.option(
        "--listen",
        type=click.FloatRange(0, 60),
        default=2.0,
        metavar="S",
        help="When neither the result backend nor the workers know the id, listen to "
        "events this long for it (default 2; 0 skips).",
    ),
    click.option("-y", "--yes", is_flag=True, help="Send without asking."),
    click.option(
        "--history",
        type=click.Path(dir_okay=False, path_type=Path),
        metavar="FILE",
        help="Look the id up in this history journal too (default: the broker's own, "
        "if there is one): names and arguments of jobs the result backend no longer has.",
    ),
    click.option("--no-history", is_flag=True, help="Do not read a history journal."),
)
RETRY_OPTIONS = (
    click.option(
        "--queue",
        metavar="NAME",
        help="Send it to this queue (default: the queue it was first sent to).",
    ),
)
REVOKE_OPTIONS = (
    click.option("--terminate", is_flag=True, help="Also stop it if it is running (signal below)."),
    click.option(
        "--signal",
        type=click.Choice(["SIGTERM", "SIGKILL"]),
        default="SIGTERM",
        help="Default SIGTERM.",
    ),
)
JOB_ID_HELP = (
    "JOB_ID is a full id, or a prefix of one (as the table shows), looked up in the "
    "result backend, the history journal, the workers and the events, and used only when "
    "exactly one job fits."
)


def _options(*decorators: Callable) -> Callable:
    """Apply option decorators in the order listed (click lists them that way)."""

    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


# -- one-line usage errors ----------------------------------------------------


class _OneLineUsageError(click.UsageError):
    """A usage error as one line on stderr, passwords masked, never a traceback."""

    def show(self, file: Any = None) -> None:
        where = f" (see {self.ctx.command_path} --help)" if self.ctx else ""
        message = inert(mask_passwords(self.format_message()))
        click.echo(f"sluice-tui: {message}{where}", file=file or sys.stderr)


def _one_line(error: click.UsageError, ctx: click.Context | None) -> _OneLineUsageError:
    # format_message() names the parameter, which .message does not.
    message = error.format_message().rstrip(".")
    option = getattr(error, "option_name", None)
    under_celery = ctx is not None and not isinstance(ctx.find_root().command, _Group)
    if under_celery and option in ("-A", "--app", "-b", "--broker"):
        message += f"; give it to celery, before sluice: celery {option} ... sluice ..."
    return _OneLineUsageError(message, error.ctx or ctx)


def _refuse(ctx: click.Context, error: click.UsageError) -> NoReturn:
    """A usage error found once the options are merged: one line, as a parse error is."""
    error.ctx = ctx
    raise _one_line(error, ctx)


class _Command(click.Command):
    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _OneLineUsageError:
            raise
        except click.UsageError as error:
            raise _one_line(error, parent) from None


class _Group(_Command, click.Group):
    command_class = _Command

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as error:
            raise _one_line(error, ctx) from None


# -- running a command --------------------------------------------------------


def _finish(ctx: click.Context, work: Callable[[], int]) -> NoReturn:
    """Run a command's work and exit with its status; a crash is reported, not shown."""
    from sluice_tui.celery_adapter.connect import SetupError

    try:
        status = work()
    except SetupError as exc:
        print(f"sluice-tui: {inert(exc)}", file=sys.stderr)
        status = SETUP_ERROR
    except KeyboardInterrupt:
        status = INTERRUPTED
    except BrokenPipeError as exc:
        if not _reader_gone():
            status = report_crash(exc)  # a broker's socket, say: a real failure
        else:
            # The reader went away (`| head`): stop quietly, as a filter does.  What
            # is still buffered goes nowhere, or the flush at exit would complain.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            status = BROKEN_PIPE
    except Exception as exc:
        status = report_crash(exc)
    ctx.exit(status)


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has closed it."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


def _merged(ctx: click.Context) -> Options:
    """This command's options, taking the group's where this one was not given."""
    values = dict(ctx.params)
    above = ctx.parent.params if ctx.parent else {}
    for name in values.keys() & above.keys():
        if ctx.get_parameter_source(name) in (ParameterSource.DEFAULT, None):
            values[name] = above[name]
    return values


def _watch(options: Options) -> dict[str, Any]:
    """What the TUI and dump take from the watch options."""
    return {
        "store_options": {
            "max_jobs": options["max_jobs"],
            "history_cap": options["history_per_job"],
            "stale_after": options["stale_after"],
            "forget_workers_after": options["forget_workers_after"],
        },
        "read_only": options["read_only"],
        "enable_events": not options["no_enable_events"],
    }


def _history(options: Options) -> HistoryOptions:
    """What the TUI and collect take from the history options."""
    from sluice_tui.history import HistoryOptions

    return HistoryOptions(
        enabled=not options["no_history"],
        path=options["history"],
        max_age=options["history_max_age"],
        max_jobs=options["history_max_jobs"],
    )


def build_commands(
    name: str, *, find_app: AppFinder, app_options: bool, help_text: str
) -> click.Group:
    """The whole command tree, named ``name``; ``app_options`` adds -A and --broker."""
    connect = _options(*(APP_OPTIONS if app_options else ()), *WATCH_OPTIONS)
    # retry and revoke keep no store of their own worth tuning.
    connect_for_one_job = _options(*(APP_OPTIONS if app_options else ()), *LISTEN_OPTIONS)

    @click.group(
        name=name,
        cls=_Group,
        invoke_without_command=True,
        help=help_text,
        epilog=EXAMPLES,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(__version__, prog_name="sluice-tui", message="%(prog)s %(version)s")
    @connect
    @_options(*QUEUE_OPTIONS, *TUI_OPTIONS, *HISTORY_OPTIONS)
    @click.pass_context
    def group(ctx: click.Context, **_: Any) -> None:
        # Library loggers must not write to the terminal: the TUI owns it, and
        # dump's stdout is data.  Problems reach users through the store instead.
        logging.getLogger().addHandler(logging.NullHandler())
        if ctx.invoked_subcommand is None:
            options = ctx.params

            def tui() -> int:
                from sluice_tui.launch import open_tui

                return open_tui(
                    find_app(ctx, options),
                    queues=options["queues"],
                    queue_interval=options["queue_interval"],
                    history=_history(options),
                    **_watch(options),
                )

            _finish(ctx, tui)

    @group.command(
        help="Listen to the cluster's events for N seconds, then print a JSON array with "
        "one object per job. Ctrl+C stops early and prints what was seen.",
        short_help="Listen for a while, then print every job seen as JSON.",
    )
    @connect
    @_options(*DUMP_OPTIONS)
    @click.pass_context
    def dump(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)
        states = {JobState(s) for s in options["states"]} or None
        if options["history"] is not None:
            seconds = options["seconds"]
            if ctx.get_parameter_source("seconds") in (ParameterSource.DEFAULT, None):
                seconds = 0.0  # the journal is there already: print it at once

            def from_journal() -> int:
                from sluice_tui.dump import dump_history

                return dump_history(
                    options["history"],
                    seconds=seconds,
                    until_idle=options["until_idle"],
                    since=options["since"],
                    states=states,
                    store_options=_watch(options)["store_options"],
                )

            _finish(ctx, from_journal)
        if options["since"] is not None:
            _refuse(ctx, click.UsageError("--since reads a journal: give it with --history FILE"))
        if not options["seconds"]:  # 0 is for a journal, which needs no listening
            _refuse(
                ctx, click.BadParameter("0.0 is not in the range x>0", param_hint="'--seconds'")
            )

        def work() -> int:
            from sluice_tui import gc_policy
            from sluice_tui.dump import dump_app

            gc_policy.install()  # it holds what it hears, up to --max-jobs, as a TUI does
            return dump_app(
                find_app(ctx, options),
                seconds=options["seconds"],
                until_idle=options["until_idle"],
                states=states,
                verbose=options["verbose"],
                **_watch(options),
            )

        _finish(ctx, work)

    @group.command(
        help="Listen to the cluster for N seconds, poll its queues' depths and ask its workers, "
        "then print queues (messages, consumers), task types (jobs by state, failure rate, "
        "retries, runtime p50/p95/max, per minute) and workers (active, processed, "
        "concurrency, queues), as tables or one JSON object. With --read-only the workers "
        "are not asked (that publishes a request): their figures come from heartbeats. "
        "Exit status 1: the broker could not be reached.",
        short_help="Listen for a while, then print queue, task type and worker figures.",
    )
    @connect
    @_options(*STATS_OPTIONS, *QUEUE_OPTIONS)
    @click.pass_context
    def stats(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)

        def work() -> int:
            from sluice_tui.stats import stats_app

            return stats_app(
                find_app(ctx, options),
                seconds=options["seconds"],
                until_idle=options["until_idle"],
                as_json=options["as_json"],
                queues=options["queues"],
                verbose=options["verbose"],
                **_watch(options),
            )

        _finish(ctx, work)

    @group.command(
        help="Listen to the cluster's events and keep them in the history journal, with no "
        "screen: run it as a service, and every TUI started with the same --history reads "
        "the journal and follows it. Resyncs after every gap, as the TUI does. Runs until "
        "SIGTERM or Ctrl+C (exit status 0); a line on stderr every --log-every seconds. "
        "Exit status 2: the journal cannot be opened, or another process writes it; "
        "1: writing stopped (a full disk), so a service manager can restart it.",
        short_help="Keep the history journal without a screen (run it as a service).",
    )
    @connect
    @_options(*HISTORY_OPTIONS, *COLLECT_OPTIONS)
    @click.pass_context
    def collect(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)
        if options["no_history"]:
            _refuse(
                ctx,
                click.UsageError("collect keeps the journal: --no-history leaves it nothing to do"),
            )

        def work() -> int:
            from sluice_tui import gc_policy
            from sluice_tui.collect import run_collect

            gc_policy.install()  # a collector holds as many jobs as a TUI
            return run_collect(
                find_app(ctx, options),
                history=_history(options),
                log_every=options["log_every"],
                **_watch(options),
            )

        _finish(ctx, work)

    @group.command(
        help="Start real Celery workers on Celery's filesystem:// transport in a temporary "
        "directory, keep sending jobs that reach every state, and open the TUI on them. "
        "Retry and revoke work. Quitting stops and removes everything. Needs no broker.",
        short_help="Run a real Celery cluster that needs no server, and watch it.",
    )
    @_options(*WATCH_OPTIONS, *DEMO_OPTIONS)
    @click.pass_context
    def demo(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)
        _finish(ctx, lambda: run_demo(options["dump"], _watch(options)))

    @group.command(
        help="Send a failed or cancelled job again under a new id, with its exact arguments "
        "(from the result backend with result_extended=True, or from complete event reprs). "
        f"Prints the new id. {JOB_ID_HELP}",
        short_help="Send a failed or cancelled job again, as a new job.",
    )
    @connect_for_one_job
    @_options(*JOB_OPTIONS, *RETRY_OPTIONS)
    @click.pass_context
    def retry(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)
        _one_journal(ctx, options)

        def work() -> int:
            from sluice_tui import oneshot

            return oneshot.run_retry(
                find_app(ctx, options), _job_request(options), queue=options["queue"]
            )

        _finish(ctx, work)

    @group.command(
        help="Broadcast a revoke for a job that has not finished. Prints the workers' "
        f"replies. {JOB_ID_HELP} Exit status 3: the revoke went out for an id no source knows.",
        short_help="Revoke a job (and optionally terminate it if it is running).",
    )
    @connect_for_one_job
    @_options(*JOB_OPTIONS, *REVOKE_OPTIONS)
    @click.pass_context
    def revoke(ctx: click.Context, **_: Any) -> None:
        options = _merged(ctx)
        _one_journal(ctx, options)

        def work() -> int:
            from sluice_tui import oneshot

            return oneshot.run_revoke(
                find_app(ctx, options),
                _job_request(options),
                terminate=options["terminate"],
                signal=options["signal"],
            )

        _finish(ctx, work)

    return group


def _one_journal(ctx: click.Context, options: Options) -> None:
    if options["history"] is not None and options["no_history"]:
        _refuse(ctx, click.UsageError("--history FILE and --no-history: give one of them"))


def _job_request(options: Options) -> JobRequest:
    from sluice_tui.oneshot import JobRequest

    return JobRequest(
        job_id=options["job_id"],
        yes=options["yes"],
        listen=options["listen"],
        read_only=options["read_only"],
        enable_events=not options["no_enable_events"],
        history=options["history"],
        use_history=not options["no_history"],
    )


def run_demo(dump_seconds: float | None, watch: dict[str, Any]) -> int:
    from sluice_tui.demo.runner import running_demo

    with running_demo() as cluster:
        from sluice_tui.demo.workload import app, config_from_env

        app.conf.update(config_from_env())  # the demo's broker, whatever was imported before
        cluster.start_generator(app)
        if dump_seconds:
            from sluice_tui.dump import dump_app

            return dump_app(app, seconds=dump_seconds, store_options=watch["store_options"])
        from sluice_tui.launch import open_tui

        # Watched from the start, before any job names them: the archive queue
        # has no worker, so no worker names it either.
        return open_tui(app, queues=list(cluster.queues.values()), **watch)


def _app_from_options(ctx: click.Context, options: Options) -> Celery:
    from sluice_tui.celery_adapter.connect import load_app

    return load_app(options["app"], options["broker"])


sluice_tui = build_commands(
    "sluice-tui",
    find_app=_app_from_options,
    app_options=True,
    help_text="A terminal monitor for Celery: live jobs, state history, retry and revoke.",
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sluice-tui`` with ``argv`` (else the process's); the exit status."""
    try:
        return sluice_tui.main(argv, prog_name="sluice-tui", standalone_mode=False) or 0
    except click.ClickException as error:
        if isinstance(error, click.UsageError) and not isinstance(error, _OneLineUsageError):
            error = _one_line(error, error.ctx)
        error.show()
        return error.exit_code
    except click.Abort:  # Ctrl+C while click itself was reading the command line
        return INTERRUPTED


def entry_point() -> None:
    sys.exit(main())
