"""Apple's APNs provider API: HTTP/2 only, ES256 provider tokens with Apple's refresh rules."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.push.fakes.server import FakeService, Reply

HEX_TOKEN = re.compile(r"[0-9a-f]{64}")
MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64  # bytes


def apns_error(status: int, reason: str, **headers: str) -> Reply:
    body: dict[str, object] = {"reason": reason}
    if status == 410:
        body["timestamp"] = 1_790_000_000_000
    return Reply(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


@dataclass(frozen=True)
class ProviderToken:
    value: str
    iat: datetime
    first_seen: datetime  # the fake's clock when it first arrived


class FakeApns(FakeService):
    def __init__(self, *, team_id: str, key_id: str, topic: str, public_key: ec.EllipticCurvePublicKey) -> None:
        super().__init__()
        self.team_id = team_id
        self.key_id = key_id
        self.topic = topic
        self.public_key = public_key
        self.provider_tokens: list[ProviderToken] = []  # each distinct token accepted, in order

    def routes(self) -> list[Route]:
        return [Route("/3/device/{device}", self.push, methods=["POST"])]

    async def push(self, request: Request) -> Response:
        received = await self.record(request)
        await self.maybe_hang()
        if received.http_version != "2":
            return self.refuse(f"HTTP/{received.http_version} instead of HTTP/2", apns_error(505, "HTTP2Required"))
        if not HEX_TOKEN.fullmatch(request.path_params["device"]):
            return self.refuse("malformed device token", apns_error(400, "BadDeviceToken"))
        auth_error = self._check_provider_token(received.header("authorization"))
        if auth_error:
            return auth_error
        topic = received.header("apns-topic")
        collapse_id = received.header("apns-collapse-id")
        checks = [
            (topic == self.topic, apns_error(400, "MissingTopic" if topic is None else "TopicDisallowed")),
            (received.header("apns-push-type") == "alert", apns_error(400, "InvalidPushType")),
            (received.header("apns-priority") == "10", apns_error(400, "BadPriority")),
            ((received.header("apns-expiration") or "").isdigit(), apns_error(400, "BadExpirationDate")),
            (len(received.body) <= MAX_PAYLOAD, apns_error(413, "PayloadTooLarge")),
            # Optional for Apple; our provider always sets it, so the fake requires it.
            (0 < len((collapse_id or "").encode()) <= MAX_COLLAPSE_ID, apns_error(400, "BadCollapseId")),
        ]
        for passed, error in checks:
            if not passed:
                return self.refuse(f"headers/size: {error.body}", error)
        body = received.json()
        alert = body.get("aps", {}).get("alert") if isinstance(body, dict) else None
        if not isinstance(alert, dict) or set(alert) != {"title", "body"}:
            return self.refuse("aps.alert is not {title, body}", apns_error(400, "PayloadEmpty"))
        return (self.scripted() or Reply(200)).response({"apns-id": str(uuid.uuid4()).upper()})

    def _check_provider_token(self, authorization: str | None) -> Response | None:  # noqa: PLR0911 -- one answer per rule
        if not authorization or not authorization.startswith("bearer "):
            return self.refuse("no provider token", apns_error(403, "MissingProviderToken"))
        value = authorization.removeprefix("bearer ")
        invalid = apns_error(403, "InvalidProviderToken")
        try:
            header = jwt.get_unverified_header(value)
            claims = jwt.decode(
                value,
                self.public_key,
                algorithms=["ES256"],
                issuer=self.team_id,
                options={"require": ["iss", "iat"], "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            return self.refuse(f"provider token: {exc}", invalid)
        if header.get("kid") != self.key_id or header.get("alg") != "ES256":
            return self.refuse("provider token header", invalid)
        iat = datetime.fromtimestamp(claims["iat"], self.now.tzinfo)
        if iat > self.now + timedelta(minutes=1):
            return self.refuse("provider token issued in the future", invalid)
        if self.ago(iat) > timedelta(hours=1):
            return self.refuse("provider token older than an hour", apns_error(403, "ExpiredProviderToken"))
        current = self.provider_tokens[-1] if self.provider_tokens else None
        if current is None or current.value != value:
            if current is not None and self.ago(current.first_seen) < timedelta(minutes=20):
                return self.refuse(
                    "provider token replaced within 20 minutes", apns_error(429, "TooManyProviderTokenUpdates")
                )
            self.provider_tokens.append(ProviderToken(value, iat, self.now))
        return None
