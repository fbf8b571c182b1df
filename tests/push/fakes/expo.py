"""Expo's push API: tickets from /push/send, receipts from /push/getReceipts."""

from __future__ import annotations

import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.push.fakes.server import FakeService, Reply

MESSAGE_KEYS = {"to", "title", "body", "data", "priority", "ttl"}


def error_ticket(code: str) -> dict[str, Any]:
    return {"status": "error", "message": f"fake {code}", "details": {"error": code}}


def request_errors(status: int, code: str, **headers: str) -> Reply:
    return Reply(
        status, {"errors": [{"code": code, "message": "fake"}]}, {k.replace("_", "-"): v for k, v in headers.items()}
    )


class FakeExpo(FakeService):
    def __init__(self, *, access_token: str | None = None) -> None:
        super().__init__()
        self.access_token = access_token
        self.tickets: list[dict[str, Any]] = []  # scripted tickets for the next sends; "ok" with a fresh id otherwise
        self.receipts: dict[str, dict[str, Any]] = {}  # ticket id → receipt, as getReceipts will answer it
        self.receipt_requests: list[list[str]] = []

    def routes(self) -> list[Route]:
        return [
            Route("/--/api/v2/push/send", self.send, methods=["POST"]),
            Route("/--/api/v2/push/getReceipts", self.get_receipts, methods=["POST"]),
        ]

    def _auth_problem(self, authorization: str | None) -> Response | None:
        if self.access_token is not None and authorization != f"Bearer {self.access_token}":
            return self.refuse("access token", request_errors(401, "UNAUTHORIZED"))
        return None

    async def send(self, request: Request) -> Response:
        received = await self.record(request)
        await self.maybe_hang()
        refused = self._auth_problem(received.header("authorization"))
        if refused:
            return refused
        if received.header("content-type") != "application/json":
            return self.refuse("not JSON", request_errors(400, "VALIDATION_ERROR"))
        messages = received.json()
        if not isinstance(messages, list) or not 1 <= len(messages) <= 100:
            return self.refuse("not a list of 1–100 messages", request_errors(400, "VALIDATION_ERROR"))
        for message in messages:
            if not isinstance(message, dict) or set(message) != MESSAGE_KEYS or message["priority"] != "high":
                return self.refuse(f"message shape {message}", request_errors(400, "VALIDATION_ERROR"))
        scripted = self.scripted()
        if scripted:
            return scripted.response()
        tickets = []
        for _ in messages:
            ticket = self.tickets.pop(0) if self.tickets else {"status": "ok", "id": str(uuid.uuid4())}
            tickets.append(ticket)
        return JSONResponse({"data": tickets})

    async def get_receipts(self, request: Request) -> Response:
        received = await self.record(request)
        await self.maybe_hang()
        refused = self._auth_problem(received.header("authorization"))
        if refused:
            return refused
        body = received.json()
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or not 1 <= len(ids) <= 1000:
            return self.refuse("ids", request_errors(400, "VALIDATION_ERROR"))
        self.receipt_requests.append(ids)
        scripted = self.scripted()
        if scripted:
            return scripted.response()
        return JSONResponse({"data": {i: self.receipts[i] for i in ids if i in self.receipts}})
