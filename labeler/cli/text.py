"""Text that comes from data, files, servers or users, made safe for the terminal: control characters (ESC
sequences that clear the screen or retitle the window, bidi overrides, newlines in a one-line message) shown as
escapes, and Rich markup (`[link=...]`, `[blink]`) shown as written. Every renderer passes such values through
`safe` (Rich output) or `visible` (plain `print`)."""

import re

from rich.markup import escape

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def visible(value) -> str:
    """`value` as text with every control character written as an escape (`\\x1b`, `\\n`, `\\u202e`)."""
    return CONTROL.sub(_escape, str(value))


def safe(value) -> str:
    """`visible(value)` with Rich markup escaped, for a table cell or a `console.print` argument."""
    return escape(visible(value))
