"""Google's OAuth token endpoint and the FCM HTTP v1 send endpoint."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.push.fakes.server import FakeService, Reply

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
MESSAGE_KEYS = {"token", "notification", "data", "android", "apns"}
ANDROID_KEYS = {"priority", "ttl", "notification"}
APNS_HEADERS = {"apns-priority", "apns-push-type", "apns-expiration", "apns-collapse-id"}
MAX_COLLAPSE_ID = 64  # bytes, Apple's limit for apns-collapse-id


def fcm_error(status: int, status_text: str, error_code: str | None = None, **headers: str) -> Reply:
    """An error the way Google's APIs write one."""
    error: dict[str, Any] = {"code": status, "message": "fake error", "status": status_text}
    if error_code:
        error["details"] = [{"@type": FCM_ERROR_TYPE, "errorCode": error_code}]
    return Reply(status, {"error": error}, {k.replace("_", "-"): v for k, v in headers.items()})


UNAUTHENTICATED = fcm_error(401, "UNAUTHENTICATED")


class FakeFcm(FakeService):
    def __init__(self, *, project_id: str, client_email: str, public_key: rsa.RSAPublicKey) -> None:
        super().__init__()
        self.project_id = project_id
        self.client_email = client_email
        self.public_key = public_key
        self.expires_in = 3599
        self.access_tokens: dict[str, datetime] = {}  # issued token → when it expires (fake clock)
        self.assertions: list[dict[str, Any]] = []  # verified JWT claims, one per token request
        self.token_replies: list[Reply] = []  # scripted answers of the token endpoint
        self.bearers: list[str] = []  # the access token each send carried

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def routes(self) -> list[Route]:
        return [
            Route("/token", self.token, methods=["POST"]),
            Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
        ]

    def opaque_values(self) -> list[str]:
        return list(self.access_tokens)

    def revoke_access_tokens(self) -> None:
        self.access_tokens.clear()

    async def token(self, request: Request) -> Response:  # noqa: PLR0911 -- one answer per rule Google enforces
        received = await self.record(request)
        await self.maybe_hang()
        invalid_grant = Reply(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
        if received.header("content-type") != "application/x-www-form-urlencoded":
            return self.refuse("token: not a form post", Reply(400, {"error": "invalid_request"}))
        form = parse_qs(received.body.decode())
        if form.get("grant_type") != [GRANT_TYPE] or len(form.get("assertion", [])) != 1:
            return self.refuse("token: wrong grant", Reply(400, {"error": "unsupported_grant_type"}))
        try:
            claims = jwt.decode(
                form["assertion"][0],
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                issuer=self.client_email,
                # Lifetimes are judged below against the fake's clock, not the machine's.
                options={"require": ["iss", "aud", "iat", "exp", "scope"], "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            return self.refuse(f"token: bad assertion ({exc})", invalid_grant)
        issued, expires = datetime.fromtimestamp(claims["iat"], self.now.tzinfo), claims["exp"] - claims["iat"]
        if claims["scope"] != SCOPE:
            return self.refuse("token: wrong scope", Reply(400, {"error": "invalid_scope"}))
        if abs(self.ago(issued)) > timedelta(minutes=1) or not 0 < expires <= 3600:
            return self.refuse("token: assertion lifetime", invalid_grant)
        self.assertions.append(claims)
        if self.token_replies:
            return self.token_replies.pop(0).response()
        token = "ya29.fake-" + secrets.token_urlsafe(16)
        self.access_tokens[token] = self.now + timedelta(seconds=self.expires_in)
        return JSONResponse({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    async def send(self, request: Request) -> Response:
        received = await self.record(request)
        await self.maybe_hang()
        if request.path_params["project"] != self.project_id:
            return self.refuse("send: wrong project", fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"))
        bearer = (received.header("authorization") or "").removeprefix("Bearer ")
        self.bearers.append(bearer)
        expiry = self.access_tokens.get(bearer)
        if expiry is None or self.now >= expiry:
            return self.refuse("send: access token unknown or expired", UNAUTHENTICATED)
        if received.header("content-type") != "application/json":
            return self.refuse("send: not JSON", fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
        problem = message_problem(received.json())
        if problem:
            return self.refuse(f"send: {problem}", fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))
        scripted = self.scripted()
        if scripted:
            return scripted.response()
        name = f"projects/{self.project_id}/messages/{len(self.received)}"
        return JSONResponse({"name": name})


def message_problem(body: Any) -> str | None:  # noqa: PLR0911 -- one return per rule
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict) or set(body) != {"message"}:
        return "body is not {message: …}"
    if set(message) != MESSAGE_KEYS:
        return f"message keys {sorted(message)}"
    if not isinstance(message["token"], str) or not message["token"]:
        return "no token"
    notification = message["notification"]
    if set(notification) != {"title", "body"} or not all(isinstance(v, str) for v in notification.values()):
        return "notification is not {title, body}"
    if not all(isinstance(v, str) for v in message["data"].values()):
        return "data values must be strings"
    android = message["android"]
    if set(android) - ANDROID_KEYS:
        return f"android keys {sorted(android)}"
    if android.get("priority") != "high" or not str(android.get("ttl", "")).removesuffix("s").isdigit():
        return "android priority/ttl"
    # Optional for Google; our provider always sets both collapse fields, so the fake requires them.
    tag = android.get("notification", {}).get("tag")
    if set(android.get("notification", {})) != {"tag"} or not isinstance(tag, str) or not tag:
        return "android.notification is not {tag}"
    apns_headers = message["apns"].get("headers", {})
    if set(apns_headers) - APNS_HEADERS:
        return f"apns headers {sorted(apns_headers)}"
    if apns_headers.get("apns-priority") != "10" or not apns_headers.get("apns-expiration", "").isdigit():
        return "apns headers"
    collapse_id = apns_headers.get("apns-collapse-id")
    if not isinstance(collapse_id, str) or not 0 < len(collapse_id.encode()) <= MAX_COLLAPSE_ID:
        return "apns-collapse-id missing or over 64 bytes"
    return None
