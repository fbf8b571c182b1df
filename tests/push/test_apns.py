"""APNs against a fake that speaks HTTP/2 over TLS and enforces Apple's provider-token rules."""

from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest

from api.domain.push.providers.apns import ApnsConfig, ApnsProvider
from api.domain.push.providers.base import Outcome, PushMessage, new_http_client
from tests.push.fakes.apns import FakeApns, apns_error
from tests.push.fakes.server import Reply, Tls
from tests.push.support import APNS_DEVICE, KEY_ID, NOW, TEAM_ID, TOPIC, Keys, Setup, apns_config, pem

ApnsSetup = Setup[FakeApns, ApnsProvider]
MESSAGE = PushMessage(prompt_id=uuid.UUID("5d1c3a8e-0000-4000-8000-000000000002"))


async def send_at(setup: ApnsSetup, minutes: float = 0) -> tuple[Outcome, str | None]:
    now = NOW + timedelta(minutes=minutes)
    setup.fake.now = now
    result = await setup.provider.send(APNS_DEVICE, MESSAGE, now=now)
    return result.outcome, result.error_class


async def test_an_alert_is_posted_over_http2_with_a_provider_token(apns_setup: ApnsSetup) -> None:
    fake = apns_setup.fake

    result = await apns_setup.provider.send(APNS_DEVICE, MESSAGE, now=NOW)

    assert result.outcome == Outcome.ACCEPTED
    [request] = fake.received
    assert result.provider_message_id is not None
    assert uuid.UUID(result.provider_message_id)
    assert request.http_version == "2"
    assert request.path == f"/3/device/{APNS_DEVICE}"
    assert request.header("apns-topic") == TOPIC
    assert request.header("apns-push-type") == "alert"
    assert request.header("apns-priority") == "10"
    assert request.header("apns-expiration") == str(int(NOW.timestamp()) + 3600)
    assert request.header("apns-collapse-id") == str(MESSAGE.prompt_id)
    assert request.json() == {
        "aps": {"alert": {"title": "Interlude", "body": "You have a new check-in"}, "sound": "default"},
        "prompt_id": str(MESSAGE.prompt_id),
    }
    [token] = fake.provider_tokens
    assert jwt.get_unverified_header(token.value) == {"alg": "ES256", "kid": KEY_ID, "typ": "JWT"}
    assert jwt.decode(token.value, options={"verify_signature": False}) == {
        "iss": TEAM_ID,
        "iat": int(NOW.timestamp()),
    }


async def test_the_provider_token_is_reused_for_50_minutes_then_replaced(apns_setup: ApnsSetup) -> None:
    fake = apns_setup.fake

    for minutes in (0, 10, 19, 25, 49):
        assert await send_at(apns_setup, minutes) == (Outcome.ACCEPTED, None)
    assert [t.iat for t in fake.provider_tokens] == [NOW]

    for minutes in (51, 60, 70, 100):
        assert await send_at(apns_setup, minutes) == (Outcome.ACCEPTED, None)
    assert [t.iat for t in fake.provider_tokens] == [NOW, NOW + timedelta(minutes=51)]


async def test_the_fake_refuses_a_token_replaced_within_20_minutes(apns_setup: ApnsSetup, keys: Keys) -> None:
    """What a provider minting per request would meet: Apple's TooManyProviderTokenUpdates, a RETRY."""
    assert await send_at(apns_setup) == (Outcome.ACCEPTED, None)
    eager = ApnsProvider(apns_setup.provider.config, client=apns_setup.clients[0])  # its own, newer token
    apns_setup.fake.now = NOW + timedelta(minutes=5)

    result = await eager.send(APNS_DEVICE, MESSAGE, now=NOW + timedelta(minutes=5))

    assert (result.outcome, result.error_class) == (Outcome.RETRY, "apns.429.TooManyProviderTokenUpdates")
    assert apns_setup.fake.problems == ["provider token replaced within 20 minutes"]
    apns_setup.fake.problems.clear()


async def test_an_expired_provider_token_is_replaced_at_the_next_send(apns_setup: ApnsSetup) -> None:
    fake = apns_setup.fake
    assert await send_at(apns_setup) == (Outcome.ACCEPTED, None)
    fake.reply_next(apns_error(403, "ExpiredProviderToken"))

    assert await send_at(apns_setup, 25) == (Outcome.RETRY, "apns.403.ExpiredProviderToken")
    assert await send_at(apns_setup, 26) == (Outcome.ACCEPTED, None)

    assert [t.iat for t in fake.provider_tokens] == [NOW, NOW + timedelta(minutes=26)]


async def test_an_expired_provider_token_is_not_replaced_within_20_minutes(apns_setup: ApnsSetup) -> None:
    """Replacing it sooner would earn TooManyProviderTokenUpdates; a clock that far off is for an operator."""
    fake = apns_setup.fake
    assert await send_at(apns_setup) == (Outcome.ACCEPTED, None)
    fake.reply_next(apns_error(403, "ExpiredProviderToken"))

    assert await send_at(apns_setup, 5) == (Outcome.RETRY, "apns.403.ExpiredProviderToken")
    assert await send_at(apns_setup, 6) == (Outcome.ACCEPTED, None)
    assert await send_at(apns_setup, 21) == (Outcome.ACCEPTED, None)

    assert [t.iat for t in fake.provider_tokens] == [NOW, NOW + timedelta(minutes=21)]


@pytest.mark.parametrize(
    ("reply", "outcome", "error_class", "retry_after"),
    [
        (apns_error(410, "Unregistered"), Outcome.DEAD_TOKEN, "apns.410.Unregistered", None),
        (apns_error(400, "BadDeviceToken"), Outcome.DEAD_TOKEN, "apns.400.BadDeviceToken", None),
        (apns_error(400, "DeviceTokenNotForTopic"), Outcome.FAILED, "apns.400.DeviceTokenNotForTopic", None),
        (apns_error(403, "InvalidProviderToken"), Outcome.FAILED, "apns.403.InvalidProviderToken", None),
        (apns_error(413, "PayloadTooLarge"), Outcome.FAILED, "apns.413.PayloadTooLarge", None),
        (apns_error(429, "TooManyRequests", retry_after="60"), Outcome.RETRY, "apns.429.TooManyRequests", 60.0),
        (apns_error(500, "InternalServerError"), Outcome.RETRY, "apns.500.InternalServerError", None),
        (apns_error(503, "ServiceUnavailable", retry_after="5"), Outcome.RETRY, "apns.503.ServiceUnavailable", 5.0),
        (Reply(502, None), Outcome.RETRY, "http.502", None),
    ],
)
async def test_errors_are_classified(
    apns_setup: ApnsSetup, reply: Reply, outcome: Outcome, error_class: str, retry_after: float | None
) -> None:
    apns_setup.fake.reply_next(reply)

    result = await apns_setup.provider.send(APNS_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class, result.retry_after) == (outcome, error_class, retry_after)


async def test_the_fake_refuses_http_1_1(apns_setup: ApnsSetup, tls: Tls) -> None:
    """The HTTP/2 check is real: the same request over HTTP/1.1 is turned away."""
    client = new_http_client(timeout=5, http2=False, verify=tls.client_context)
    provider = ApnsProvider(apns_setup.provider.config, client=client)
    try:
        result = await provider.send(APNS_DEVICE, MESSAGE, now=NOW)
    finally:
        await client.aclose()

    assert (result.outcome, result.error_class) == (Outcome.FAILED, "apns.505.HTTP2Required")
    assert apns_setup.fake.received[0].http_version == "1.1"
    assert apns_setup.fake.problems == ["HTTP/1.1 instead of HTTP/2"]
    apns_setup.fake.problems.clear()


@pytest.mark.parametrize("token", ["", "../../3/device/" + "a" * 64, "zz" * 32, "a1" * 32 + "?x=1", "a1" * 8])
async def test_a_malformed_device_token_never_reaches_apple(apns_setup: ApnsSetup, token: str) -> None:
    result = await apns_setup.provider.send(token, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.DEAD_TOKEN, "apns.malformed_token")
    assert apns_setup.fake.received == []


def test_a_key_that_is_not_p256_is_refused_at_start_up(keys: Keys) -> None:
    config = ApnsConfig(team_id=TEAM_ID, key_id=KEY_ID, topic=TOPIC, private_key=pem(keys.service_account))

    with pytest.raises(ValueError, match="P-256"):
        ApnsProvider(config)


def test_the_signing_key_stays_out_of_reprs(keys: Keys, apns_setup: ApnsSetup) -> None:
    assert "PRIVATE KEY" not in repr(apns_config(keys, apns_setup.fake))
