"""A table of ready-made lines: a header, virtual rows and a row cursor.

A DataTable keeps every row and lays each out when it is added, so a screen
whose figures change every tick paid for all its rows, seen or not.  Here the
owner hands over the row keys and a function that builds one row's line; only
the rows on screen are ever built, so 200 rows cost what the visible 50 do.

It looks and behaves like a DataTable with one column and a row cursor (the
same component styles, zebra stripes, hover and keys), so swapping one for the
other changes nothing a user sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PADDING = 1  # blank cells either side of a line, as a DataTable pads its cells


class LineTable(ScrollView, can_focus=True):
    """Rows of text under a fixed header; enter or a second click posts :class:`Chosen`.

    Line 0 of the view is the header; row ``n`` is at virtual line ``n + 1``,
    so the header stays put while the rows scroll under it.
    """

    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .line-table--header {
                background-tint: $foreground 5%;
            }
        }
        &:dark > .line-table--even-row {
            background: $surface-darken-1 40%;
        }
        & > .line-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        &:ansi > .line-table--header {
            background: ansi_bright_blue;
            color: ansi_default;
        }
        & > .line-table--odd-row {
        }
        & > .line-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        & > .line-table--hover {
            background: $block-hover-background;
        }
    }
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "line-table--header",
        "line-table--odd-row",
        "line-table--even-row",
        "line-table--cursor",
        "line-table--hover",
    }

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "edge(0)", "First", show=False),
        Binding("end,ctrl+end", "edge(1)", "Last", show=False),
        Binding("enter", "choose", "Choose", show=False),
    ]

    class Chosen(Message):
        """The user asked to open the row with this key."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.header = Text()
        self.keys: Sequence[str] = ()
        self._line_of: Callable[[int], Text] = lambda _: Text()
        self.cursor = 0
        self._hover: int | None = None  # the row under the mouse, once it moved
        self._strips: dict[tuple, Strip] = {}

    # -- what the owner calls ------------------------------------------------

    def set_rows(self, header: Text, keys: Sequence[str], line_of: Callable[[int], Text]) -> None:
        """Show new rows; the cursor stays on the key it was on, else goes to the top.

        ``line_of(n)`` builds row ``n``'s line; it is called only for rows drawn.
        """
        selected = self.selected_key
        self.header, self.keys, self._line_of = header, keys, line_of
        self._strips.clear()
        position = 0
        if selected is not None:
            try:
                position = keys.index(selected)  # type: ignore[attr-defined]
            except ValueError:
                position = 0
        self._resize_virtual()
        self.refresh()
        self._place(position, changed=True)

    @property
    def selected_key(self) -> str | None:
        return self.keys[self.cursor] if self.cursor < len(self.keys) else None

    @property
    def visible_rows(self) -> int:
        """How many rows fit under the header."""
        return max(1, self.scrollable_content_region.height - 1)

    # -- keys and mouse ------------------------------------------------------

    def action_cursor(self, delta: int) -> None:
        self._by_keys(self.cursor + delta)

    def action_page(self, direction: int) -> None:
        self._by_keys(self.cursor + direction * self.visible_rows)

    def action_edge(self, end: int) -> None:
        self._by_keys(len(self.keys) - 1 if end else 0)

    def action_choose(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Chosen(key))

    def _by_keys(self, position: int) -> None:
        self._set_hover(None)  # as a DataTable does: keys hide the mouse's row
        self._place(position)

    def _row_at(self, event: events.MouseEvent) -> int | None:
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:
            return None
        position = int(self.scroll_y) + offset.y - 1
        return position if position < len(self.keys) else None

    def on_click(self, event: events.Click) -> None:
        position = self._row_at(event)
        if position is None:
            return
        event.stop()
        if position == self.cursor:
            self.action_choose()  # a click on the selected row opens it
        else:
            self._place(position)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        self._set_hover(self._row_at(event))

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(None)

    def _set_hover(self, position: int | None) -> None:
        if position != self._hover:
            self._refresh_row(self._hover)
            self._hover = position
            self._refresh_row(position)

    # -- scrolling -----------------------------------------------------------

    def _place(self, position: int, *, changed: bool = False) -> None:
        """Put the cursor on row ``position`` and scroll so that it is on screen."""
        count = len(self.keys)
        position = max(0, min(position, count - 1)) if count else 0
        previous = self.cursor
        self.cursor = position
        top = int(self.scroll_y)
        rows = self.visible_rows
        if position < top:
            top = position
        elif position >= top + rows:
            top = position - rows + 1
        top = max(0, min(top, count + 1 - self.scrollable_content_region.height))
        if top != int(self.scroll_y):
            # set_scroll skips watch_scroll_y, which is for scrolls the user makes.
            self.set_scroll(None, top)
            if self.show_vertical_scrollbar:
                self.vertical_scrollbar.position = top
            self.refresh()
        elif not changed and previous != position:
            self._refresh_row(previous)
            self._refresh_row(position)

    def _refresh_row(self, position: int | None) -> None:
        if position is not None:
            self.refresh_line(position + 1)

    def _resize_virtual(self) -> None:
        # No width: lines are cut to the view, so no horizontal scrollbar.
        size = Size(0, len(self.keys) + 1)
        if size != self.virtual_size:
            self.virtual_size = size

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """A wheel or scrollbar scroll carries the cursor along if it would leave the view."""
        super().watch_scroll_y(old_value, new_value)
        top = round(new_value)
        if not self.keys:
            return
        if self.cursor < top:
            self._place(top)
        elif self.cursor >= top + self.visible_rows:
            self._place(top + self.visible_rows - 1)

    def on_resize(self, event: events.Resize) -> None:
        self._resize_virtual()
        self._place(self.cursor)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # focus, theme or CSS changed the colours

    # -- drawing -------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("line-table--header")
            return self._strip(self.header, width, style, Style(), ("header", width), -1)
        position = int(self.scroll_y) + y - 1
        if position >= len(self.keys):
            return Strip.blank(width, self.rich_style)
        cursor = position == self.cursor
        hover = position == self._hover
        key = (position, cursor, hover, width, self.has_focus)
        strip = self._strips.get(key)
        if strip is not None:
            return strip
        odd = "line-table--odd-row" if position % 2 else "line-table--even-row"
        row = self.get_component_rich_style(odd)
        over = Style()
        if hover:
            over += self.get_component_rich_style("line-table--hover")
        if cursor:
            over += self.get_component_rich_style("line-table--cursor")
        return self._strip(self._line_of(position), width, row, over, key, position)

    def _strip(
        self, line: Text, width: int, row: Style, over: Style, key: tuple, position: int
    ) -> Strip:
        """One line: padded, in the row's style, the cursor's colours over the text's own."""
        strip = self._strips.get(key)
        if strip is not None:
            return strip
        base = row + over
        # The row rides on the styles, as on a DataTable's cells, and the room
        # right of the line is styled apart: one run for the line, one for
        # the rest, exactly as a DataTable drew it (the snapshots hold to that).
        fill = base + Style.from_meta({"row": position, "out_of_bounds": True})
        base += Style.from_meta({"row": position})
        # The cursor's colours win over the text's (as a DataTable's do by
        # default): a coloured figure on the cursor can be unreadable.
        post = Style.from_color(over.color, over.bgcolor)
        room = max(0, width - 2 * PADDING)
        if line.cell_len > room:
            line = line.copy()
            line.truncate(room, overflow="ellipsis")
        pad = Segment(" " * PADDING, base + post)
        segments = [pad]
        segments += Segment.apply_style(line.render(self.app.console), base, post)
        segments.append(pad)
        segments.append(Segment(" " * max(0, width - line.cell_len - 2 * PADDING), fill))
        strip = Strip(segments).adjust_cell_length(width, fill).simplify()
        if len(self._strips) > 1000:
            self._strips.clear()
        self._strips[key] = strip
        return strip
