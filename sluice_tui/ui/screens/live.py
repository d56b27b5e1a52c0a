"""Screens that the app's timer refreshes from the store."""

from __future__ import annotations

from textual.screen import Screen


class LiveScreen(Screen):
    """The tick refreshes a live screen only while it is mounted.

    A screen pushed between two ticks exists before its widgets do, and one
    being torn down (on quit) outlives them; neither is refreshed.
    """

    live = False

    def on_mount(self) -> None:
        # Textual calls this as well as a subclass's own on_mount.
        self.live = True

    def on_unmount(self) -> None:
        self.live = False

    def refresh_from_store(self, changed: bool) -> None:
        """Show what changed in the store; ``changed`` says whether the job index moved."""
