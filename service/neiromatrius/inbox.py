"""``make run``'s webhook inbox: a receiver on loopback that checks each delivery's Standard Webhooks signature
and keeps the recent ones, so a newcomer sees the whole loop on their machine.

``POST`` (any path) records a delivery and answers 204 when its signature is valid, 401 when not (as a real
receiver would; the listener then retries on its schedule). ``GET`` (any path) returns the recent deliveries,
newest first, as JSON. One line per delivery is printed: ids and the verdict, never the body.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

KEEP = 50
SHOWN_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")
MAX_BODY_BYTES = 1024 * 1024


class WebhookInbox:
    def __init__(self, secret: str, port: int, host: str = "127.0.0.1") -> None:
        self._verifier = Webhook(secret)
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._lock = threading.Lock()
        self._host = host
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-inbox", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def deliveries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(reversed(self._deliveries))

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> bool:
        """Check and keep one delivery; True when its signature is valid."""
        try:
            self._verifier.verify(body, headers)
            valid, problem = True, None
        except WebhookVerificationError as exc:
            valid, problem = False, str(exc)
        try:
            event: Any = json.loads(body)
        except ValueError:
            event = None
        delivery = {
            "received_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "path": path,
            "webhook_id": headers.get("webhook-id"),
            "signature": "valid" if valid else "invalid",
            "headers": {name: value for name, value in headers.items() if name in SHOWN_HEADERS},
            "problem": problem,
            "event": event,
        }
        with self._lock:
            self._deliveries.append(delivery)
        kind = event.get("type") if isinstance(event, dict) else "not JSON"
        verdict = "✅ signature valid" if valid else f"❌ signature invalid ({problem})"
        print(f"📬 webhook inbox: {kind} webhook-id={delivery['webhook_id']} {verdict}", flush=True)
        return valid


def _handler(inbox: WebhookInbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "NeiromatriusWebhookInbox/1.0"

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length > MAX_BODY_BYTES:
                self._answer(413, b"")
                return
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            self._answer(204 if inbox.receive(self.path, headers, body) else 401, b"")

        def do_GET(self) -> None:
            body = json.dumps({"deliveries": inbox.deliveries()}, ensure_ascii=False, indent=2).encode("utf-8")
            self._answer(200, body, "application/json; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str | None = None) -> None:
            self.send_response(status)
            if content_type is not None:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the one line per delivery is printed above
            del format, args

    return Handler
