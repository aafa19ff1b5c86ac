"""The one escaping function per output format (costtop/escape.py), on the cases the CLI tests do not reach."""

from __future__ import annotations

from costtop.escape import csv_cell, markdown
from costtop.text import clean


def test_csv_cells_are_never_formulas_and_numbers_stay_numbers() -> None:
    assert [csv_cell(v) for v in ("-0.5", "1E+5", "12", None, 3, True)] == ["-0.5", "1E+5", "12", None, 3, True]
    assert [csv_cell(v) for v in ("-x", "\t=1+1", "@a", "+1", "a=b")] == ["'-x", "'=1+1", "'@a", "'+1", "a=b"]


def test_markdown_escapes_what_could_become_markup_and_leaves_plain_names() -> None:
    assert markdown("gpt-5 kill:agent:alpha 10.0.0.7 (x)") == "gpt-5 kill:agent:alpha 10.0.0.7 (x)"
    assert markdown("a\\|b") == "a\\\\\\|b"  # a backslash of the data cannot undo the pipe's escape
    assert markdown("www.evil.example &lt;") == "www\\.evil.example &amp;lt;"
    assert markdown("mail@evil.example") == "mail\\@evil.example"
    assert markdown("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"


def test_terminal_text_is_one_printable_line() -> None:
    assert clean("a\x1b]0;title\x07b\nc\u202e", 10) == "a]0;titlebc"[:9] + "…"
