"""HTTP(S) + WebSocket server of the teleop page: one asyncio loop on the node's worker thread.

``/`` and the page's files come from ``www`` (only files inside it); ``/ws`` is the WebSocket. The
socket needs the pairing token (``/ws?token=...``): without it, or with a wrong one, the handshake
is refused (HTTP 403), and a second page while one is connected is refused too (HTTP 409: two
operators must not drive the same arms). Everything else is 404.

For a headset on the LAN the page must be a secure context (WebXR): ``ensure_certificate`` makes a
self-signed certificate with ``openssl`` on first run and keeps it for the next ones.
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
import secrets
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

log = logging.getLogger(__name__)

CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".png": "image/png",
                 ".svg": "image/svg+xml", ".ico": "image/x-icon"}
MAX_MESSAGE = 1 << 16  # bytes; a pose message is ~400


def ensure_certificate(directory: Path, hosts: list[str]) -> tuple[Path, Path]:
    """(certificate, key) in ``directory``, made self-signed for ``hosts`` (IPs or names) if absent."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "teleop-cert.pem", directory / "teleop-key.pem"
    if cert.is_file() and key.is_file():
        return cert, key
    san = []
    for h in dict.fromkeys(["localhost", "127.0.0.1", *hosts]):
        try:
            ipaddress.ip_address(h)
            san.append(f"IP:{h}")
        except ValueError:
            san.append(f"DNS:{h}")
    tmp_key = key.with_suffix(".tmp")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "825", "-subj", "/CN=a2w-teleop", "-addext", "subjectAltName=" + ",".join(san),
                    "-keyout", str(tmp_key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    tmp_key.chmod(0o600)
    tmp_key.replace(key)
    log.info("teleop: made a self-signed certificate %s for %s", cert, ", ".join(san))
    return cert, key


class TeleopServer:
    """Serves ``www`` and one WebSocket client; callbacks run on the server's thread (post them)."""

    def __init__(self, www: Path, host: str, port: int, token: str, tls: tuple[Path, Path] | None,
                 on_connect: Callable[[], None], on_message: Callable[[str | bytes, float], None],
                 on_close: Callable[[str], None]) -> None:
        self.www = www.resolve()
        self.host, self.port, self.token, self.tls = host, port, token, tls
        self.on_connect, self.on_message, self.on_close = on_connect, on_message, on_close
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.refused: dict[str, int] = {"token": 0, "busy": 0}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: ServerConnection | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def url(self, host: str | None = None) -> str:
        """The page's address with the token (what the operator opens)."""
        h = host or self.host
        h = f"[{h}]" if ":" in h else h
        return f"{self.scheme}://{h}:{self.port}/?token={self.token}"

    # -- thread side ------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Worker target: serve until ``stop`` is set."""
        try:
            asyncio.run(self._main(stop))
        except BaseException as exc:  # noqa: BLE001 - reported to the node, which fails its start
            self.error = exc
            self.ready.set()
            raise

    async def _main(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        ctx = None
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.tls[0]), str(self.tls[1]))
        async with serve(self._handler, self.host, self.port, ssl=ctx, process_request=self._process_request,
                         max_size=MAX_MESSAGE, ping_interval=5, ping_timeout=5) as server:
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            if self._client is not None:
                await self._client.close(1001, "teleop node stopping")

    def _static(self, path: str) -> Response:
        rel = "index.html" if path in ("", "/") else path.lstrip("/")
        f = (self.www / rel).resolve()
        if self.www not in f.parents or not f.is_file():
            return Response(404, "Not Found", Headers([("Content-Type", "text/plain")]), b"not found\n")
        body = f.read_bytes()
        headers = Headers([("Content-Type", CONTENT_TYPES.get(f.suffix, "application/octet-stream")),
                           ("Content-Length", str(len(body))), ("Cache-Control", "no-store")])
        return Response(200, "OK", headers, body)

    def _process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/ws":
            return self._static(url.path)
        given = parse_qs(url.query).get("token", [""])[0]
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            self.refused["token"] += 1
            log.warning("teleop: refused a WebSocket from %s: pairing token %s", conn.remote_address,
                        "missing" if not given else "wrong")
            return conn.respond(http.HTTPStatus.FORBIDDEN, "pairing token missing or wrong\n")
        if self._client is not None:
            self.refused["busy"] += 1
            return conn.respond(http.HTTPStatus.CONFLICT, "another page is driving the arms\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        if self._client is not None:  # two handshakes raced past _process_request
            await ws.close(1013, "another page is driving the arms")
            return
        self._client = ws
        why = "page closed"
        self.on_connect()
        try:
            async for raw in ws:
                self.on_message(raw, time.perf_counter())
        except ConnectionClosed as exc:
            why = f"connection lost ({exc})"
        finally:
            self._client = None
            self.on_close(why)

    # -- node side --------------------------------------------------------------------------------
    def send(self, text: str) -> None:
        """Queue ``text`` to the page (any thread); dropped when no page is connected."""
        loop, ws = self._loop, self._client
        if loop is None or ws is None:
            return

        def go() -> None:
            if self._client is ws:
                fut: Any = asyncio.ensure_future(ws.send(text))
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # a closing socket: fine
        loop.call_soon_threadsafe(go)

    @property
    def connected(self) -> bool:
        return self._client is not None
