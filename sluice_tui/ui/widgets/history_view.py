"""A job's history, attempt by attempt, drawn with Textual's line API.

The detail screen scrolls as one page, and this widget is its last part: it
is as tall as the history, but the compositor asks it only for the lines on
screen, so a job with 30 000 entries draws what one with 30 does.

A change to the job mostly appends to the story (a new event of the running
attempt): then only the new entries are laid out, and lines already drawn
come from a cache.  What can reorder the story (a late event, a task-sent,
an error now known to have ended an attempt) lays out again from the first
attempt it touches.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import ClassVar, NamedTuple

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from sluice_tui.model.job import AttemptError, JobSnapshot, Transition
from sluice_tui.ui.text import clock_time, duration, full_time, inert, state_style
from sluice_tui.ui.widgets.job_table import fit, parse_style

# Column widths: number, time, time since the entry above, state.
NUMBER, TIME, SHORT_TIME, SINCE, STATE = 5, 23, 12, 8, 9
INDENT = NUMBER + 1  # headings, tracebacks and notes start under the time
MIN_ERROR = 24  # narrower than this, an error goes on lines of its own below its entry
MIN_HOST = 10
MAX_EVENT = 20  # Celery's own are shorter; a custom one is cut rather than push the rest
CACHE_LIMIT = 4000


# -- the story: what is shown, in order, whatever the width ---------------------


class Entry(NamedTuple):
    number: int
    transition: Transition
    previous: float | None  # the time of the entry above, for the "+" column
    error: str  # the error that ended the attempt, on the entry that brought it


class Heading(NamedTuple):
    attempt: int


class Traceback(NamedTuple):
    text: str


class Note(NamedTuple):
    text: str
    style: str


Item = Entry | Heading | Traceback | Note


def group_attempts(entries: Iterable[Transition]) -> list[tuple[int, list[Transition]]]:
    """Entries by attempt, task-sent first in each: as ``JobSnapshot.attempts``."""
    grouped: dict[int, list[Transition]] = {}
    for t in entries:
        grouped.setdefault(t.attempt, []).append(t)
    # sorted() is stable: entries keep their time order apart from the sending.
    return [(n, sorted(grouped[n], key=lambda t: not t.sending)) for n in sorted(grouped)]


def is_marker(t: Transition) -> bool:
    """Whether ``t`` stands for a stretch of the history that was not kept."""
    return getattr(t, "marker", False)


def is_progress(t: Transition) -> bool:
    """Whether ``t`` is an event the task sent itself (its type and fields, in one text)."""
    return getattr(t, "progress", False)


def marker_text(omitted: object | None, marker: Transition) -> str:
    """One line for a stretch of the history that was not kept."""
    if omitted is None:
        return f"\u2026 entries not kept, up to {clock_time(marker.timestamp)}"
    first, last = omitted.first_attempt, omitted.last_attempt  # type: ignore[attr-defined]
    which = f"attempt {first:,}" if first == last else f"attempts {first:,}-{last:,}"
    # The ends of that stretch may keep an entry or two (a re-send stamped before
    # the task-retried that precedes it): say entries, not whole attempts.
    text = f"\u2026 {omitted.events:,} events of {which} not kept"  # type: ignore[attr-defined]
    if omitted.actions:  # type: ignore[attr-defined]
        text += f", {omitted.actions:,} actions"  # type: ignore[attr-defined]
    start, end = omitted.start, omitted.end  # type: ignore[attr-defined]
    text += f", {clock_time(start)} to {clock_time(end)}"
    by_state = omitted.by_state  # type: ignore[attr-defined]
    if by_state:
        counts = sorted(by_state.items(), key=lambda item: -item[1])
        text += " (" + ", ".join(f"{s.value} {n:,}" for s, n in counts) + ")"
    if omitted.late:  # type: ignore[attr-defined]
        text += f"; {omitted.late:,} late events for them counted only"  # type: ignore[attr-defined]
    return text


class _Mark(NamedTuple):
    """Where an attempt starts: enough to lay out the story again from it."""

    item: int  # index in the story
    first: int  # index in the history of its earliest entry
    number: int  # entries numbered before it
    previous: float | None  # the time of the entry before it


# -- lines: the story laid out at a width ------------------------------------


class Geometry(NamedTuple):
    time: int
    event: int
    host: int
    error_x: int  # where the error column starts
    error: int  # its width; 0: errors go below their entry
    width: int

    @property
    def event_x(self) -> int:
        """Where the event column starts: a task's own event runs from there to the edge."""
        return NUMBER + 1 + self.time + 1 + SINCE + 1 + STATE + 1


def geometry(width: int, event: int, host: int) -> Geometry:
    """Column widths for ``width`` cells: the date goes, then the host narrows, before errors."""
    time = TIME
    fixed = NUMBER + 1 + time + 1 + SINCE + 1 + STATE + 1 + event + 1 + host + 1
    if width - fixed < MIN_ERROR:
        time = SHORT_TIME
        fixed -= TIME - SHORT_TIME
    if fixed > width:  # the host column gives way, down to a point
        cut = min(fixed - width, host - MIN_HOST)
        if cut > 0:
            host -= cut
            fixed -= cut
    room = width - fixed
    return Geometry(time, event, host, fixed, room if room >= MIN_ERROR else 0, width)


def wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of ``width`` cells, broken at spaces; a longer word is folded."""
    if width <= 0:
        return [text]
    lines = Text(text).wrap(_MEASURE, width, overflow="fold")
    return [line.plain.rstrip() for line in lines] or [""]


_MEASURE = Console(width=200, color_system=None, file=None, legacy_windows=False)


class HistoryView(Widget):
    """The history of one job, only the lines on screen rendered."""

    DEFAULT_CSS = """
    HistoryView {
        height: auto;
    }
    HistoryView > .history-view--header {
        text-style: bold;
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {"history-view--header"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._history: tuple[Transition, ...] = ()
        self._errors: dict[int, AttemptError] = {}
        self._omitted: object | None = None
        self._story: list[Item] = []
        self._marks: dict[int, _Mark] = {}
        self._count = 0  # entries numbered so far
        self._last_time: float | None = None
        self._headed = False
        self._columns = (0, 0)  # widest event and host
        self._lines: list[tuple] = []
        self._item_line: list[int] = []  # first line of each story item
        self._geometry: Geometry | None = None
        self._cache: dict[tuple, Strip] = {}
        self._tracebacks: dict[tuple[str, int, bool], list[Strip]] = {}
        self.lines_rendered = 0  # strips built rather than taken from the cache

    # -- what the screen calls ---------------------------------------------

    def show(self, job: JobSnapshot) -> None:
        """Show ``job``'s history, laying out only what changed since the last call."""
        old, new = self._history, job.history
        errors = {error.attempt: error for error in job.attempt_errors}
        omitted = getattr(job, "omitted", None)
        start = self._unchanged_from(old, new, errors, omitted)
        self._history, self._errors, self._omitted = new, errors, omitted
        if start is None:
            self._rebuild()
        elif start > 0:
            self._append(new[len(old) :])
        elif start < 0:
            self._relayout_from(-start)
        else:
            return  # nothing changed: no layout, no repaint
        self.refresh(layout=True)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    # -- keeping the story up to date -------------------------------------

    def _unchanged_from(
        self,
        old: tuple[Transition, ...],
        new: tuple[Transition, ...],
        errors: dict[int, AttemptError],
        omitted: object | None,
    ) -> int | None:
        """How the story can be brought up to date.

        None: from scratch; 0: nothing to do; 1: append the new entries;
        -n: lay out again from attempt n.
        """
        if not old or len(new) < len(old) or new[: len(old)] != old or omitted != self._omitted:
            return None
        suffix = new[len(old) :]
        if not suffix and errors == self._errors:
            return 0
        if not self._headed and any(t.attempt != 1 for t in suffix):
            return None  # attempt headings appear
        last = max(self._marks)
        # Attempts already shown that change other than by a new last entry.
        redo = [
            a for a in errors.keys() | self._errors.keys() if errors.get(a) != self._errors.get(a)
        ]
        redo += [
            t.attempt
            for t in suffix
            if t.attempt < last or (t.attempt == last and (t.sending or is_marker(t)))
        ]
        if any(t.attempt == last for t in suffix) and last in self._errors:
            redo.append(last)  # its error's traceback follows its last entry
        redo = [a for a in redo if a <= last]
        if redo:
            first = min(redo)
            return -first if first in self._marks else None
        return 1

    def _rebuild(self) -> None:
        self._story, self._marks, self._item_line, self._lines = [], {}, [], []
        self._count, self._last_time = 0, None
        self._cache.clear()
        history = self._history
        self._headed = any(t.attempt != 1 for t in history)
        self._columns = (0, 0)
        self._widen(history)
        if not history:
            self._story.append(Note("no events yet", "grey50"))
        else:
            self._emit(group_attempts(history), first_index(history))
        self._geometry = None  # laid out on the next render, at the widget's width

    def _append(self, suffix: Sequence[Transition]) -> None:
        last = max(self._marks)
        widened = self._widen(suffix)
        at = len(self._story)
        for t in suffix:
            if t.attempt == last:
                self._story.append(self._entry(t))
        later = [t for t in suffix if t.attempt > last]
        if later:
            base = len(self._history) - len(suffix)
            self._emit(group_attempts(later), first_index(later, base))
        self._lay_out_new(at, widened)

    def _relayout_from(self, attempt: int) -> None:
        mark = self._marks[attempt]
        history = self._history
        first = min(m.first for a, m in self._marks.items() if a >= attempt)
        entries = [t for t in history[first:] if t.attempt >= attempt]
        widened = self._widen(entries)
        del self._story[mark.item :]
        self._marks = {a: m for a, m in self._marks.items() if a < attempt}
        self._count, self._last_time = mark.number, mark.previous
        self._emit(group_attempts(entries), first_index(entries, first, history))
        if self._geometry is not None and not widened:
            cut = (
                self._item_line[mark.item] if mark.item < len(self._item_line) else len(self._lines)
            )
            del self._lines[cut:]
            del self._item_line[mark.item :]
        self._lay_out_new(mark.item, widened)

    def _widen(self, entries: Iterable[Transition]) -> bool:
        """Grow the event and host columns for ``entries``; whether they grew."""
        shown = [t for t in entries if not is_marker(t) and not is_progress(t)]
        # Few distinct names among thousands of entries: measure each once.
        event = max([self._columns[0], *map(len, {t.event for t in shown})])
        event = min(event, MAX_EVENT)
        host = max([self._columns[1], *(len(inert(h)) for h in {t.hostname for t in shown})])
        grew = (event, host) != self._columns
        self._columns = (event, host)
        return grew

    def _entry(self, t: Transition) -> Item:
        if is_marker(t):
            # What follows is dated from the end of the stretch, not across it.
            self._last_time = t.timestamp
            return Note(marker_text(self._omitted, t), "italic")
        self._count += 1
        previous, self._last_time = self._last_time, t.timestamp
        error = self._errors.get(t.attempt)
        ended = error is not None and t.timestamp == error.timestamp and not t.action
        return Entry(self._count, t, previous, inert(error.exception) if ended and error else "")

    def _emit(self, attempts: list[tuple[int, list[Transition]]], firsts: dict[int, int]) -> None:
        story = self._story
        for number, entries in attempts:
            self._marks[number] = _Mark(len(story), firsts[number], self._count, self._last_time)
            if self._headed and not all(is_marker(t) for t in entries):
                story.append(Heading(number))
            for t in entries:
                story.append(self._entry(t))
            error = self._errors.get(number)
            if error is not None and error.traceback:
                story.append(Traceback(inert(error.traceback, multiline=True).rstrip()))

    # -- lines ----------------------------------------------------------------

    def _lay_out(self, width: int) -> None:
        self._geometry = geometry(width, max(5, self._columns[0]), max(4, self._columns[1]))
        self._lines, self._item_line = [("header",)], []
        self._cache.clear()
        self._lay_out_items(0)

    def _lay_out_new(self, at: int, widened: bool) -> None:
        if self._geometry is None:
            return
        if widened:
            self._lay_out(self._geometry.width)
        else:
            self._lay_out_items(at)

    def _lay_out_items(self, start: int) -> None:
        geo = self._geometry
        assert geo is not None
        lines, starts = self._lines, self._item_line
        dark = self.app.current_theme.dark if self.is_attached else True
        for item in self._story[start:]:
            starts.append(len(lines))
            if isinstance(item, Entry) and is_progress(item.transition):
                parts = wrap(inert(item.transition.event), geo.width - geo.event_x)
                lines.append(("row", item, parts[0]))
                lines += [("more", geo.event_x, part, ITALIC) for part in parts[1:]]
            elif isinstance(item, Entry):
                if geo.error:
                    parts = wrap(item.error, geo.error) if item.error else [""]
                    lines.append(("row", item, parts[0]))
                    lines += [("more", geo.error_x, part, RED) for part in parts[1:]]
                else:
                    lines.append(("row", item, ""))
                    if item.error:
                        parts = wrap(item.error, geo.width - INDENT)
                        lines += [("more", INDENT, part, RED) for part in parts]
            elif isinstance(item, Heading):
                lines.append(("heading", item.attempt))
            elif isinstance(item, Traceback):
                count = len(self._traceback_lines(item.text, geo.width - INDENT, dark))
                lines += [("traceback", item.text, n) for n in range(count)]
            else:
                for part in wrap(item.text, geo.width - INDENT):
                    lines.append(("note", part, item.style))

    def _traceback_lines(self, text: str, width: int, dark: bool) -> list[Strip]:
        key = (text, width, dark)
        strips = self._tracebacks.get(key)
        if strips is None:
            syntax = Syntax(
                text, "pytb", theme="ansi_dark", word_wrap=True, background_color="default"
            )
            console = self.app.console if self.is_attached else _MEASURE
            options = console.options.update_width(max(1, width))
            strips = [Strip(line) for line in console.render_lines(syntax, options, pad=False)]
            if len(self._tracebacks) > 200:
                self._tracebacks.clear()
            self._tracebacks[key] = strips
        return strips

    # -- Textual's side -----------------------------------------------------

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        self._ensure_layout(width)
        return len(self._lines)

    def _ensure_layout(self, width: int) -> None:
        if self._geometry is None or self._geometry.width != width:
            self._lay_out(width)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        self._ensure_layout(width)
        if y >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        dark = self.app.current_theme.dark
        line = self._lines[y]
        key = (line, dark)
        strip = self._cache.get(key)
        if strip is None:
            self.lines_rendered += 1
            strip = self._render(line, dark).adjust_cell_length(width, self.rich_style)
            if len(self._cache) > CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _render(self, line: tuple, dark: bool) -> Strip:
        geo = self._geometry
        assert geo is not None
        base = self.rich_style
        kind = line[0]
        if kind == "row":
            return Strip(self._row(line[1], line[2], geo, base, dark))
        if kind == "header":
            style = base + self.get_component_rich_style("history-view--header")
            texts = ("#", "time", "+", "state", "event", "host")
            return Strip(_cells(texts, geo, [style] * 6))
        if kind == "heading":
            return Strip([Segment(" " * INDENT, base), Segment(f"attempt {line[1]}", base + BOLD)])
        if kind == "more":  # an error or a task's own event, wrapped
            return Strip([Segment(" " * line[1], base), Segment(line[2], base + line[3])])
        if kind == "traceback":
            strips = self._traceback_lines(line[1], geo.width - INDENT, dark)
            return Strip.join([Strip([Segment(" " * INDENT, base)]), strips[line[2]]])
        return Strip([Segment(" " * INDENT, base), Segment(line[1], base + parse_style(line[2]))])

    def _row(self, entry: Entry, error: str, geo: Geometry, base: Style, dark: bool) -> list:
        t = entry.transition
        since = "" if entry.previous is None else _since(t.timestamp - entry.previous)
        when = full_time(t.timestamp) if geo.time == TIME else _short_time(t.timestamp)
        if t.action or is_progress(t):
            # Something sluice-tui did, or the task said: no state of the job's own.
            state = "action" if t.action else "progress"
            state_style_ = base + parse_style("italic grey50")
            event_style = base + ITALIC
        else:
            state, state_style_ = t.state.value, base + parse_style(state_style(t.state, dark))
            event_style = base
        texts = (str(entry.number), when, since, state, inert(t.event), inert(t.hostname))
        styles = [base, base, base, state_style_, event_style, base]
        if is_progress(t):  # its text, laid out already, in place of event and host
            return [*_cells(texts[:4], geo, styles), Segment(error, event_style)]
        segments = _cells(texts, geo, styles)
        if error:
            segments.append(Segment(error, base + RED))
        return segments


BOLD, ITALIC, RED = Style(bold=True), Style(italic=True), Style(color="red")
HOST = 5  # the host's place among a row's cells


def _cells(texts: Sequence[str], geo: Geometry, styles: list[Style]) -> list[Segment]:
    widths = (NUMBER, geo.time, SINCE, STATE, geo.event, geo.host)
    right = (True, False, True, False, False, False)
    segments: list[Segment] = []
    # strict=False: a task's own event fills only the first four cells.
    for n, (text, width, align, style) in enumerate(
        zip(texts, widths, right, styles, strict=False)
    ):
        cut = "middle" if n == HOST else "end"  # pod-style hostnames differ at both ends
        segments.append(Segment(fit(text, width, right=align, cut=cut), style))
        segments.append(Segment(" ", styles[0]))
    return segments


def first_index(
    entries: Sequence[Transition], base: int = 0, history: Sequence[Transition] | None = None
) -> dict[int, int]:
    """Each attempt's earliest position in the history (``entries`` start at ``base``)."""
    firsts: dict[int, int] = {}
    if history is None:
        for n, t in enumerate(entries):
            firsts.setdefault(t.attempt, base + n)
        return firsts
    # ``entries`` is a filtered tail of ``history``: find their positions there.
    attempts = {t.attempt for t in entries}
    for n in range(base, len(history)):
        a = history[n].attempt
        if a in attempts:
            firsts.setdefault(a, n)
    return firsts


def _since(seconds: float) -> str:
    # Negative when the clocks of two hosts disagree with the story's order.
    shown = duration(seconds)
    return shown if shown.startswith("-") else "+" + shown


def _short_time(timestamp: float) -> str:
    return clock_time(timestamp) + f"{timestamp % 1:.3f}"[1:]
