"""The unit half of tests/integration/test_least_privilege.py: the tests that need no server and no app."""

from __future__ import annotations

PASSWORD = "s3cret-Pw"
# The lines README.md gives, for Redis 7 / Valkey: read the contract's keys, write only the switches.
# EVALSHA_RO and SCRIPT LOAD: the switches are read in batches by a script of GETs and PTTLs, and a
# script's commands are held to the same user's rules.
WRITER_ACL = ("on", f">{PASSWORD}", "resetkeys", "~kill:*", "~throttle:*", "%R~budget:*", "%R~spent:*",
              "%R~calls:*", "resetchannels", "-@all", "+scan", "+get", "+pttl", "+evalsha_ro", "+script|load",
              "+set", "+del", "+ping", "+client|setinfo")
READER_ACL = ("on", f">{PASSWORD}", "resetkeys", "%R~kill:*", "%R~throttle:*", "%R~budget:*", "%R~spent:*",
              "%R~calls:*", "resetchannels", "-@all", "+scan", "+get", "+pttl", "+evalsha_ro", "+script|load",
              "+ping", "+client|setinfo")


def test_the_writer_acl_is_the_one_readme_gives() -> None:
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "ACL SETUSER costtop " + " ".join(WRITER_ACL).replace(PASSWORD, "<password>") in readme
    assert "ACL SETUSER costtop-ro " + " ".join(READER_ACL).replace(PASSWORD, "<password>") in readme
