"""One line of Asterisk's config dialect: how it reads, how to rewrite it without touching the rest.

Lines are `str` decoded with `surrogateescape` (every byte survives) and without their `\\n`; a
CRLF line keeps its `\\r`. The reader (ispbx.pjsip.parser) decodes with `replace`, so anything
compared with what it reads goes through `reader_text` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ispbx.pjsip.parser import strip_comments

WHITESPACE = " \t\n\v\f\r"  # what the reader trims (C isspace)
BOM = "\ufeff"
MAX_LINE_BYTES = 8190  # longer lines are skipped by Asterisk
_OPENER = re.compile(r";--(?!-)")
_OPTION = re.compile(
    r"(?P<lead>[ \t\v\f\r]*\\?)(?P<key>[^=]*?)(?P<pre>[ \t\v\f\r]*)(?P<op>\+=|=>?)"
    r"(?P<post>[ \t\v\f\r]*)(?P<value>.*?)(?P<trail>[ \t\v\f\r]*)",
    re.S,
)


def reader_text(text: str) -> str:
    """`text` as the reader sees it: undecodable bytes become U+FFFD."""
    if text.isascii():
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def is_plain(raw: str) -> bool:
    """True when the line cannot open or close a `;-- --;` block comment and has no NUL.

    Such a line leaves the comment depth as it found it, so it can be rewritten, removed or
    have lines inserted after it without changing how any other line reads. Conservative: an
    escaped `\\;--` also counts as not plain."""
    return "\0" not in raw and "--;" not in raw and _OPENER.search(raw) is None


def plain_content(raw: str) -> str:
    """What the reader keeps of a plain line read at comment depth 0, trimmed."""
    kept, _ = strip_comments(reader_text(raw), 0)
    return (kept or "").strip(WHITESPACE)


def line_bytes(raw: str) -> int:
    return len(raw.encode("utf-8", "surrogateescape"))


def comment_start(body: str) -> int | None:
    """Index in `body` of the `;` that starts its line comment (plain lines only)."""
    removed = pos = 0
    buf = body
    while (i := buf.find(";", pos)) >= 0:
        if i > pos and buf[i - 1] == "\\":
            buf = buf[: i - 1] + buf[i:]
            pos = i
            removed += 1
        else:
            return i + removed
    return None


def escape_value(value: str) -> str:
    """A value as written in the file: `;` would start a comment, `\\;` is a literal one."""
    return value.replace(";", "\\;")


@dataclass(frozen=True)
class OptionParts:
    """A plain option line cut into the pieces a rewrite keeps or replaces."""

    lead: str  # BOM, indentation and a leading backslash escape, as written
    key: str
    pre: str  # white space before the operator
    op: str  # "=", "=>" or "+="
    post: str  # white space after the operator
    value: str  # as written (escapes included)
    trail: str  # white space between the value and the comment
    comment: str  # from the comment's `;` to the end of the line
    eol: str  # "\r" for a CRLF line

    def with_value(self, value: str) -> str:
        """The line with `value` (not yet escaped) in place of the old one; the rest kept."""
        written = escape_value(value)
        op = "=" if self.op == "+=" else self.op
        post = self.post if self.value else (self.post or self.pre)
        if op == "=" and not post and written.startswith(">"):
            post = " "  # `key=>x` would read as the `=>` operator
        trail = self.trail
        if self.comment and not trail and (not self.value or written.endswith(("-", "\\"))):
            trail = " "  # `x--;` would close a block comment, `x\\;` escape the comment
        return f"{self.lead}{self.key}{self.pre}{op}{post}{written}{trail}{self.comment}{self.eol}"

    def new_line(self, key: str, value: str, eol: str) -> str:
        """Another option line in this line's layout (indentation, spacing, operator)."""
        op = "=" if self.op == "+=" else self.op
        indent = self.lead.lstrip(BOM).rstrip("\\")
        post = self.post or ("" if not self.pre else " ")
        return OptionParts(indent, key, self.pre, op, post, "", "", "", eol).with_value(value)


DEFAULT_STYLE = OptionParts("", "", " ", "=", " ", "", "", "", "")


def split_option(raw: str, *, bom: bool = False) -> OptionParts | None:
    """Cut a plain option line; None when it has no operator. `bom`: the line starts with a
    byte-order mark that the reader drops (first line of what it reads)."""
    eol = "\r" if raw.endswith("\r") else ""
    body = raw[:-1] if eol else raw
    mark = BOM if bom and body.startswith(BOM) else ""
    body = body[len(mark) :]
    start = comment_start(body)
    code, comment = (body, "") if start is None else (body[:start], body[start:])
    match = _OPTION.fullmatch(code)
    if match is None:
        return None
    return OptionParts(
        lead=mark + match["lead"],
        key=match["key"],
        pre=match["pre"],
        op=match["op"],
        post=match["post"],
        value=match["value"],
        trail=match["trail"],
        comment=comment,
        eol=eol,
    )


def eol_of(raw: str) -> str:
    return "\r" if raw.endswith("\r") else ""


def is_blank(raw: str) -> bool:
    return not raw.strip(WHITESPACE + BOM)


def is_comment_line(raw: str) -> bool:
    """A plain line that holds only a `;` comment (no block comment)."""
    return is_plain(raw) and raw.strip(WHITESPACE + BOM).startswith(";")
