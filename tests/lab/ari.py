"""A small HTTPS shim in front of the lab's Pebble, which (in Debian's 2.4) has neither
ACME Renewal Information (RFC 9773) nor profiles.

Its directory is Pebble's, plus a `renewalInfo` resource and `meta.profiles`; every other
URL in it still points at Pebble itself, so orders go to Pebble unchanged (a proxy could not
forward them: each request's JWS is signed for its URL). `renewalInfo` answers with the
window and Retry-After the test sets, and counts the requests it gets.
"""

from __future__ import annotations

import json
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.lab import Lab


class AriShim:
    def __init__(self, lab: Lab, profiles: dict[str, str] | None = None) -> None:
        self.lab = lab
        self.profiles = profiles or {"classic": "90 days", "shortlived": "6 days"}
        now = datetime.now(UTC)
        self.window = (now + timedelta(days=60), now + timedelta(days=62))
        self.retry_after = 3600
        self.requests: list[str] = []
        shim = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                shim.requests.append(self.path)
                if self.path == "/dir":
                    self._json(shim.directory())
                elif self.path.startswith("/renewal-info/"):
                    start, end = shim.window
                    body = {"suggestedWindow": {"start": _z(start), "end": _z(end)}}
                    self._json(body, {"Retry-After": str(shim.retry_after)})
                else:
                    self.send_error(404)

            def _json(self, body: Any, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
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

    def directory(self) -> dict[str, Any]:
        directory = json.loads(self.lab._get(self.lab.directory_url))
        directory["renewalInfo"] = f"{self.base}/renewal-info"
        directory.setdefault("meta", {})["profiles"] = self.profiles
        return directory

    def ari_requests(self) -> int:
        return sum(1 for path in self.requests if path.startswith("/renewal-info/"))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
