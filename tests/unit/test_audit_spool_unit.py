"""The unit half of tests/integration/test_audit_spool.py: the tests that need no server and no app."""

from __future__ import annotations

from costtop.sources.audit_spool import default_path


def test_each_database_has_its_own_spool_and_the_password_does_not_name_it() -> None:
    a = default_path("postgresql://u:one@db1:5432/gw", "public.costtop_audit")
    assert a == default_path("postgresql://u:two@db1:5432/gw", "public.costtop_audit")
    assert a != default_path("postgresql://u@db2:5432/gw", "public.costtop_audit")
    assert a != default_path("postgresql://u@db1:5432/gw", "audit.costtop_audit")
    assert "one" not in str(a)
