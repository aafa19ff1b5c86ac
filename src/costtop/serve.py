"""`costtop serve`'s web server: textual-serve, where only the person who started it gets a session.

textual-serve starts a costtop process for every websocket on `/ws`, and accepts one from any page
and any local process. With `--allow-writes` that is a global kill for whoever connects, and the
audit row would name the user serve runs as. So:

* Every run has a secret token (`secrets.token_urlsafe(32)`), printed once in the URL to open. The
  page wants it in its query (`/?token=...`); the websocket in its path (`/ws/<token>`: textual.js
  appends its own `?width=..&height=..` to the URL it is given, so a query there would be mangled).
  It is never on a command line and never in a child's environment; aiohttp's access log, which
  would print it, is switched off.
* The Origin must still be this server's own (a browser always sends one on a websocket), so a
  page from another site cannot use a token it somehow got, e.g. from the operator's history.
* Each session's costtop process gets `COSTTOP_VIA=web` and `COSTTOP_CLIENT=<browser's address>`,
  which the writer puts in the audit row (sources/writer.py `Operator`).
* Writes on an address other than loopback are refused by the command line unless
  `--insecure-writes` (cli.py): there is no TLS here, so the token would cross the network in clear.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
WILDCARDS = ("0.0.0.0", "::", "")


def url_host(host: str) -> str:
    """The host as it is written in a URL and an Origin: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def browse_host(host: str) -> str:
    """Where to point a browser on this machine: a wildcard address is not one to visit."""
    if host in WILDCARDS:
        return "[::1]" if host == "::" else "127.0.0.1"
    return url_host(host)


def session_url(host: str, port: int, token: str) -> str:
    return f"http://{browse_host(host)}:{port}/?token={token}"


def allowed_origins(host: str, port: int) -> set[str]:
    """The origins of the pages this server serves. On loopback a browser may have used any of the
    loopback names; on a wildcard address the request's own Host is added per request."""
    hosts = set(LOOPBACK_NAMES) | {url_host(host)} if is_loopback(host) or host in WILDCARDS else {url_host(host)}
    return {f"{scheme}://{h}:{port}" for h in hosts for scheme in ("http", "https")}


class _Session(AppService):
    """One browser tab's costtop process, told it runs for the web view and for which address."""

    def __init__(self, command: str, extra_env: dict[str, str], **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.extra_env = extra_env

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return {**super()._build_environment(width=width, height=height), **self.extra_env}


class TokenServer(Server):
    """textual-serve with the token, the Origin check and the per-session environment above."""

    def __init__(self, command: str, *, host: str, port: int, token: str, title: str) -> None:
        super().__init__(command, host=host, port=port, title=title,
                         public_url=f"http://{browse_host(host)}:{port}")
        self.token = token

    def initialize_logging(self) -> None:
        super().initialize_logging()
        logging.getLogger("aiohttp.access").disabled = True  # its lines carry the token

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{token}", self.handle_websocket)
        return app

    def _token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def _origin_ok(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if origin is None:
            return False
        if origin in allowed_origins(self.host, self.port):
            return True
        # Listening on every address: the page's origin is whatever name the browser used for us.
        return self.host in WILDCARDS and origin in (f"http://{request.host}", f"https://{request.host}")

    async def handle_index(self, request: web.Request) -> web.Response:  # type: ignore[override]
        if not self._token_ok(request.query.get("token")):
            raise web.HTTPForbidden(text="costtop serve: open the URL that `costtop serve` printed, with its token")
        # URLs from the name the browser used (a wildcard address has no single public one).
        base = f"{request.scheme}://{request.host}"
        try:
            font_size = int(request.query.get("fontsize", "16"))
        except ValueError:
            font_size = 16
        context = {
            "font_size": font_size,
            "app_websocket_url": f"{'wss' if request.scheme == 'https' else 'ws'}://{request.host}/ws/{self.token}",
            "config": {"static": {"url": f"{base}/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Referrer-Policy"] = "no-referrer"  # the page's URL holds the token
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if not self._token_ok(request.match_info.get("token")):
            raise web.HTTPForbidden(text="costtop serve: a session needs the token serve printed")
        if not self._origin_ok(request):
            raise web.HTTPForbidden(text="costtop serve: a session from another site's page is refused")
        try:
            width = int(request.query.get("width", "80"))
            height = int(request.query.get("height", "24"))
        except ValueError:
            width, height = 80, 24
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        session = _Session(self.command, {"COSTTOP_VIA": "web", "COSTTOP_CLIENT": request.remote or "unknown"},
                           write_bytes=websocket.send_bytes, write_str=websocket.send_str, close=websocket.close,
                           download_manager=self.download_manager, debug=self.debug)
        await session.start(width, height)
        try:
            await self._process_messages(websocket, session)
        finally:
            await session.stop()
        return websocket
