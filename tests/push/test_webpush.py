"""Web Push against a fake push service that checks VAPID and decrypts the payload as the browser would."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from api.domain.push.providers.base import Outcome, PushMessage
from api.domain.push.providers.webpush import (
    InvalidSubscription,
    WebPushConfig,
    WebPushProvider,
    b64url_encode,
    parse_subscription,
)
from tests.push.fakes.server import Reply
from tests.push.fakes.webpush import FakeWebPush, b64url, point
from tests.push.support import NOW, VAPID_SUBJECT, Keys, Setup, webpush_config

WebPushSetup = Setup[FakeWebPush, WebPushProvider]
MESSAGE = PushMessage(prompt_id=uuid.UUID("5d1c3a8e-0000-4000-8000-000000000003"))


def subscription_token(setup: WebPushSetup) -> str:
    return setup.fake.subscribe(setup.provider.application_server_key).token()


async def test_the_payload_arrives_encrypted_and_the_browser_can_read_it(webpush_setup: WebPushSetup) -> None:
    fake = webpush_setup.fake
    token = subscription_token(webpush_setup)

    result = await webpush_setup.provider.send(token, MESSAGE, now=NOW)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id == f"{fake.url}/wp/messages/1"
    [request] = fake.received
    assert request.plaintext is not None
    assert str(MESSAGE.prompt_id).encode() not in request.body  # encrypted on the wire
    assert json.loads(request.plaintext) == {
        "title": "Interlude",
        "body": "You have a new check-in",
        "data": {"prompt_id": str(MESSAGE.prompt_id)},
    }
    assert request.header("ttl") == "3600"
    assert request.header("urgency") == "high"
    assert request.header("content-encoding") == "aes128gcm"
    assert request.header("content-type") == "application/octet-stream"
    # RFC 8030 §5.4: at most 32 base64url characters. The prompt id, hashed: the body hides it, the header would not.
    assert request.header("topic") == b64url(hashlib.sha256(str(MESSAGE.prompt_id).encode()).digest()[:24])


async def test_the_vapid_token_names_the_push_service_and_expires_within_a_day(webpush_setup: WebPushSetup) -> None:
    fake = webpush_setup.fake

    await webpush_setup.provider.send(subscription_token(webpush_setup), MESSAGE, now=NOW)

    authorization = fake.received[0].header("authorization") or ""
    scheme, _, params = authorization.partition(" ")
    fields = dict(part.strip().split("=", 1) for part in params.split(","))
    assert scheme == "vapid"
    assert fields["k"] == webpush_setup.provider.application_server_key
    assert jwt.get_unverified_header(fields["t"]) == {"alg": "ES256", "typ": "JWT"}
    assert jwt.decode(fields["t"], options={"verify_signature": False}) == {
        "aud": fake.url,
        "exp": int((NOW + timedelta(hours=12)).timestamp()),
        "sub": VAPID_SUBJECT,
    }


async def test_every_message_has_its_own_salt_and_sender_key(webpush_setup: WebPushSetup) -> None:
    token = subscription_token(webpush_setup)

    for _ in range(2):
        assert (await webpush_setup.provider.send(token, MESSAGE, now=NOW)).outcome == Outcome.ACCEPTED

    first, second = webpush_setup.fake.received
    assert first.body[:16] != second.body[:16]  # salt
    assert first.body[21:86] != second.body[21:86]  # sender public key
    assert first.plaintext == second.plaintext


async def test_a_subscription_the_service_no_longer_knows_is_dead(webpush_setup: WebPushSetup) -> None:
    fake = webpush_setup.fake
    expired = fake.subscribe(webpush_setup.provider.application_server_key)
    fake.expire(expired)
    unknown = json.loads(subscription_token(webpush_setup))
    unknown["endpoint"] = f"{fake.url}/wp/never-existed"

    gone = await webpush_setup.provider.send(expired.token(), MESSAGE, now=NOW)
    missing = await webpush_setup.provider.send(json.dumps(unknown), MESSAGE, now=NOW)

    assert (gone.outcome, gone.error_class) == (Outcome.DEAD_TOKEN, "http.410")
    assert (missing.outcome, missing.error_class) == (Outcome.DEAD_TOKEN, "http.404")


@pytest.mark.parametrize(
    ("reply", "outcome", "retry_after"),
    [
        (Reply(429, None, {"retry-after": "10"}), Outcome.RETRY, 10.0),
        (Reply(500), Outcome.RETRY, None),
        (Reply(503, None, {"retry-after": "90"}), Outcome.RETRY, 90.0),
        (Reply(400), Outcome.FAILED, None),
        (Reply(403), Outcome.FAILED, None),
        (Reply(413), Outcome.FAILED, None),
    ],
)
async def test_errors_are_classified(
    webpush_setup: WebPushSetup, reply: Reply, outcome: Outcome, retry_after: float | None
) -> None:
    token = subscription_token(webpush_setup)
    webpush_setup.fake.reply_next(reply)

    result = await webpush_setup.provider.send(token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class, result.retry_after) == (outcome, f"http.{reply.status}", retry_after)


async def test_the_fake_refuses_a_key_other_than_the_subscriptions(webpush_setup: WebPushSetup) -> None:
    """The VAPID check is real: a subscription made for another application server key is refused."""
    fake = webpush_setup.fake
    other_key = b64url(point(ec.generate_private_key(ec.SECP256R1()).public_key()))
    token = fake.subscribe(other_key).token()

    result = await webpush_setup.provider.send(token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.FAILED, "http.403")
    assert fake.problems == ["VAPID key differs from the subscription's"]
    fake.problems.clear()


async def test_the_fake_cannot_read_a_payload_encrypted_for_another_browser(webpush_setup: WebPushSetup) -> None:
    """The decryption check is real: keys swapped between two subscriptions make the payload unreadable."""
    fake = webpush_setup.fake
    mine = json.loads(subscription_token(webpush_setup))
    theirs = json.loads(subscription_token(webpush_setup))
    mine["keys"] = theirs["keys"]

    result = await webpush_setup.provider.send(json.dumps(mine), MESSAGE, now=NOW)

    assert result.outcome == Outcome.FAILED
    assert fake.problems == ["undecryptable: authentication tag mismatch"]
    fake.problems.clear()


@pytest.mark.parametrize(
    "token",
    [
        "not json",
        "[]",
        json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/x"}),
        json.dumps({"endpoint": "https://fcm.googleapis.com/fcm/send/x", "keys": {"p256dh": 1, "auth": 2}}),
        json.dumps({"endpoint": 7, "keys": {"p256dh": "BAAA", "auth": "AAAAAAAAAAAAAAAAAAAAAA"}}),
    ],
)
async def test_a_malformed_subscription_is_dead_and_nothing_is_sent(webpush_setup: WebPushSetup, token: str) -> None:
    result = await webpush_setup.provider.send(token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.DEAD_TOKEN, "webpush.malformed_subscription")
    assert webpush_setup.fake.received == []


def subscription(endpoint: str, *, auth: bytes = b"0123456789abcdef", p256dh: bytes | None = None) -> str:
    key = p256dh if p256dh is not None else point(ec.generate_private_key(ec.SECP256R1()).public_key())
    return json.dumps({"endpoint": endpoint, "keys": {"p256dh": b64url(key), "auth": b64url(auth)}})


PRODUCTION = WebPushConfig(vapid_subject=VAPID_SUBJECT, vapid_private_key="unused-here")


@pytest.mark.parametrize(
    ("endpoint", "origin"),
    [
        ("https://fcm.googleapis.com/fcm/send/dX3", "https://fcm.googleapis.com"),
        ("https://updates.push.services.mozilla.com/wpush/v2/gAAA", "https://updates.push.services.mozilla.com"),
        ("https://web.push.apple.com/QGx", "https://web.push.apple.com"),
        ("https://wns2-par02p.notify.windows.com/w/?token=BQY", "https://wns2-par02p.notify.windows.com"),
        ("https://fcm.googleapis.com:443/fcm/send/dX3", "https://fcm.googleapis.com"),
    ],
)
def test_the_known_push_services_are_accepted(endpoint: str, origin: str) -> None:
    assert parse_subscription(subscription(endpoint), PRODUCTION).origin == origin


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://fcm.googleapis.com/fcm/send/dX3",  # not TLS
        "https://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "https://127.0.0.1:8000/graphql",
        "https://notify.windows.com.attacker.example/w",
        "https://attacker.example/fcm.googleapis.com",
        "https://user:pw@fcm.googleapis.com/fcm/send/dX3",
    ],
)
def test_an_endpoint_outside_the_push_services_is_refused(endpoint: str) -> None:
    with pytest.raises(InvalidSubscription) as refused:
        parse_subscription(subscription(endpoint), PRODUCTION)

    assert refused.value.error_class == "webpush.endpoint_not_allowed"


async def test_a_refused_endpoint_fails_without_disabling_the_device(keys: Keys) -> None:
    provider = WebPushProvider(
        WebPushConfig(vapid_subject=VAPID_SUBJECT, vapid_private_key=webpush_config(keys).vapid_private_key)
    )
    try:
        result = await provider.send(subscription("https://10.0.0.5/internal"), MESSAGE, now=NOW)
    finally:
        await provider.aclose()

    assert (result.outcome, result.error_class) == (Outcome.FAILED, "webpush.endpoint_not_allowed")


@pytest.mark.parametrize(
    "bad",
    [
        {"auth": b"short"},
        {"p256dh": b"\x04" + b"\x01" * 64},  # 65 bytes, but not a point on P-256
    ],
)
def test_keys_of_the_wrong_shape_are_malformed(bad: dict[str, bytes]) -> None:
    with pytest.raises(InvalidSubscription) as refused:
        parse_subscription(subscription("https://fcm.googleapis.com/fcm/send/x", **bad), PRODUCTION)

    assert refused.value.error_class == "webpush.malformed_subscription"


def test_a_raw_base64url_vapid_key_works_like_its_pem(keys: Keys) -> None:
    raw = b64url_encode(keys.vapid.private_numbers().private_value.to_bytes(32, "big"))

    from_raw = WebPushProvider(WebPushConfig(vapid_subject=VAPID_SUBJECT, vapid_private_key=raw))
    from_pem = WebPushProvider(webpush_config(keys))

    assert from_raw.application_server_key == from_pem.application_server_key == b64url(point(keys.vapid.public_key()))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vapid_subject": "ops@interlude.example"}, "subject"),  # a bare address, not a mailto: URI
        ({"ttl": timedelta(0)}, "TTL"),
        ({"urgency": "urgent"}, "urgency"),
    ],
)
def test_a_misconfiguration_is_refused_at_start_up(keys: Keys, changes: dict[str, Any], message: str) -> None:
    config = dataclasses.replace(webpush_config(keys), **changes)

    with pytest.raises(ValueError, match=message):
        WebPushProvider(config)
