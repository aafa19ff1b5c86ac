"""The unit half of tests/integration/test_writer.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.sources.writer import Operator


def test_operator_current(monkeypatch) -> None:
    monkeypatch.setenv("SSH_CLIENT", "10.1.2.3 51234 22")
    monkeypatch.setattr("getpass.getuser", lambda: "ad:am\x1b")
    op = Operator.current()
    assert op == Operator("ad_am", "10.1.2.3")
    monkeypatch.delenv("SSH_CLIENT")
    assert Operator.current().ssh_client is None
    assert (Operator.current().via, Operator.current().client_addr) == (None, None)


def test_operator_current_through_serve(monkeypatch) -> None:
    """`costtop serve` starts each session's process with these two set (serve.py)."""
    monkeypatch.delenv("SSH_CLIENT", raising=False)
    monkeypatch.setenv("COSTTOP_VIA", "web")
    monkeypatch.setenv("COSTTOP_CLIENT", "::1\x1b")
    op = Operator.current()
    assert (op.via, op.client_addr) == ("web", "::1")
