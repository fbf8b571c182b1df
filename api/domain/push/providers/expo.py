"""Expo's push service: a send returns a ticket; the ticket's receipt, fetched later, says whether it reached
Apple or Google. A ticket is not a delivery: the dispatcher should check receipts (they can take 30 minutes).

Expo's message format has no collapse id or notification tag to pass on to Apple or Google: a repeated send shows
twice on the phone, and only the app, by the prompt id in `data`, can tell it is the same check-in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from api.domain.push.providers.base import (
    DEFAULT_TIMEOUT,
    Outcome,
    PushMessage,
    SendResult,
    accepted,
    new_http_client,
    retry_after_seconds,
    status_outcome,
    transport_failure,
)

# The `details.error` codes of error tickets and receipts. Anything unknown is permanent for that message.
ERROR_OUTCOMES = {
    "DeviceNotRegistered": Outcome.DEAD_TOKEN,
    "MessageRateExceeded": Outcome.RETRY,
    "MessageTooBig": Outcome.FAILED,
    "InvalidCredentials": Outcome.FAILED,  # our FCM/APNs credentials uploaded to Expo are wrong
    "MismatchSenderId": Outcome.FAILED,
}
BAD_RESPONSE = SendResult(Outcome.RETRY, error_class="expo.bad_response")


@dataclass(frozen=True)
class ExpoConfig:
    base_url: str = "https://exp.host"
    access_token: str | None = field(default=None, repr=False)  # needed only with "enhanced push security"
    ttl: timedelta = timedelta(hours=1)
    max_receipt_ids: int = 1000  # per getReceipts request
    timeout: float = DEFAULT_TIMEOUT


class ReceiptCheckFailed(Exception):
    """The getReceipts request itself failed: nothing is known about the tickets it asked for, which is not the same
    as a receipt saying "retry" (that one means the message was not delivered)."""

    def __init__(self, result: SendResult, partial: dict[str, SendResult]) -> None:
        super().__init__(result.error_class)
        self.result = result
        self.partial = partial  # receipts fetched by earlier batches of the same call


def new_client(config: ExpoConfig) -> httpx.AsyncClient:
    return new_http_client(timeout=config.timeout)


class ExpoProvider:
    name = "expo"

    def __init__(self, config: ExpoConfig | None = None, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config or ExpoConfig()
        self._owns_client = client is None
        self._client = client or new_client(self.config)
        base = self.config.base_url.rstrip("/")
        self._send_url = f"{base}/--/api/v2/push/send"
        self._receipts_url = f"{base}/--/api/v2/push/getReceipts"
        self._headers = {"accept": "application/json"}
        if self.config.access_token:
            self._headers["authorization"] = f"Bearer {self.config.access_token}"

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        payload = [
            {
                "to": token,
                "title": message.title,
                "body": message.body,
                "data": message.data(),
                "priority": "high",
                "ttl": int(self.config.ttl.total_seconds()),
            }
        ]
        try:
            response = await self._client.post(self._send_url, json=payload, headers=self._headers)
        except httpx.TransportError as exc:
            return transport_failure(exc)
        if not response.is_success:
            return _request_error(response, now)
        try:
            data = response.json()["data"]
            ticket = data[0] if isinstance(data, list) else data
        except (ValueError, KeyError, TypeError, IndexError):
            return BAD_RESPONSE
        return _ticket_or_receipt(ticket, ticket.get("id") if isinstance(ticket, dict) else None)

    async def check_receipts(self, ids: Sequence[str], *, now: datetime) -> dict[str, SendResult]:
        """Receipts by ticket id. An id with no receipt yet is absent from the answer: ask again later.

        Raises `ReceiptCheckFailed` when a getReceipts request fails as a whole.
        """
        results: dict[str, SendResult] = {}
        size = self.config.max_receipt_ids
        for start in range(0, len(ids), size):
            batch = list(ids[start : start + size])
            try:
                response = await self._client.post(self._receipts_url, json={"ids": batch}, headers=self._headers)
            except httpx.TransportError as exc:
                raise ReceiptCheckFailed(transport_failure(exc), results) from exc
            if not response.is_success:
                raise ReceiptCheckFailed(_request_error(response, now), results)
            try:
                receipts = response.json()["data"]
                found = {ticket_id: receipts[ticket_id] for ticket_id in batch if ticket_id in receipts}
            except (ValueError, KeyError, TypeError) as exc:
                raise ReceiptCheckFailed(BAD_RESPONSE, results) from exc
            results.update({ticket_id: _ticket_or_receipt(receipt, ticket_id) for ticket_id, receipt in found.items()})
        return results

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _ticket_or_receipt(item: Any, message_id: Any) -> SendResult:
    """Tickets and receipts share a shape: {"status": "ok"} or {"status": "error", "details": {"error": code}}."""
    if not isinstance(item, dict):
        return BAD_RESPONSE
    message_id = message_id if isinstance(message_id, str) else None
    if item.get("status") == "ok":
        return accepted(message_id)
    if item.get("status") != "error":
        return BAD_RESPONSE
    details = item.get("details")
    code = details.get("error") if isinstance(details, dict) else None
    if not isinstance(code, str) or not code.isidentifier():
        return SendResult(Outcome.FAILED, provider_message_id=message_id, error_class="expo.error")
    outcome = ERROR_OUTCOMES.get(code, Outcome.FAILED)
    return SendResult(outcome, provider_message_id=message_id, error_class=f"expo.{code}")


def _request_error(response: httpx.Response, now: datetime) -> SendResult:
    """A refused request: {"errors": [{"code": "VALIDATION_ERROR", "message": …}]} or just a status."""
    code = None
    try:
        errors = response.json().get("errors")
        code = errors[0].get("code") if isinstance(errors, list) and errors else None
    except (ValueError, AttributeError):
        code = None
    valid = isinstance(code, str) and code.isidentifier()
    return SendResult(
        status_outcome(response.status_code),
        error_class=f"expo.{code}" if valid else f"http.{response.status_code}",
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )
