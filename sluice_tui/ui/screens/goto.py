"""A small prompt for a job id, which opens only what the text can mean.

Celery accepts any text as a task id and answers PENDING for one it never
heard of, so "open whatever was typed" turns a mistyped prefix into a job
that can be revoked.  The rule (:func:`goto_target`):

- a known id, or the start of exactly one known id, opens that job;
- the start of several says how many and asks for more;
- an id never seen opens as ``unknown`` (it may have been queued before the
  monitor started) only when the text is *complete*: a UUID as Celery makes
  them (36 characters, dashes at 8, 13, 18 and 23), or text that no such UUID
  can start with (a custom ``task_id=``: ``report-2024-07``, or a 32-digit
  ``uuid4().hex``);
- anything that could still be the start of a Celery UUID and matches no
  known job (``0123abcd``, ``0123abcd-5e``) is refused with the command line's
  words, and the dialog stays open to fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from sluice_tui.terminal_text import inert

UUID_LENGTH = 36
MAX_ID_LENGTH = 255  # the longest id the event adapter keeps (longer ones are bad events)
MAX_LISTED = 10  # known ids counted for a prefix; past this it is "more than 10"
_HEX = frozenset("0123456789abcdefABCDEF")
_DASHES = (8, 13, 18, 23)  # where Celery's UUIDs (str(uuid4())) have their dashes


def is_uuid(text: str) -> bool:
    """Whether ``text`` is a whole id as Celery makes them."""
    return len(text) == UUID_LENGTH and could_start_uuid(text)


def could_start_uuid(text: str) -> bool:
    """Whether some Celery UUID starts with ``text``: hex digits, dashes only
    where a UUID has them."""
    if len(text) > UUID_LENGTH:
        return False
    return all((c == "-") if i in _DASHES else (c in _HEX) for i, c in enumerate(text))


@dataclass(frozen=True)
class GotoTarget:
    """What a typed id means: a job to open, or why nothing opens."""

    job_id: str | None  # None: open nothing
    problem: str = ""  # shown in the dialog when nothing opens


def goto_target(text: str, find: Callable[[str, int], list[str]]) -> GotoTarget:
    """The job ``text`` names, given ``find(prefix, limit)`` over the known ids."""
    text = text.strip()
    if not text:
        return GotoTarget(None)
    shown = inert(text)
    if len(text) > MAX_ID_LENGTH:
        return GotoTarget(None, f"no job id is that long ({MAX_ID_LENGTH} characters at most)")
    matches = find(text, MAX_LISTED + 1)
    if text in matches:
        return GotoTarget(text)
    if len(matches) == 1:
        return GotoTarget(matches[0])
    if matches:
        count = f"more than {MAX_LISTED}" if len(matches) > MAX_LISTED else str(len(matches))
        return GotoTarget(None, f"{count} job ids start with {shown}; type more of the id")
    if could_start_uuid(text) and not is_uuid(text):
        # The start of an id, not an id: revoking it would revoke nothing real.
        return GotoTarget(
            None,
            f"no job id starts with {shown}. A whole id ({UUID_LENGTH} characters) "
            "opens even if never seen.",
        )
    # A whole id never seen: Celery's PENDING, shown as unknown and still revocable.
    return GotoTarget(text)


class GotoScreen(ModalScreen[str | None]):
    """Ask for an id; dismiss with the job id to open, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="goto.cancel"),
    ]

    def __init__(self, find: Callable[[str, int], list[str]]) -> None:
        super().__init__()
        self.find = find

    def compose(self) -> ComposeResult:
        with Vertical(id="goto-box"):
            yield Label("Go to job: type an id or the start of one, then enter")
            yield Input(placeholder="job id", id="goto-input")
            yield Static(id="goto-problem")

    @on(Input.Submitted)
    def _submit(self, event: Input.Submitted) -> None:
        target = goto_target(event.value, self.find)
        if target.job_id is not None or not target.problem:
            self.dismiss(target.job_id)
            return
        problem = self.query_one("#goto-problem", Static)
        problem.update(Text(target.problem))  # Text: no markup read from typed text
        problem.add_class("shown")

    @on(Input.Changed)
    def _edited(self, _event: Input.Changed) -> None:
        self.query_one("#goto-problem", Static).remove_class("shown")

    def action_cancel(self) -> None:
        self.dismiss(None)
