"""Apple Push Notification service over HTTP/2, with token-based (ES256 provider JWT) authentication."""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.domain.push.providers.base import (
    DEFAULT_TIMEOUT,
    Outcome,
    PushMessage,
    SendResult,
    accepted,
    epoch_seconds,
    new_http_client,
    retry_after_seconds,
    status_outcome,
    transport_failure,
)

logger = logging.getLogger(__name__)

# Apple: refresh the provider token no more than once every 20 minutes (else 429 TooManyProviderTokenUpdates)
# and no less than once every 60 (else 403 ExpiredProviderToken). 50 leaves room for clock skew.
TOKEN_MIN_AGE = timedelta(minutes=20)
TOKEN_REFRESH_AGE = timedelta(minutes=50)
# Device tokens are hex (32 bytes today, up to 100 allowed). Checking the shape also keeps the URL path ours.
DEVICE_TOKEN = re.compile(r"[0-9a-fA-F]{32,200}")
DEAD_REASONS = frozenset({"Unregistered", "BadDeviceToken"})


@dataclass(frozen=True)
class ApnsConfig:
    team_id: str
    key_id: str
    topic: str  # the app's bundle id
    private_key: str = field(repr=False)  # the .p8 file's PEM text
    base_url: str = "https://api.push.apple.com"  # sandbox: https://api.sandbox.push.apple.com
    ttl: timedelta = timedelta(hours=1)  # apns-expiration: how long Apple keeps trying an offline phone
    timeout: float = DEFAULT_TIMEOUT


@dataclass
class _ProviderToken:
    value: str = field(repr=False)
    issued_at: datetime
    stale: bool = False  # Apple called it expired; replace it as soon as the 20-minute floor allows


def new_client(config: ApnsConfig, *, verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """APNs speaks HTTP/2 only (negotiated by ALPN). Tests pass a `verify` context that trusts their certificate."""
    return new_http_client(timeout=config.timeout, http2=True, verify=verify)


class ApnsProvider:
    name = "apns"

    def __init__(self, config: ApnsConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        key = serialization.load_pem_private_key(config.private_key.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the APNs signing key must be a P-256 key (.p8)")
        self._key = key
        self._owns_client = client is None
        self._client = client or new_client(config)
        self._token: _ProviderToken | None = None
        self._base_url = config.base_url.rstrip("/")

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        if not DEVICE_TOKEN.fullmatch(token):
            return SendResult(Outcome.DEAD_TOKEN, error_class="apns.malformed_token")
        provider_token = self._provider_token(now)
        expiration = epoch_seconds(now) + int(self.config.ttl.total_seconds())
        headers = {
            "authorization": f"bearer {provider_token.value}",
            "apns-topic": self.config.topic,
            "apns-push-type": "alert",
            "apns-priority": "10",
            "apns-expiration": str(expiration),
            # Same id, one notification: a repeat replaces the one shown (at most 64 bytes; a UUID is 36).
            "apns-collapse-id": message.collapse_id,
        }
        payload = {
            "aps": {"alert": {"title": message.title, "body": message.body}, "sound": "default"},
            **message.data(),
        }
        try:
            response = await self._client.post(f"{self._base_url}/3/device/{token}", json=payload, headers=headers)
        except httpx.TransportError as exc:
            return transport_failure(exc)
        return self._result(response, provider_token, now)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _provider_token(self, now: datetime) -> _ProviderToken:
        current = self._token
        if current is not None:
            age = now - current.issued_at
            if age < TOKEN_MIN_AGE or (age < TOKEN_REFRESH_AGE and not current.stale):
                return current
        value = jwt.encode(
            {"iss": self.config.team_id, "iat": epoch_seconds(now)},
            self._key,
            algorithm="ES256",
            headers={"kid": self.config.key_id},
        )
        self._token = _ProviderToken(value, now)
        logger.info("push.apns.token_refreshed", extra={"issued_at": now.isoformat()})
        return self._token

    def _result(self, response: httpx.Response, provider_token: _ProviderToken, now: datetime) -> SendResult:
        if response.is_success:
            return accepted(response.headers.get("apns-id"))
        reason = _reason(response)
        status = response.status_code
        error_class = f"apns.{status}.{reason}" if reason else f"http.{status}"
        retry_after = retry_after_seconds(response.headers.get("retry-after"), now)
        if status == 410 or reason in DEAD_REASONS:
            return SendResult(Outcome.DEAD_TOKEN, error_class=error_class)
        if reason == "ExpiredProviderToken":
            provider_token.stale = True
            return SendResult(Outcome.RETRY, error_class=error_class, retry_after=retry_after)
        return SendResult(status_outcome(status), error_class=error_class, retry_after=retry_after)


def _reason(response: httpx.Response) -> str | None:
    try:
        reason = response.json().get("reason")
    except (ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) and reason.isidentifier() else None
