"""The unit half of tests/integration/test_report.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.cli import main


def test_a_bad_day_is_one_line(capsys) -> None:
    assert main(["report", "--day", "yesterday"]) == 2
    assert capsys.readouterr().err == "costtop: report: --day must be a date like 2026-11-21 (got 'yesterday')\n"
