"""`costtop serve`'s web server: textual-serve, refusing sessions opened from other sites' pages.

textual-serve starts a costtop process for every websocket on `/ws`, and accepts one from any page.
A page the operator happens to visit could then open a session in their browser and send keys (with
`--allow-writes`, a global kill), or just read the screen. Browsers always send an Origin header on a
websocket, so a session is refused unless it comes from the page this server itself served.
"""

from __future__ import annotations

from aiohttp import web
from textual_serve.server import Server


def allowed_origins(host: str, port: int) -> set[str]:
    hosts = {host, "127.0.0.1", "localhost"} if host in ("127.0.0.1", "localhost", "::1") else {host}
    return {f"http://{h}:{port}" for h in hosts} | {f"https://{h}:{port}" for h in hosts}


class OriginCheckedServer(Server):
    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        origin = request.headers.get("Origin")
        if origin is None or origin not in allowed_origins(self.host, self.port):
            raise web.HTTPForbidden(text="costtop serve: a session from another site's page is refused")
        return await super().handle_websocket(request)
