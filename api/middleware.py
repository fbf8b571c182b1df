"""Request ids and the one request log line per request (ids and timings only)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from api.metrics import Metrics

log = logging.getLogger("interlude.http")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# nginx's name for "the client closed the connection before the answer": logged and counted, never sent.
CLIENT_CLOSED = 499


class RequestIdMiddleware:
    """Takes a caller's X-Request-ID if it is safe to echo, else makes one; returns it on every response.
    With `metrics`, also counts and times each request there."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if self.metrics is not None:
            self.metrics.start(scope)
        started = time.perf_counter()
        status = 500
        responded = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The phone hung up while sending its request: nothing ran, and there is nobody to answer.
            if responded:
                raise
            status = CLIENT_CLOSED
            log.info("http.client_disconnected", extra={"request_id": request_id})
        except Exception:
            if scope["type"] != "http" or responded:
                raise
            # Answered here rather than by Starlette's outer error handler, so that the 500 names its request id.
            log.error("http.unhandled_error", exc_info=True, extra={"request_id": request_id})
            await _internal_error(request_id, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            _log_request(scope, request_id, status, elapsed)
            if self.metrics is not None:
                self.metrics.finish(scope, status, elapsed)


def _log_request(scope: Scope, request_id: str, status: int, elapsed: float) -> None:
    """The request's one line (ids and timings only)."""
    state = scope.get("state", {})
    log.info(
        "http.request",
        extra={
            "request_id": request_id,
            "method": scope.get("method", "WS"),
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "operation": getattr(state.get("meta"), "operation", None),
            "actor_id": state.get("actor_id"),
        },
    )


async def _internal_error(request_id: str, send: Send) -> None:
    body = json.dumps({"error": "internal", "requestId": request_id}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})
