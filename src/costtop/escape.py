"""One escaping function per output format, all here, so each format has exactly one way out for data.

Names, reasons, operators and error texts come from other programs (the gateway's rows, whoever set
a Redis key). Each output has its own way for such text to do harm, and each gets one function:

- the screen and `snapshot --format table`: `text.clean` for free text (control characters, escape
  sequences, OSC 52 clipboard writes, newlines and invisible characters dropped) and `text.visible_id`
  for identifiers (the same characters shown as `<U+XXXX>` markers, so two ids never look alike).
- `csv_cell()`: `snapshot --format csv`. The same cleaning, and a cell that a spreadsheet would run
  as a formula (starting with `=`, `+`, `-` or `@`) gets a leading `'`; plain numbers stay numbers.
- `markdown()`: `costtop report`. The same cleaning, and every character that could start a link, an
  image, HTML, a code span, emphasis or a table cell is escaped, so data reads as the text it is.

JSON needs none: `json.dumps` escapes what JSON must, and the names there are exact by contract.
"""

from __future__ import annotations

import re

from costtop.text import MAX_TEXT, clean

CSV_TEXT = 1000  # a CSV cell keeps long names whole (the terminal cuts them to fit)
_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_FORMULA_START = ("=", "+", "-", "@")

# Backslash escapes are CommonMark's own; `<`, `>` and `&` as entities, which no renderer reads as HTML.
_MARKDOWN = {"\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "~": "\\~", "[": "\\[", "]": "\\]",
             "|": "\\|", "!": "\\!", "@": "\\@", "<": "&lt;", ">": "&gt;", "&": "&amp;"}
_MARKDOWN_CHARS = re.compile("[" + re.escape("".join(_MARKDOWN)) + "]")
# GitHub links bare URLs by themselves (the autolink extension): `://` and `www.` are broken up.
_BARE_LINK = re.compile(r"://|(?i:\bwww)\.")


def csv_cell(value: object) -> object:
    """For a CSV cell: cleaned text, never a formula; numbers, None and booleans pass as they are."""
    if not isinstance(value, str):
        return value
    if _NUMBER.fullmatch(value):
        return value
    text = clean(value, CSV_TEXT)
    return "'" + text if text.startswith(_FORMULA_START) else text


def markdown(value: object, limit: int = MAX_TEXT) -> str:
    """For Markdown (a paragraph or a table cell): cleaned text with every markup character escaped."""
    text = _MARKDOWN_CHARS.sub(lambda m: _MARKDOWN[m.group()], clean(value, limit))
    return _BARE_LINK.sub(lambda m: "\\:\\/\\/" if m.group() == "://" else m.group()[:-1] + "\\.", text)
