"""Flow text made safe to draw: control characters shown, never sent to the terminal.

Flows carry text that whoever sends the traffic chooses: HTTP URLs and DNS names above
all. Textual writes a widget's text to the terminal as it is, so an ESC in a URL would
reach the operator's terminal as an escape sequence (clear the screen, set the window
title, write the clipboard with OSC 52...). Every control character is replaced by one
visible character of the same width (ESC shows as ␛), so column widths stay exact.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"  # �, for C1 controls, which have no control picture

_TABLE: dict[int, str] = {code: chr(0x2400 + code) for code in range(0x20)}  # ␀ ... ␟
_TABLE[0x7F] = "\u2421"  # ␡
_TABLE.update({code: REPLACEMENT for code in range(0x80, 0xA0)})
_TABLE_KEEPING_NEWLINES = {code: text for code, text in _TABLE.items() if code != 0x0A}


def printable(text: str, keep_newlines: bool = False) -> str:
    """`text` with each control character (C0, DEL, C1) replaced by one visible character;
    with keep_newlines, "\\n" stays (for multi-line values that wrap in their own widget)."""
    if text.isprintable():  # the common case, and much cheaper than translate
        return text
    return text.translate(_TABLE_KEEPING_NEWLINES if keep_newlines else _TABLE)
