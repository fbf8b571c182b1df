"""Firebase Cloud Messaging, HTTP v1 API, authorised by a service account through the OAuth 2.0 JWT-bearer grant."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 -- an endpoint, not a secret
SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(hours=1)  # Google's maximum for a JWT-bearer assertion
# Stop using an access token this long before Google says it expires: a send may be in flight that long.
REFRESH_MARGIN = timedelta(minutes=5)
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True)
class ServiceAccount:
    project_id: str
    client_email: str
    private_key: str = field(repr=False)
    token_uri: str = GOOGLE_TOKEN_URI
    private_key_id: str | None = None

    @classmethod
    def from_json(cls, source: str | bytes | Mapping[str, Any]) -> ServiceAccount:
        """From the JSON file Google's console hands out (or its parsed contents)."""
        info = source if isinstance(source, Mapping) else json.loads(source)
        return cls(
            project_id=str(info["project_id"]),
            client_email=str(info["client_email"]),
            private_key=str(info["private_key"]),
            token_uri=str(info.get("token_uri") or GOOGLE_TOKEN_URI),
            private_key_id=str(info["private_key_id"]) if info.get("private_key_id") else None,
        )


@dataclass(frozen=True)
class FcmConfig:
    service_account: ServiceAccount
    base_url: str = "https://fcm.googleapis.com"
    ttl: timedelta = timedelta(hours=1)  # how long FCM keeps trying an offline phone: the prompt window
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class _AccessToken:
    value: str = field(repr=False)
    refresh_at: datetime


class _TokenUnavailable(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.error_class)
        self.result = result


def new_client(config: FcmConfig) -> httpx.AsyncClient:
    return new_http_client(timeout=config.timeout, http2=True)


class FcmProvider:
    name = "fcm"

    def __init__(self, config: FcmConfig, *, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        # Parsed now so a broken key stops start-up instead of failing every send.
        key = serialization.load_pem_private_key(config.service_account.private_key.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the FCM service account key must be an RSA key")
        self._key = key
        self._owns_client = client is None
        self._client = client or new_client(config)
        self._token: _AccessToken | None = None
        self._token_lock = asyncio.Lock()
        project = quote(config.service_account.project_id, safe="")
        self._send_url = f"{config.base_url.rstrip('/')}/v1/projects/{project}/messages:send"

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        body = self._body(token, message, now)
        try:
            access, response = await self._post(body, now)
            status, code = _error_reason(response)
            # A 401 usually means our cached token was revoked or expired early: fetch a new one, once.
            # THIRD_PARTY_AUTH_ERROR is a broken APNs/web credential in Firebase; a new token cannot fix it.
            if response.status_code == 401 and code != "THIRD_PARTY_AUTH_ERROR":
                self._forget(access)
                _, response = await self._post(body, now)
                status, code = _error_reason(response)
        except _TokenUnavailable as exc:
            return exc.result
        except httpx.TransportError as exc:
            return transport_failure(exc)
        return _result(response, status, code, now)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def _post(self, body: dict[str, Any], now: datetime) -> tuple[str, httpx.Response]:
        access = await self._access_token(now)
        response = await self._client.post(self._send_url, json=body, headers={"authorization": f"Bearer {access}"})
        return access, response

    def _body(self, token: str, message: PushMessage, now: datetime) -> dict[str, Any]:
        ttl = int(self.config.ttl.total_seconds())
        return {
            "message": {
                "token": token,
                "notification": {"title": message.title, "body": message.body},
                "data": message.data(),
                # A repeat replaces the notification shown, on Android by its tag and on iOS by its collapse id.
                "android": {"priority": "high", "ttl": f"{ttl}s", "notification": {"tag": message.collapse_id}},
                "apns": {
                    "headers": {
                        "apns-priority": "10",
                        "apns-push-type": "alert",
                        "apns-expiration": str(epoch_seconds(now) + ttl),
                        "apns-collapse-id": message.collapse_id,
                    },
                    "payload": {"aps": {"sound": "default"}},
                },
            }
        }

    async def _access_token(self, now: datetime) -> str:
        # One refresh at a time: concurrent sends that find the token stale wait for the same fetch.
        async with self._token_lock:
            if self._token is None or now >= self._token.refresh_at:
                self._token = await self._fetch_token(now)
                logger.info("push.fcm.token_refreshed", extra={"refresh_at": self._token.refresh_at.isoformat()})
            return self._token.value

    def _forget(self, value: str) -> None:
        # Only the token that failed: a concurrent send may already have replaced it.
        if self._token is not None and self._token.value == value:
            self._token = None

    async def _fetch_token(self, now: datetime) -> _AccessToken:
        account = self.config.service_account
        issued = epoch_seconds(now)
        claims = {
            "iss": account.client_email,
            "scope": SCOPE,
            "aud": account.token_uri,
            "iat": issued,
            "exp": issued + int(ASSERTION_LIFETIME.total_seconds()),
        }
        headers = {"kid": account.private_key_id} if account.private_key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        response = await self._client.post(account.token_uri, data={"grant_type": GRANT_TYPE, "assertion": assertion})
        if response.status_code != 200:
            raise _TokenUnavailable(_token_error(response, now))
        try:
            payload = response.json()
            value = payload["access_token"]
            lifetime = timedelta(seconds=int(payload["expires_in"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise _TokenUnavailable(SendResult(Outcome.RETRY, error_class="fcm.auth.bad_response")) from exc
        if not isinstance(value, str) or not value:
            raise _TokenUnavailable(SendResult(Outcome.RETRY, error_class="fcm.auth.bad_response"))
        return _AccessToken(value, now + lifetime - min(REFRESH_MARGIN, lifetime / 2))


def _token_error(response: httpx.Response, now: datetime) -> SendResult:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    label = error if isinstance(error, str) and error.isidentifier() else f"http.{response.status_code}"
    return SendResult(
        # A refused grant (bad key, unknown account, clock far off) is configuration: retrying will not fix it.
        status_outcome(response.status_code),
        error_class=f"fcm.auth.{label}",
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )


def _error_reason(response: httpx.Response) -> tuple[str | None, str | None]:
    """(`error.status`, FcmError `errorCode`) from a Google API error body, when it is one."""
    if response.is_success:
        return None, None
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None, None
    if not isinstance(error, dict):
        return None, None
    status = error.get("status") if isinstance(error.get("status"), str) else None
    code = None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and detail.get("@type") == FCM_ERROR_TYPE:
            code = detail.get("errorCode") if isinstance(detail.get("errorCode"), str) else code
    return status, code


def _result(response: httpx.Response, status: str | None, code: str | None, now: datetime) -> SendResult:
    if response.is_success:
        try:
            name = response.json().get("name")
        except (ValueError, AttributeError):
            name = None
        return accepted(name if isinstance(name, str) else None)
    reason = code or status
    error_class = f"fcm.{reason}" if reason and reason.isidentifier() else f"http.{response.status_code}"
    # Only Google's UNREGISTERED marks a dead token (FCM sends it with 404 NOT_FOUND). A bare 404 or NOT_FOUND is a
    # wrong base URL or project: treating it as dead would disable every device we know.
    if code == "UNREGISTERED":
        return SendResult(Outcome.DEAD_TOKEN, error_class=error_class)
    return SendResult(
        status_outcome(response.status_code),
        error_class=error_class,
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )
