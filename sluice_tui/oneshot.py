"""``sluice-tui retry`` and ``sluice-tui revoke``: the TUI's actions as commands.

They pass through the same gate as the keys.  The job's state comes from the
result backend (without one it is unknown, so retry is refused and revoke
allowed, by the same rules).  A refusal prints the gate's text on stderr and
exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TypeVar

from sluice_tui.actions import ActionRefused, ActionsGate
from sluice_tui.celery_adapter.connect import load_app
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.model.states import ActionNotAllowed
from sluice_tui.model.store import JobStore
from sluice_tui.terminal_text import inert

REFUSED = 2
FAILED = 1
T = TypeVar("T")


def _gate(args: argparse.Namespace) -> ActionsGate:
    app = load_app(args.app, args.broker)
    return ActionsGate(JobStore(), CeleryControl(app), read_only=args.read_only)


def _say(text: str) -> None:
    print(f"sluice-tui: {inert(text)}", file=sys.stderr)


def _confirmed(args: argparse.Namespace, question: str) -> bool | None:
    """True to go ahead; False if declined; None when no one can be asked."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return None
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


class _Exit(Exception):
    """Stop the command with this exit status; the reason is already on stderr."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def _through_gate(step: Callable[[], T], failure: str) -> T:
    """Run one step of an action; a refusal or a broker error ends the command."""
    try:
        return step()
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        raise _Exit(REFUSED) from None
    except Exception as exc:  # the broker or result backend failed
        _say(f"{failure}: {type(exc).__name__}: {exc}")
        raise _Exit(FAILED) from None


def _ask(args: argparse.Namespace, question: str) -> None:
    confirmed = _confirmed(args, question)
    if confirmed is None:
        _say("not sent: no terminal to confirm on; add --yes to send without asking")
        raise _Exit(REFUSED)
    if not confirmed:
        _say("not sent")
        raise _Exit(REFUSED)


def _exit_status(command: Callable[[argparse.Namespace], None]) -> Callable[..., int]:
    def run(args: argparse.Namespace) -> int:
        try:
            command(args)
        except _Exit as stop:
            return stop.status
        return 0

    return run


@_exit_status
def run_retry(args: argparse.Namespace) -> None:
    gate = _gate(args)
    plan = _through_gate(lambda: gate.plan_retry(args.job_id), f"could not look up {args.job_id}")
    call = plan.call
    print(
        f"retry {inert(plan.job.id)} ({plan.job.state.value}) as task {inert(call.name)}\n"
        f"  args   {json.dumps(list(call.args), default=repr)}\n"
        f"  kwargs {json.dumps(call.kwargs, default=repr)}\n"
        f"  queue  {inert(call.queue or call.routing_key or '(default routing)')}\n"
        f"  from   {call.source}",
        file=sys.stderr,
    )
    _ask(args, "Send it again as a new job?")
    print(inert(_through_gate(lambda: gate.retry(plan), "sending failed")))


@_exit_status
def run_revoke(args: argparse.Namespace) -> None:
    gate = _gate(args)
    plan = _through_gate(lambda: gate.plan_revoke(args.job_id), f"could not look up {args.job_id}")
    how = f"terminate with {args.signal}" if args.terminate else "revoke"
    if plan.running and not args.terminate:
        _say("the job is running: without --terminate it keeps running to the end")
    _ask(args, f"{how.capitalize()} job {inert(plan.job.id)} ({plan.job.state.value})?")
    replies = _through_gate(
        lambda: gate.revoke(plan, terminate=args.terminate, signal=args.signal), "revoke failed"
    )
    for line in replies or ["no worker replied within a second"]:
        print(inert(line))
