"""A browser vendor's push service (RFC 8030) that, like the browser, decrypts what it is given (RFC 8291).

The decryption here is written from the RFC with `cryptography` alone, not with http_ece, so a mistake shared by
the provider and its encryption library cannot pass unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jwt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.push.fakes.server import FakeService, Reply

URGENCIES = {"very-low", "low", "normal", "high"}
MAX_PAYLOAD = 4096
# RFC 8030 §5.4: no more than 32 characters from the URL and filename safe base64 alphabet.
TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


def b64url(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode()


def unb64url(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


class UndecryptableError(Exception):
    pass


def decrypt_aes128gcm(body: bytes, receiver: ec.EllipticCurvePrivateKey, auth_secret: bytes) -> bytes:
    """RFC 8291 §3.4 key derivation and RFC 8188 §2 record format, for the single record Web Push allows."""
    if len(body) < 21:
        raise UndecryptableError("body shorter than the aes128gcm header")
    salt, record_size, id_length = body[:16], int.from_bytes(body[16:20], "big"), body[20]
    sender_public = body[21 : 21 + id_length]
    ciphertext = body[21 + id_length :]
    if id_length != 65:
        raise UndecryptableError("keyid is not the sender's uncompressed P-256 key")
    if len(ciphertext) > record_size or record_size < 18:
        raise UndecryptableError("Web Push allows one record")
    try:
        sender = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
    except ValueError as exc:
        raise UndecryptableError("keyid is not a P-256 point") from exc
    shared = receiver.exchange(ec.ECDH(), sender)
    receiver_public = point(receiver.public_key())
    ikm = _hmac(_hmac(auth_secret, shared), b"WebPush: info\x00" + receiver_public + sender_public + b"\x01")
    prk = _hmac(salt, ikm)
    cek = _hmac(prk, b"Content-Encoding: aes128gcm\x00\x01")[:16]
    nonce = _hmac(prk, b"Content-Encoding: nonce\x00\x01")[:12]
    try:
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None)
    except InvalidTag as exc:
        raise UndecryptableError("authentication tag mismatch") from exc
    unpadded = padded.rstrip(b"\x00")
    if not unpadded.endswith(b"\x02"):
        raise UndecryptableError("last record must end with delimiter 0x02")
    return unpadded[:-1]


@dataclass
class BrowserSubscription:
    """What a browser holds after `pushManager.subscribe()`: its keys, and the server key it subscribed with."""

    endpoint: str
    application_server_key: bytes
    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    auth: bytes = field(repr=False)

    def token(self) -> str:
        """`PushSubscription.toJSON()`, as the app would register it."""
        keys = {"p256dh": b64url(point(self.private_key.public_key())), "auth": b64url(self.auth)}
        return json.dumps({"endpoint": self.endpoint, "expirationTime": None, "keys": keys})


class FakeWebPush(FakeService):
    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.gone: set[str] = set()

    def subscribe(self, application_server_key: str) -> BrowserSubscription:
        subscription_id = secrets.token_urlsafe(12)
        subscription = BrowserSubscription(
            endpoint=f"{self.url}/wp/{subscription_id}",
            application_server_key=unb64url(application_server_key),
            private_key=ec.generate_private_key(ec.SECP256R1()),
            auth=secrets.token_bytes(16),
        )
        self.subscriptions[subscription_id] = subscription
        return subscription

    def opaque_values(self) -> list[str]:
        values = []
        for subscription_id, subscription in self.subscriptions.items():
            keys = json.loads(subscription.token())["keys"]
            values += [subscription_id, keys["p256dh"], keys["auth"], b64url(subscription.application_server_key)]
        return values

    def expire(self, subscription: BrowserSubscription) -> None:
        self.gone.add(subscription.endpoint.rsplit("/", 1)[1])

    def routes(self) -> list[Route]:
        return [Route("/wp/{subscription}", self.push, methods=["POST"])]

    async def push(self, request: Request) -> Response:
        subscription_id = request.path_params["subscription"]
        subscription = self.subscriptions.get(subscription_id)
        plaintext = None
        if subscription is not None:
            try:
                plaintext = decrypt_aes128gcm(await request.body(), subscription.private_key, subscription.auth)
            except UndecryptableError as exc:
                self.problems.append(f"undecryptable: {exc}")
        received = await self.record(request, plaintext)
        await self.maybe_hang()
        if subscription is None:
            return Response(status_code=404)
        if subscription_id in self.gone:
            return Response(status_code=410)
        refused = self._check_vapid(received.header("authorization"), subscription)
        if refused:
            return refused
        checks = [
            ((received.header("ttl") or "").isdigit(), "TTL missing", Reply(400)),
            (received.header("urgency") in URGENCIES, "urgency", Reply(400)),
            # Optional in RFC 8030; our provider always sets it, so the fake requires it.
            (TOPIC.fullmatch(received.header("topic") or "") is not None, "topic", Reply(400)),
            (received.header("content-encoding") == "aes128gcm", "content-encoding", Reply(415)),
            (len(received.body) <= MAX_PAYLOAD, "too large", Reply(413)),
        ]
        for passed, problem, reply in checks:
            if not passed:
                return self.refuse(problem, reply)
        if plaintext is None:
            return Reply(400).response()  # already recorded as a problem
        location = {"location": f"{self.url}/wp/messages/{len(self.received)}"}
        return (self.scripted() or Reply(201)).response(location)

    def _check_vapid(self, authorization: str | None, subscription: BrowserSubscription) -> Response | None:
        scheme, _, params = (authorization or "").partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme != "vapid" or set(fields) != {"t", "k"}:
            return self.refuse("authorization is not vapid t=…, k=…", Reply(401))
        # RFC 8292 §4.2: the key must be the one the subscription was created with.
        if unb64url(fields["k"]) != subscription.application_server_key:
            return self.refuse("VAPID key differs from the subscription's", Reply(403))
        try:
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
            claims = jwt.decode(
                fields["t"],
                key,
                algorithms=["ES256"],
                audience=self.url,  # the endpoint's origin
                options={"require": ["aud", "exp", "sub"], "verify_exp": False},
            )
        except (ValueError, jwt.PyJWTError) as exc:
            return self.refuse(f"VAPID JWT: {exc}", Reply(401))
        expires = datetime.fromtimestamp(claims["exp"], self.now.tzinfo)
        if not self.now < expires <= self.now + timedelta(hours=24):
            return self.refuse("VAPID exp not within 24 h", Reply(401))
        if not str(claims["sub"]).startswith(("mailto:", "https://")):
            return self.refuse("VAPID sub", Reply(401))
        return None
