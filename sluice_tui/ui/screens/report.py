"""A titled, scrolling page of one renderable, redrawn from the store while shown."""

from __future__ import annotations

from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from sluice_tui.ui.messages import Host
from sluice_tui.ui.screens.live import LiveScreen
from sluice_tui.ui.widgets.fitting_footer import FittingFooter


class ReportScreen(LiveScreen):
    """Subclasses set ``TITLE`` and say what to show in :meth:`render_report`."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Back", id="report.close"),
    ]
    TITLE = ""

    app: Host  # type: ignore[assignment]  # what this screen reads

    def __init__(self) -> None:
        super().__init__()
        self._shown_key: object = None

    def compose(self) -> ComposeResult:
        yield Static(self.TITLE, classes="report-title")
        with VerticalScroll():
            yield Static(classes="report-body")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.refresh_from_store(changed=True)

    def refresh_from_store(self, changed: bool) -> None:
        key = self.report_key()
        if key is not None and key == self._shown_key:
            return  # nothing shown here moved: no redraw on this tick
        self._shown_key = key
        self.query_one(".report-body", Static).update(self.render_report())

    def report_key(self) -> object:
        """A value that changes whenever the report would; None redraws every tick."""
        return None

    def render_report(self) -> RenderableType:
        raise NotImplementedError

    def action_close(self) -> None:
        self.app.pop_screen()
