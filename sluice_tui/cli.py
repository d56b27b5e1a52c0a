"""The ``sluice-tui`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sluice_tui import __version__
from sluice_tui.model.states import JobState
from sluice_tui.model.store import DEFAULT_MAX_JOBS
from sluice_tui.terminal_text import inert

EXAMPLES = """\
examples:
  sluice-tui --broker redis://localhost:6379/0      watch a Redis-backed cluster
  sluice-tui -A proj                               use proj's Celery app and config
  sluice-tui dump -A proj --seconds 10 --state failed
                                                   print failed jobs as JSON
"""


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


def _add_connection_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Subcommands accept the same options; SUPPRESS keeps their absence from
    # overwriting a value given before the subcommand name.
    default = {} if top else {"default": argparse.SUPPRESS}
    # Both may be given, as with `celery -A proj -b URL`: the app brings its
    # config (exchanges, serializers, result backend) and --broker wins over it.
    parser.add_argument(
        "-b",
        "--broker",
        metavar="URL",
        help="broker URL, e.g. redis://host:6379/0; overrides CELERY_BROKER_URL and the app's",
        **default,
    )
    parser.add_argument(
        "-A", "--app", metavar="APP", help="Celery app to load, as for `celery -A`", **default
    )
    parser.add_argument(
        "--max-jobs",
        type=_positive_int,
        metavar="N",
        help=f"jobs kept in memory (default {DEFAULT_MAX_JOBS}); finished ones go first",
        **({"default": DEFAULT_MAX_JOBS} if top else default),
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="never change the cluster: retry, revoke and enable_events are all off",
        **default,
    )
    parser.add_argument(
        "--no-enable-events",
        action="store_true",
        help="do not ask workers started without -E to send task events",
        **default,
    )


def _listen_seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError("must be from 0 to 60")
    return value


def _add_job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "job_id",
        metavar="JOB_ID",
        help="a full id, or a prefix of one (as the table shows): used only when one job fits",
    )
    parser.add_argument(
        "--listen",
        type=_listen_seconds,
        default=2.0,
        metavar="S",
        help="when neither the result backend nor the workers know the id, listen to "
        "events this long for it (default 2; 0 skips)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice-tui",
        description="A terminal monitor for Celery: live jobs, state history, retry and revoke.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sluice-tui {__version__}")
    _add_connection_options(parser, top=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    dump = commands.add_parser(
        "dump",
        help="listen for a while, then print every job seen as JSON",
        description="Listen to the cluster's events for N seconds, then print a JSON array "
        "with one object per job. Ctrl+C stops early and prints what was seen.",
    )
    _add_connection_options(dump, top=False)
    dump.add_argument(
        "--seconds", type=_seconds, default=5.0, metavar="N", help="how long to listen (default 5)"
    )
    dump.add_argument(
        "--until-idle",
        type=_seconds,
        metavar="S",
        help="stop early once every job seen has finished and no event came for S seconds",
    )
    dump.add_argument(
        "--state",
        choices=[s.value for s in JobState],
        action="append",
        help="keep only jobs in this state (repeatable)",
    )
    dump.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="report connection and worker changes on stderr",
    )
    demo = commands.add_parser(
        "demo",
        help="run a real Celery cluster that needs no server, and watch it",
        description="Start real Celery workers on Celery's filesystem:// transport in a "
        "temporary directory, keep sending jobs that reach every state, and open the TUI "
        "on them. Retry and revoke work. Quitting stops and removes everything.",
    )
    demo.add_argument(
        "--max-jobs",
        type=_positive_int,
        default=DEFAULT_MAX_JOBS,
        metavar="N",
        help=argparse.SUPPRESS,
    )
    demo.add_argument("--read-only", action="store_true", help="watch only: no retry or revoke")
    demo.add_argument("--no-enable-events", action="store_true", help=argparse.SUPPRESS)
    demo.add_argument(
        "--dump",
        type=_seconds,
        metavar="N",
        help="no TUI: run for N seconds, then print the jobs as JSON (for scripts and tests)",
    )

    retry = commands.add_parser(
        "retry",
        help="send a failed or cancelled job again, as a new job",
        description="Send a failed or cancelled job again under a new id, with its exact "
        "arguments (from the result backend with result_extended=True, or from complete "
        "event reprs). Prints the new id. A prefix is looked up in the result backend, "
        "the workers and the events, and used only when exactly one job fits.",
    )
    _add_connection_options(retry, top=False)
    _add_job_id(retry)
    retry.add_argument("-y", "--yes", action="store_true", help="send without asking")

    revoke = commands.add_parser(
        "revoke",
        help="revoke a job (and optionally terminate it if it is running)",
        description="Broadcast a revoke for a job that has not finished. Prints the "
        "workers' replies. A prefix is looked up in the result backend, the workers and "
        "the events, and used only when exactly one job fits. Exit status 3: the revoke "
        "went out for an id no source knows.",
    )
    _add_connection_options(revoke, top=False)
    _add_job_id(revoke)
    revoke.add_argument(
        "--terminate", action="store_true", help="also stop it if it is running (signal below)"
    )
    revoke.add_argument(
        "--signal", choices=["SIGTERM", "SIGKILL"], default="SIGTERM", help="default SIGTERM"
    )
    revoke.add_argument("-y", "--yes", action="store_true", help="send without asking")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Library loggers must not write to the terminal: the TUI owns it, and
    # dump's stdout is data.  Problems reach users through the store instead.
    logging.getLogger().addHandler(logging.NullHandler())
    args = build_parser().parse_args(argv)

    from sluice_tui.celery_adapter.connect import SetupError

    try:
        if args.command == "dump":
            from sluice_tui.dump import run_dump

            return run_dump(args)
        if args.command == "demo":
            return run_demo(args)
        if args.command in ("retry", "revoke"):
            from sluice_tui import oneshot

            return oneshot.run_retry(args) if args.command == "retry" else oneshot.run_revoke(args)
        return run_tui(args)
    except SetupError as exc:
        print(f"sluice-tui: {inert(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _tui_options(args: argparse.Namespace) -> dict:
    return {
        "max_jobs": args.max_jobs,
        "read_only": args.read_only,
        "enable_events": not args.no_enable_events,
    }


def run_tui(args: argparse.Namespace) -> int:
    from sluice_tui.celery_adapter.connect import load_app
    from sluice_tui.launch import open_tui

    return open_tui(load_app(args.app, args.broker), **_tui_options(args))


def run_demo(args: argparse.Namespace) -> int:
    from sluice_tui.demo.runner import running_demo

    with running_demo() as cluster:
        from sluice_tui.demo.workload import app, config_from_env

        app.conf.update(config_from_env())  # the demo's broker, whatever was imported before
        cluster.start_generator(app)
        if args.dump:
            from sluice_tui.dump import dump_app

            return dump_app(app, seconds=args.dump, max_jobs=args.max_jobs)
        from sluice_tui.launch import open_tui

        return open_tui(app, **_tui_options(args))


def entry_point() -> None:
    sys.exit(main())
