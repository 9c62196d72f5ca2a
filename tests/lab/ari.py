"""A small HTTPS shim in front of the lab's Pebble, which (in Debian's 2.4) has neither
ACME Renewal Information (RFC 9773) nor profiles.

Its directory is Pebble's, plus a `renewalInfo` resource and `meta.profiles`; every other
URL in it still points at Pebble itself, so orders go to Pebble unchanged. `renewalInfo`
answers with the window and Retry-After the test sets, and counts the requests it gets.

With `proxy=True` it stands in front of every request instead, as a hostile CA (or a proxy
before an honest one) would: it forwards each to Pebble with its own Host header, so that
Pebble's URLs (and the URL each JWS is signed for) name the shim. A test can then answer a
newOrder that carries `replaces` with 409 alreadyReplaced (`already_replaced`), or rewrite
the certificate a client downloads (`rewrite_certificate`, given the PEM chain Pebble
issued).
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from tests.lab import Lab

_HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "keep-alive"}


class AriShim:
    def __init__(
        self, lab: Lab, profiles: dict[str, str] | None = None, *, proxy: bool = False
    ) -> None:
        self.lab = lab
        self.proxy = proxy
        self.profiles = profiles or {"classic": "90 days", "shortlived": "6 days"}
        now = datetime.now(UTC)
        self.window = (now + timedelta(days=60), now + timedelta(days=62))
        self.retry_after = 3600
        self.explanation_url: str | None = None  # renewalInfo's explanationURL, when set
        self.requests: list[str] = []
        self.already_replaced = False  # proxy: a newOrder with `replaces` gets 409
        self.rewrite_certificate: Callable[[bytes], bytes] | None = None  # proxy
        self.new_orders: list[dict[str, Any]] = []  # proxy: each newOrder's payload
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                shim.requests.append(self.path)
                if self.path == "/dir":
                    self._json(shim.directory(self.headers["Host"]))
                elif self.path.startswith("/renewal-info/"):
                    start, end = shim.window
                    body: dict[str, Any] = {"suggestedWindow": {"start": _z(start), "end": _z(end)}}
                    if shim.explanation_url:
                        body["explanationURL"] = shim.explanation_url
                    self._json(body, {"Retry-After": str(shim.retry_after)})
                elif shim.proxy:
                    self._forward("GET")
                else:
                    self.send_error(404)

            def do_HEAD(self) -> None:
                shim.requests.append(self.path)
                self._forward("HEAD")

            def do_POST(self) -> None:
                shim.requests.append(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = _payload(body)
                if self.path == "/order-plz" and isinstance(payload, dict):
                    shim.new_orders.append(payload)
                    if shim.already_replaced and payload.get("replaces"):
                        problem = {
                            "type": "urn:ietf:params:acme:error:alreadyReplaced",
                            "detail": "the certificate named by replaces has a replacement",
                            "status": 409,
                        }
                        self._json(problem, status=409, content="application/problem+json")
                        return
                self._forward("POST", body)

            def _forward(self, method: str, body: bytes | None = None) -> None:
                if not shim.proxy:
                    self.send_error(404)
                    return
                status, headers, data = shim.forward(method, self.path, dict(self.headers), body)
                rewrite = shim.rewrite_certificate
                downloaded = method == "POST" and self.path.startswith("/certZ/")
                if rewrite and downloaded and status == 200:
                    data = rewrite(data)
                self._send(status, headers, b"" if method == "HEAD" else data, len(data))

            def _json(
                self,
                body: Any,
                headers: dict[str, str] | None = None,
                status: int = 200,
                content: str = "application/json",
            ) -> None:
                data = json.dumps(body).encode()
                self._send(status, [("Content-Type", content), *(headers or {}).items()], data)

            def _send(
                self,
                status: int,
                headers: list[tuple[str, str]],
                data: bytes,
                length: int | None = None,
            ) -> None:
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data) if length is None else length))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls = lab.directory / "tls"  # Pebble's listener certificate is for 127.0.0.1 too
        context.load_cert_chain(tls / "pebble.pem", tls / "pebble.key")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.server.server_port}"

    @property
    def directory_url(self) -> str:
        return f"{self.base}/dir"

    def directory(self, host: str | None = None) -> dict[str, Any]:
        if self.proxy:
            headers = {"Host": host or urlsplit(self.base).netloc}
            directory = json.loads(self.forward("GET", "/dir", headers, None)[2])
        else:
            directory = json.loads(self.lab._get(self.lab.directory_url))
        directory["renewalInfo"] = f"{self.base}/renewal-info"
        directory.setdefault("meta", {})["profiles"] = self.profiles
        return directory

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to Pebble, as the shim's client sent it (Host included)."""
        pebble = urlsplit(self.lab.directory_url)
        context = ssl.create_default_context(cafile=str(self.lab.ca_bundle))
        conn = http.client.HTTPSConnection(pebble.hostname, pebble.port, context=context)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def ari_requests(self) -> int:
        return sum(1 for path in self.requests if path.startswith("/renewal-info/"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _payload(body: bytes) -> Any:
    """The payload of a flattened JWS (None when there is none, as in a POST-as-GET)."""
    try:
        encoded = json.loads(body)["payload"]
        return json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    except (ValueError, KeyError, TypeError):
        return None


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
