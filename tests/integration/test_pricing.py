"""The price list: tolerant matching, shadow cost only for calls without a cost, and `pricing sync`
against a local HTTP server speaking OpenRouter's format, good answers and broken ones."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from costtop.cli import main
from costtop.pricing.catalog import Catalog, Price, current, shipped
from costtop.pricing.sync import SyncError, sync


def openrouter(*entries: tuple[str, object, object, object]) -> dict[str, object]:
    """An answer in OpenRouter's shape: prices per token as strings."""
    data = []
    for model_id, prompt, completion, cache in entries:
        pricing: dict[str, object] = {"prompt": prompt, "completion": completion, "request": "0", "image": "0"}
        if cache is not None:
            pricing["input_cache_read"] = cache
        data.append({"id": model_id, "name": model_id, "context_length": 128000, "pricing": pricing})
    return {"data": data}


GOOD = openrouter(
    ("openai/gpt-4o", "0.0000025", "0.00001", "0.00000125"),
    ("openai/gpt-4o-mini", "0.00000015", "0.0000006", None),
    ("anthropic/claude-sonnet-4", "0.000006", "0.00003", "0.0000003"),  # doubled: moved > 30 %
    ("anthropic/claude-3.5-haiku", "0.0000008", "0.000004", None),
    ("google/gemini-2.5-flash", "0.0000003", "0.0000025", None),
    ("openai/gpt-5", "0.00000125", "0.00001", None),
    ("openai/gpt-5-mini", "0.00000025", "0.000002", None),
    ("anthropic/claude-opus-4", "0.000015", "0.000075", None),
    ("weird/no-price", None, "0.1", None),  # left out: no prompt price
)


class Server:
    """A local HTTP server: each path is one way an answer can be good or broken."""

    def __init__(self) -> None:
        routes = {
            "/good": (200, json.dumps(GOOD).encode()),
            "/missing": (200, json.dumps({"data": [{"id": "x"}, {"pricing": {"prompt": "1"}}]}).encode()),
            "/nonnumeric": (200, json.dumps(openrouter(("a/b", "cheap", "0.1", None),
                                                       ("c/d", "NaN", "-1", None))).encode()),
            "/nodata": (200, b'{"models": []}'),
            "/notjson": (200, b"<html>maintenance</html>"),
            "/error": (500, b'{"error": "internal"}'),
            "/partial": (200, json.dumps(openrouter(("openai/gpt-4o", "0.0000025", "0.00001", None))).encode()),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/slow":
                    time.sleep(3)
                status, body = routes.get(self.path, (404, b"{}"))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (the timeout case)

            def log_message(self, *args: object) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def test_sync_saves_a_dated_copy_and_reports_moved_prices(server: Server, tmp_path: Path) -> None:
    (tmp_path / "current.json").write_text(shipped().to_json())
    report = sync(f"{server.url}/good", tmp_path, timeout=2, now=datetime(2026, 11, 22, tzinfo=UTC))
    assert report.models == 8 and report.skipped == 1
    assert report.saved == tmp_path / "catalog-2026-11-22.json" and report.saved.exists()
    catalog = current(tmp_path)
    assert catalog.as_of == "2026-11-22" and "OpenRouter" in catalog.source
    assert catalog.find("gpt-4o")[1] == Price(Decimal("0.0000025"), Decimal("0.00001"), Decimal("0.00000125"))
    assert any(line.startswith("anthropic/claude-sonnet-4: prompt") for line in report.moved)
    assert not any(line.startswith("openai/gpt-4o:") for line in report.moved)  # unchanged


@pytest.mark.parametrize(("path", "reason"), [
    ("/missing", "no model in the answer had usable prices"),
    ("/nonnumeric", "no model in the answer had usable prices"),
    ("/nodata", "no `data` list"),
    ("/notjson", "did not answer JSON"),
    ("/error", "HTTP 500"),
    ("/slow", "did not answer within 1 s"),
    ("/partial", "looks partial"),
])
def test_a_bad_answer_keeps_the_previous_catalog_and_says_why(server: Server, tmp_path: Path, path: str,
                                                              reason: str) -> None:
    before = shipped().to_json()
    (tmp_path / "current.json").write_text(before)
    with pytest.raises(SyncError, match=reason):
        sync(f"{server.url}{path}", tmp_path, timeout=1)
    assert (tmp_path / "current.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["current.json"]


def test_the_command_prints_one_line_and_exits_2_on_failure(server: Server, tmp_path: Path, monkeypatch,
                                                           capsys) -> None:
    monkeypatch.setattr("costtop.pricing.catalog.data_dir", lambda: tmp_path)
    assert main(["pricing", "sync", "--url", f"{server.url}/error"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HTTP 500" in err[0] and "previous catalog is kept" in err[0]
    assert main(["pricing", "sync", "--url", f"{server.url}/good"]) == 0
    out = capsys.readouterr().out
    assert "8 models priced (1 left out" in out
    assert "OpenRouter" in Catalog.from_json((tmp_path / "current.json").read_text()).source
    assert main(["pricing", "show"]) == 0
    assert capsys.readouterr().out.startswith("8 models, as of ")
