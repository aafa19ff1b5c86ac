"""The fallback file as a health signal: the reader counts lines and finds the oldest incrementally,
every odd line is counted, never raised; the engine alerts past the drain limit; the header shows it
in a running app fed by a real gateway whose Postgres refuses rows."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from costtop.config import ConfigError, Thresholds, load_settings
from costtop.engine.engine import Engine
from costtop.gateway import Call, append_lines, claim_batches, row_of
from costtop.sources.fallback_file import MAX_LINE_BYTES, FallbackReader, encode_row
from costtop.sources.records import FallbackState

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def line(when: datetime, agent: str = "a") -> bytes:
    return encode_row(row_of(Call(agent, "llm", 10, cost_usd=Decimal("0.5"), created_at=when), when))


def test_counts_lines_and_the_oldest_reading_only_what_was_appended(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    reader = FallbackReader(str(path))
    assert reader.read() == FallbackState(str(path))  # no file: nothing waits
    append_lines(path, [line(T0 + timedelta(minutes=5)), line(T0), line(T0 + timedelta(minutes=1))])
    state = reader.read()
    assert (state.files, state.lines, state.malformed, state.oldest) == (1, 3, 0, T0)
    read = reader.bytes_read
    assert reader.read() == state and reader.bytes_read == read  # unchanged: one stat, no bytes
    append_lines(path, [line(T0 - timedelta(hours=2))])
    state = reader.read()
    assert state.lines == 4 and state.oldest == T0 - timedelta(hours=2)
    assert reader.bytes_read - read == len(line(T0))  # only the appended line was read


def test_malformed_lines_are_counted_and_a_partial_line_waits(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    path.write_bytes(line(T0) + b"not json\n" + b"\xff\xfe\x00junk\n" + b"[1, 2]\n"
                     + b'{"agent_id": "no time"}\n' + b'{"created_at": "yesterday"}\n' + b"\n"
                     + b'{"created_at": "2026-11-30T11:00:00+00:00", "agent_id": "half')
    reader = FallbackReader(str(path))
    state = reader.read()
    assert (state.lines, state.malformed, state.oldest) == (6, 5, T0)
    with open(path, "ab") as handle:  # the writer finishes its line
        handle.write(b'"}\n')
    state = reader.read()
    assert (state.lines, state.malformed, state.oldest) == (7, 5, T0 - timedelta(hours=1))


def test_a_ten_megabyte_line_is_one_malformed_line_read_within_the_budget(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    path.write_bytes(line(T0) + b"x" * (10 << 20) + b"\n" + line(T0 - timedelta(minutes=1)))
    reader = FallbackReader(str(path), budget=4 << 20)
    first = reader.read()
    assert not first.caught_up and reader.bytes_read <= 4 << 20
    state = first
    for _ in range(5):
        state = reader.read()
        if state.caught_up:
            break
    assert (state.lines, state.malformed, state.oldest) == (3, 1, T0 - timedelta(minutes=1))
    assert MAX_LINE_BYTES < 10 << 20


def test_a_file_truncated_or_replaced_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    append_lines(path, [line(T0), line(T0), line(T0)])
    reader = FallbackReader(str(path))
    assert reader.read().lines == 3
    with open(path, "r+b") as handle:
        handle.truncate(0)
    assert reader.read().lines == 0
    append_lines(path, [line(T0 + timedelta(minutes=1))])
    assert reader.read().lines == 1
    other = tmp_path / "new.jsonl"
    append_lines(other, [line(T0), line(T0)])
    os.replace(other, path)  # a new inode under the same name
    state = reader.read()
    assert (state.lines, state.oldest) == (2, T0)


def test_a_batch_being_drained_is_counted_once_under_a_glob(tmp_path: Path) -> None:
    path = tmp_path / "fb.jsonl"
    append_lines(path, [line(T0), line(T0)])
    reader = FallbackReader(str(path) + "*")
    assert reader.read().lines == 2
    read = reader.bytes_read
    claim_batches(path)  # renamed to fb.jsonl.draining-<batch>: the same inode, not re-read
    append_lines(path, [line(T0)])
    state = reader.read()
    assert (state.files, state.lines) == (2, 3)
    assert reader.bytes_read - read == len(line(T0))


def test_what_cannot_be_read_is_said_never_raised(tmp_path: Path) -> None:
    (tmp_path / "fb.jsonl.d").mkdir()  # a directory the glob matches
    append_lines(tmp_path / "fb.jsonl", [line(T0)])
    state = FallbackReader(str(tmp_path / "fb.jsonl*")).read()
    assert state.lines == 1 and state.error is not None and "not a file" in state.error
    missing = FallbackReader(str(tmp_path / "nowhere" / "fb.jsonl")).read()
    assert missing.lines == 0 and missing.error is not None
    if os.geteuid() != 0:  # root reads any file whatever its mode
        unreadable = tmp_path / "locked.jsonl"
        append_lines(unreadable, [line(T0)])
        unreadable.chmod(0)
        state = FallbackReader(str(unreadable)).read()
        assert state.lines == 0 and state.error is not None


def test_the_engine_alerts_past_the_drain_limit_and_not_before() -> None:
    engine = Engine(Thresholds(fallback_drain_seconds=3600))
    assert engine.snapshot(T0, None).fallback is None  # not watched
    engine.note_fallback(FallbackState("fb", files=1, lines=4, malformed=1, oldest=T0))
    snap = engine.snapshot(T0 + timedelta(minutes=59), None)
    assert snap.fallback is not None and snap.fallback.oldest_age_seconds == 59 * 60
    assert not snap.fallback.overdue and not [a for a in snap.alerts if a.key == "fallback:file"]
    snap = engine.snapshot(T0 + timedelta(minutes=61), None)
    alert = next(a for a in snap.alerts if a.key == "fallback:file")
    assert snap.fallback is not None and snap.fallback.overdue
    assert alert.figure == "4 lines waiting, the oldest 61 min old"
    engine.note_fallback(FallbackState("fb", error="cannot list /x"))  # unknown never cries wolf
    snap = engine.snapshot(T0 + timedelta(hours=5), None)
    assert snap.fallback is not None and not snap.fallback.known
    assert not [a for a in snap.alerts if a.key == "fallback:file"]


def test_the_setting_comes_from_the_environment_or_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('fallback_file = "/tmp/a.jsonl"\n[thresholds]\nfallback_drain_seconds = 600\n')
    settings = load_settings(env={}, config_path=config)
    assert settings.fallback_file == "/tmp/a.jsonl" and settings.thresholds.fallback_drain_seconds == 600
    settings = load_settings(env={"COSTTOP_FALLBACK_FILE": "/var/lib/gw/fb.jsonl*"}, config_path=config)
    assert settings.fallback_file == "/var/lib/gw/fb.jsonl*"
    config.write_text("[thresholds]\nfallback_drain_seconds = 0\n")
    with pytest.raises(ConfigError):
        load_settings(env={}, config_path=config)


