"""The contract every push provider keeps, and the HTTP error classification they share.

A provider turns one `PushMessage` for one device token into one `SendResult`. It never raises for anything the
network or the provider did: the dispatcher decides from `Outcome` whether to retry, give up or disable the device.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Protocol
from uuid import UUID

import httpx

GENERIC_TITLE = "Interlude"
GENERIC_BODY = "You have a new check-in"


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DEAD_TOKEN = "dead_token"  # noqa: S105 -- an outcome name, not a secret. The provider says this token will never work again: disable the device
    RETRY = "retry"  # transient: 429, 5xx, timeout, connection failure
    FAILED = "failed"  # permanent for this message, but the token is not known dead (bad request, auth misconfig)


@dataclass(frozen=True)
class PushMessage:
    """What may leave the building: generic text and the prompt id. Nothing that hints at a diagnosis, drug,
    symptom, score or clinic reaches Google, Apple, Expo or a browser vendor."""

    prompt_id: UUID
    title: str = GENERIC_TITLE
    body: str = GENERIC_BODY

    def data(self) -> dict[str, str]:
        return {"prompt_id": str(self.prompt_id)}

    @property
    def collapse_id(self) -> str:
        """What a provider is told so that a repeat replaces the notification the phone shows instead of adding a
        second one: a send repeated after a crash, and a reminder of the same prompt. The prompt id, which `data`
        already carries: opaque, and nothing more about the patient."""
        return str(self.prompt_id)


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    provider_message_id: str | None = None
    # Stable short label for metrics: "fcm.UNREGISTERED", "apns.410.Unregistered", "http.503", "network", "timeout".
    error_class: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After when the provider gave one


class PushProvider(Protocol):
    name: str

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult: ...

    async def aclose(self) -> None: ...


def accepted(provider_message_id: str | None) -> SendResult:
    return SendResult(Outcome.ACCEPTED, provider_message_id=provider_message_id)


def token_fingerprint(token: str) -> str:
    """Enough to correlate log lines about one device, too little to send it anything."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def epoch_seconds(now: datetime) -> int:
    # A naive datetime would be read in the host's zone: wrong token lifetimes on any server not set to UTC.
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return int(now.timestamp())


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Retry-After as seconds from `now`: either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def status_outcome(status: int) -> Outcome:
    """The default reading of an HTTP status, for answers without a more specific reason."""
    # 501 and 505 say the request can never work as sent (method, HTTP version): retrying would only repeat it.
    if status in {408, 429} or (status >= 500 and status not in {501, 505}):
        return Outcome.RETRY
    return Outcome.FAILED


def status_result(response: httpx.Response, now: datetime, *, outcome: Outcome | None = None) -> SendResult:
    return SendResult(
        outcome or status_outcome(response.status_code),
        error_class=f"http.{response.status_code}",
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )


def transport_failure(exc: httpx.TransportError) -> SendResult:
    # TimeoutException is a TransportError too: test it first so timeouts are counted apart from refusals.
    if isinstance(exc, httpx.TimeoutException):
        return SendResult(Outcome.RETRY, error_class="timeout")
    return SendResult(Outcome.RETRY, error_class="network")


DEFAULT_TIMEOUT = 10.0


def new_http_client(
    *, timeout: float = DEFAULT_TIMEOUT, http2: bool = False, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    """The client a provider builds when none is injected.

    Redirects are not followed: a push endpoint that redirects is misconfigured, and following it would let a
    Web Push subscription point our server at an address of the subscriber's choosing.
    """
    return httpx.AsyncClient(
        http2=http2,
        verify=verify,
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=20, max_keepalive_connections=10),
    )
