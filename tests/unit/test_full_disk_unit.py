"""The unit half of tests/integration/test_full_disk.py: the tests that need no server and no app."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from costtop.sources.audit_spool import AuditEntry, AuditSpool


def entry(n: int) -> AuditEntry:
    return AuditEntry.new(datetime.now(UTC), operator="o", ssh_client=None, action="set:kill", scope="agent",
                          target=f"agent-{n}", key=f"kill:agent:agent-{n}", reason="why " * (n % 7),
                          ttl_seconds=None, result="set", detail=None)


def test_an_append_after_a_torn_line_starts_on_a_line_of_its_own(tmp_path: Path) -> None:
    spool = AuditSpool(tmp_path / "spool.jsonl")
    first = entry(1)
    spool.append(first)
    with open(spool.path, "a") as f:
        f.write('{"entry_id": "torn-by-a-cr')  # a crash in the middle of a line
    second = entry(2)
    spool.append(second)
    assert spool.pending() == [first, second]
    assert spool.path.with_suffix(".bad").read_text() == '{"entry_id": "torn-by-a-cr\n'
