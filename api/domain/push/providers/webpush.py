"""Web Push: RFC 8030 delivery, RFC 8291 payload encryption (aes128gcm), RFC 8292 VAPID authentication.

The device token is the browser's subscription JSON (`endpoint`, `keys.p256dh`, `keys.auth`). Its endpoint is a URL
the subscriber chose, so it is checked against the known push services before we POST anything to it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import http_ece  # type: ignore[import-untyped]  # http-ece ships neither type hints nor stubs
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

# The push services of Chrome/Edge-on-Android/Opera/Samsung (FCM), Firefox, Safari and Edge on Windows. A leading
# dot matches any subdomain. Anything else is refused: otherwise a subscription could aim our server at any URL.
DEFAULT_PUSH_SERVICE_HOSTS = (
    "fcm.googleapis.com",
    "android.googleapis.com",
    "updates.push.services.mozilla.com",
    "web.push.apple.com",
    ".notify.windows.com",
)
VAPID_LIFETIME = timedelta(hours=12)  # RFC 8292 allows at most 24 h
DEAD_STATUSES = frozenset({404, 410})
URGENCIES = frozenset({"very-low", "low", "normal", "high"})


@dataclass(frozen=True)
class WebPushConfig:
    vapid_subject: str  # "mailto:…" or "https://…": a push service's way to reach the operator. Keep it neutral.
    vapid_private_key: str = field(repr=False)  # PEM, or the raw 32-byte scalar in base64url as web-push tools print
    allowed_hosts: tuple[str, ...] = DEFAULT_PUSH_SERVICE_HOSTS
    require_https: bool = True
    ttl: timedelta = timedelta(hours=1)  # how long the push service keeps the message for an offline browser
    urgency: str = "high"
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Subscription:
    endpoint: str
    origin: str  # the VAPID audience
    p256dh: bytes = field(repr=False)  # the browser's P-256 public key, uncompressed point
    auth: bytes = field(repr=False)  # the browser's 16-byte authentication secret


class InvalidSubscription(ValueError):
    def __init__(self, error_class: str) -> None:
        super().__init__(error_class)
        self.error_class = error_class


def b64url_decode(value: str) -> bytes:
    value = value.strip().replace("+", "-").replace("/", "_").rstrip("=")
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def b64url_encode(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def load_vapid_key(text: str) -> ec.EllipticCurvePrivateKey:
    if "-----BEGIN" in text:
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ValueError("the VAPID key must be a P-256 key")
        return key
    raw = b64url_decode(text)
    if len(raw) != 32:
        raise ValueError("a raw VAPID private key is 32 bytes")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def public_key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    return any(host.endswith(entry) if entry.startswith(".") else host == entry for entry in allowed)


def parse_subscription(token: str, config: WebPushConfig) -> Subscription:
    """The subscription a browser registered, checked. Also meant for `registerDevice`, to refuse it up front.

    Raises `InvalidSubscription` with `error_class` "webpush.malformed_subscription" (never usable) or
    "webpush.endpoint_not_allowed" (not a push service we know, which may be our list's fault).
    """
    try:
        info = json.loads(token)
        endpoint = info["endpoint"]
        keys = info["keys"]
        p256dh = b64url_decode(keys["p256dh"])
        auth = b64url_decode(keys["auth"])
        url = httpx.URL(endpoint)
        # Validates that the point is on the curve, not merely 65 bytes long.
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error, httpx.InvalidURL) as exc:
        raise InvalidSubscription("webpush.malformed_subscription") from exc
    if not isinstance(endpoint, str) or len(auth) != 16 or not url.host:
        raise InvalidSubscription("webpush.malformed_subscription")
    schemes = {"https"} if config.require_https else {"https", "http"}
    if url.scheme not in schemes or url.userinfo or not host_allowed(url.host, config.allowed_hosts):
        raise InvalidSubscription("webpush.endpoint_not_allowed")
    origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
    return Subscription(endpoint=endpoint, origin=origin, p256dh=p256dh, auth=auth)


def new_client(config: WebPushConfig) -> httpx.AsyncClient:
    return new_http_client(timeout=config.timeout)


class WebPushProvider:
    name = "webpush"

    def __init__(self, config: WebPushConfig, *, client: httpx.AsyncClient | None = None) -> None:
        if not config.vapid_subject.startswith(("mailto:", "https://")):
            raise ValueError("the VAPID subject must be a mailto: or https: URI")
        if config.urgency not in URGENCIES or config.ttl <= timedelta(0):
            raise ValueError("Web Push needs a known urgency and a positive TTL")
        self.config = config
        self._key = load_vapid_key(config.vapid_private_key)
        # The browser is given this key as `applicationServerKey` when it subscribes.
        self.application_server_key = b64url_encode(public_key_bytes(self._key))
        self._owns_client = client is None
        self._client = client or new_client(config)

    async def send(self, token: str, message: PushMessage, *, now: datetime) -> SendResult:
        try:
            subscription = parse_subscription(token, self.config)
        except InvalidSubscription as exc:
            outcome = Outcome.DEAD_TOKEN if exc.error_class == "webpush.malformed_subscription" else Outcome.FAILED
            return SendResult(outcome, error_class=exc.error_class)
        headers = {
            "authorization": f"vapid t={self._vapid_jwt(subscription.origin, now)}, k={self.application_server_key}",
            "ttl": str(int(self.config.ttl.total_seconds())),
            "urgency": self.config.urgency,
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
            # A repeat replaces a message the push service still holds for an offline browser.
            "topic": topic(message),
        }
        body = encrypt(_plaintext(message), subscription)
        try:
            response = await self._client.post(subscription.endpoint, content=body, headers=headers)
        except httpx.TransportError as exc:
            return transport_failure(exc)
        return _result(response, now)

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def _vapid_jwt(self, audience: str, now: datetime) -> str:
        claims = {
            "aud": audience,
            "exp": epoch_seconds(now) + int(VAPID_LIFETIME.total_seconds()),
            "sub": self.config.vapid_subject,
        }
        return jwt.encode(claims, self._key, algorithm="ES256", headers={"typ": "JWT"})


def topic(message: PushMessage) -> str:
    """The same for every send of one prompt, and nothing else: RFC 8030 §5.4 allows 32 characters of the URL-safe
    base64 alphabet (24 bytes). Hashed, unlike APNs' and FCM's collapse ids: the payload is encrypted end to end, so
    the push service never sees the prompt id, and this header is in the clear. For a notification already shown,
    the browser replaces it only if the app's service worker shows each with the prompt id as its `tag`."""
    return b64url_encode(hashlib.sha256(message.collapse_id.encode()).digest()[:24])


def encrypt(plaintext: bytes, subscription: Subscription) -> bytes:
    """RFC 8291: a fresh sender key and salt per message; the record header carries the sender's public key."""
    sender = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        plaintext,
        salt=os.urandom(16),
        private_key=sender,
        dh=subscription.p256dh,
        auth_secret=subscription.auth,
        version="aes128gcm",
    )
    return encrypted


def _plaintext(message: PushMessage) -> bytes:
    payload: dict[str, Any] = {"title": message.title, "body": message.body, "data": message.data()}
    return json.dumps(payload, separators=(",", ":")).encode()


def _result(response: httpx.Response, now: datetime) -> SendResult:
    if response.is_success:
        # RFC 8030 §5: 201 Created, Location naming the push message resource.
        return accepted(response.headers.get("location"))
    error_class = f"http.{response.status_code}"
    if response.status_code in DEAD_STATUSES:
        return SendResult(Outcome.DEAD_TOKEN, error_class=error_class)
    return SendResult(
        status_outcome(response.status_code),
        error_class=error_class,
        retry_after=retry_after_seconds(response.headers.get("retry-after"), now),
    )
