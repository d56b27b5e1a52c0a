"""Making text from the cluster safe to write to a terminal.

Task names, args, results, tracebacks, hostnames and error messages come from
workers and producers we do not control.  A control character written to the
terminal can retitle the window, move the cursor or worse, so every one is
shown as a visible escape, on screen and on the command line alike.
"""

from __future__ import annotations

# C0 controls, DEL and C1 controls, shown as \xNN.  Newline and tab are kept
# only where a block of text is wanted (tracebacks).
_INERT: dict[int, str] = {
    code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))
}
# Lone surrogates (JSON may carry them as \ud800 escapes) cannot be encoded
# for the terminal at all: writing one would crash the screen update.
_INERT.update({code: f"\\u{code:04x}" for code in range(0xD800, 0xE000)})
_INERT_BLOCK = {k: v for k, v in _INERT.items() if k not in (0x09, 0x0A)}
_INERT_LINE = {**_INERT, 0x0A: "\u21b5", 0x09: " "}


def inert(text: object, *, multiline: bool = False) -> str:
    """``text`` with every control character made visible and harmless."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    return text.translate(_INERT_BLOCK if multiline else _INERT_LINE)
