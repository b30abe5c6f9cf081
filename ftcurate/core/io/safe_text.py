"""User text made safe for the files ftcurate writes: CSV cells that no spreadsheet runs as a
formula, Markdown and HTML that show the text as text, and strict JSON values.

Use these in every generated report (dataset card, decision log, evaluation report):

* :func:`csv_cell` / :func:`csv_row`: a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return gets a leading ``'`` (OWASP's advice against CSV injection); plain numbers
  such as ``-2.5`` and non-strings are left as they are.
* :func:`md_text`: text shown as itself in Markdown (CommonMark / GitHub), also inside a table
  cell: one line, HTML and Markdown syntax escaped.
* :func:`md_code`: text as an inline code span (file names, settings), whatever backticks or
  ``|`` it holds.
* :func:`html_text`: text for HTML.
* :func:`json_safe`: NaN and Infinity (which strict JSON readers reject) replaced by ``None``.
"""

from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable

__all__ = ["csv_cell", "csv_row", "md_text", "md_code", "html_text", "json_safe", "one_line"]

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_NEWLINES = re.compile(r"[\r\n\u2028\u2029\x85\x0b\x0c]+")
# Characters with inline meaning in CommonMark/GFM (emphasis, code, links, images, strikethrough,
# table cells, escapes). < > & become entities instead.
_MD_INLINE = re.compile(r"([\\`*_\[\]|~!])")
# At the start of a line these open a block (heading, quote, list, setext underline).
_MD_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+[.)])")


def csv_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text a spreadsheet would run as a formula gets a leading ``'``."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_row(values: Iterable[Any]) -> list:
    return [csv_cell(v) for v in values]


def one_line(text: Any) -> str:
    """``text`` as one line: line breaks become spaces."""
    return _NEWLINES.sub(" ", "" if text is None else str(text))


def html_text(text: Any) -> str:
    """``text`` escaped for HTML (element content or a quoted attribute)."""
    return html.escape("" if text is None else str(text), quote=True)


def md_text(text: Any) -> str:
    """``text`` shown as itself in Markdown, on one line (safe in a table cell, a list item or a
    heading): no heading, link, image, HTML or emphasis can come out of it."""
    s = one_line(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    s = _MD_INLINE.sub(r"\\\1", s)
    return _MD_BLOCK_START.sub(lambda m: m.group(1) + _escape_block(m.group(2)), s, count=1)


def _escape_block(marker: str) -> str:
    if marker[0].isdigit():  # "1." -> "1\."
        return marker[:-1] + "\\" + marker[-1]
    return "\\" + marker


def md_code(text: Any, table: bool = False) -> str:
    """``text`` as a Markdown inline code span, on one line; the fence is longer than any run of
    backticks inside. ``table=True`` escapes ``|`` as GitHub tables need (GFM reads ``\\|`` in a
    cell's code span as ``|``)."""
    s = one_line(text)
    if not s:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    if s.startswith("`") or s.endswith("`") or (s.startswith(" ") and s.endswith(" ") and s.strip()):
        s = f" {s} "
    if table:
        s = s.replace("|", "\\|")
    return f"{fence}{s}{fence}"


def json_safe(obj: Any) -> tuple[Any, int]:
    """``(obj, n)``: ``obj`` with every NaN / Infinity float replaced by ``None``, and how many
    were replaced. Containers are copied only when something inside changes."""
    if isinstance(obj, float):
        return (obj, 0) if math.isfinite(obj) else (None, 1)
    if isinstance(obj, dict):
        total, out = 0, {}
        for k, v in obj.items():
            out[k], n = json_safe(v)
            total += n
        return (out if total else obj), total
    if isinstance(obj, (list, tuple)):
        total, items = 0, []
        for v in obj:
            v2, n = json_safe(v)
            items.append(v2)
            total += n
        return ((type(obj)(items) if isinstance(obj, tuple) else items) if total else obj), total
    return obj, 0
