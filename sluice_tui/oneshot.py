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

from sluice_tui.actions import ActionRefused, ActionsGate
from sluice_tui.celery_adapter.connect import load_app
from sluice_tui.celery_adapter.control import CeleryControl
from sluice_tui.model.states import ActionNotAllowed
from sluice_tui.model.store import JobStore

REFUSED = 2
FAILED = 1


def _gate(args: argparse.Namespace) -> ActionsGate:
    app = load_app(args.app, args.broker)
    return ActionsGate(JobStore(), CeleryControl(app), read_only=args.read_only)


def _say(text: str) -> None:
    print(f"sluice-tui: {text}", file=sys.stderr)


def _confirmed(args: argparse.Namespace, question: str) -> bool | None:
    """True to go ahead; False if declined; None when no one can be asked."""
    if args.yes:
        return True
    if not sys.stdin.isatty():
        return None
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _ask(args: argparse.Namespace, question: str) -> int | None:
    confirmed = _confirmed(args, question)
    if confirmed is None:
        _say("not sent: no terminal to confirm on; add --yes to send without asking")
        return REFUSED
    if not confirmed:
        _say("not sent")
        return REFUSED
    return None


def run_retry(args: argparse.Namespace) -> int:
    gate = _gate(args)
    try:
        plan = gate.plan_retry(args.job_id)
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        return REFUSED
    except Exception as exc:  # the result backend could not be read
        _say(f"could not look up job {args.job_id}: {type(exc).__name__}: {exc}")
        return FAILED
    call = plan.call
    print(
        f"retry {plan.job.id} ({plan.job.state.value}) as task {call.name}\n"
        f"  args   {json.dumps(list(call.args), default=repr)}\n"
        f"  kwargs {json.dumps(call.kwargs, default=repr)}\n"
        f"  queue  {call.queue or call.routing_key or '(default routing)'}\n"
        f"  from   {call.source}",
        file=sys.stderr,
    )
    declined = _ask(args, "Send it again as a new job?")
    if declined is not None:
        return declined
    try:
        new_id = gate.retry(plan)
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        return REFUSED
    except Exception as exc:
        _say(f"sending failed: {type(exc).__name__}: {exc}")
        return FAILED
    print(new_id)
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    gate = _gate(args)
    try:
        plan = gate.plan_revoke(args.job_id)
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        return REFUSED
    except Exception as exc:
        _say(f"could not look up job {args.job_id}: {type(exc).__name__}: {exc}")
        return FAILED
    how = f"terminate with {args.signal}" if args.terminate else "revoke"
    if plan.running and not args.terminate:
        _say("the job is running: without --terminate it keeps running to the end")
    declined = _ask(args, f"{how.capitalize()} job {plan.job.id} ({plan.job.state.value})?")
    if declined is not None:
        return declined
    try:
        replies = gate.revoke(plan, terminate=args.terminate, signal=args.signal)
    except (ActionNotAllowed, ActionRefused) as exc:
        _say(str(exc))
        return REFUSED
    except Exception as exc:
        _say(f"revoke failed: {type(exc).__name__}: {exc}")
        return FAILED
    for line in replies or ["no worker replied within a second"]:
        print(line)
    return 0
