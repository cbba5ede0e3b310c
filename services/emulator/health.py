"""The emulator's HTTP endpoints, on a small threaded server beside its asyncio loop:
``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (the ingest API took the last
request: it answered, and not with a 5xx)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest


class ApiHealth:
    """Whether the ingest API took the emulator's last request (``None``: none sent yet)."""

    def __init__(self) -> None:
        self.reached: bool | None = None

    def record(self, reached: bool) -> None:
        self.reached = reached


API_HEALTH = ApiHealth()


def serve(
    host: str, port: int, registry: CollectorRegistry, health: ApiHealth = API_HEALTH
) -> ThreadingHTTPServer:
    """Start the endpoints in a daemon thread; the server (``shutdown()`` stops it)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._json(200, {"status": "ok"})
            elif self.path == "/readyz":
                if health.reached:
                    self._json(200, {"status": "ready"})
                else:
                    state = "starting" if health.reached is None else "ingest API unreachable"
                    self._json(503, {"status": "not ready", "reason": state})
            else:
                self._json(
                    404, {"status": "not found", "paths": ["/metrics", "/healthz", "/readyz"]}
                )

        def _json(self, status: int, body: dict[str, object]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes and probes every few seconds: not worth a log line each

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="emulator-http", daemon=True).start()
    return server
