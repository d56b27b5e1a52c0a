"""A footer that fits its width by dropping its least important keys first.

Textual's footer clips at the right edge, which is where the app's own keys
(help, quit) sit: at 80 columns they were the ones lost.  This one keeps the
keys a newcomer needs and lets the rest go, in a fixed order.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Footer

# Textual exports the footer but not its key widget; the module is stable since 0.63.
from textual.widgets._footer import FooterKey

# Kept longest first; a key not listed goes before any listed one.
IMPORTANCE = (
    "help",
    "quit",
    "search",
    "retry",
    "revoke",
    "choose",
    "open_related",
    "close",
    "dismiss",
    "workers",
    "sort",
    "pause",
)


# Keys that change the cluster (or publish a request): --read-only refuses them
# with a notice if pressed, and the footer does not offer them.
WRITES = frozenset({"retry", "revoke", "ask"})


def key_width(key: FooterKey) -> int:
    """Cells one key takes: its key and description, padded as the footer draws them."""
    return cell_len(key.key_display) + cell_len(key.description) + 3


def rank(key: FooterKey) -> int:
    action = key.action.rpartition(".")[2]
    if action == "command_palette":  # help names ctrl+p, so it goes first
        return len(IMPORTANCE) + 1
    return IMPORTANCE.index(action) if action in IMPORTANCE else len(IMPORTANCE)


class FittingFooter(Footer):
    def compose(self) -> ComposeResult:
        widgets = list(super().compose())
        if getattr(self.app, "read_only", False):
            widgets = [
                w
                for w in widgets
                if not (isinstance(w, FooterKey) and w.action.rpartition(".")[2] in WRITES)
            ]
        keys = [w for w in widgets if isinstance(w, FooterKey)]
        room = self.size.width or self.app.size.width
        dropped: set[int] = set()
        by_rank = sorted(keys, key=rank, reverse=True)
        while sum(key_width(k) for k in keys if id(k) not in dropped) > room and by_rank:
            dropped.add(id(by_rank.pop(0)))
        shown: list[Widget] = [w for w in widgets if id(w) not in dropped]
        yield from shown

    _fitted_width = -1

    def on_resize(self, event: events.Resize) -> None:
        if event.size.width != self._fitted_width:
            self._fitted_width = event.size.width
            self.refresh(recompose=True)
