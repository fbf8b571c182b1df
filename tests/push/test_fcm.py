"""FCM HTTP v1 against the fake Google: the OAuth JWT-bearer exchange, access-token caching and error mapping."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from email.utils import format_datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from api.domain.push.providers.base import Outcome, PushMessage
from api.domain.push.providers.fcm import FcmConfig, FcmProvider, ServiceAccount
from tests.push.fakes.fcm import UNAUTHENTICATED, FakeFcm, fcm_error
from tests.push.fakes.server import Reply
from tests.push.support import CLIENT_EMAIL, FCM_DEVICE, NOW, PROJECT_ID, Keys, Setup, pem

FcmSetup = Setup[FakeFcm, FcmProvider]
MESSAGE = PushMessage(prompt_id=uuid.UUID("5d1c3a8e-0000-4000-8000-000000000001"))


async def send_at(setup: FcmSetup, offset: timedelta = timedelta(0)) -> Outcome:
    setup.fake.now = NOW + offset
    return (await setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW + offset)).outcome


async def test_a_message_is_sent_with_a_token_from_the_jwt_bearer_exchange(fcm_setup: FcmSetup) -> None:
    fake = fcm_setup.fake

    result = await fcm_setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id == f"projects/{PROJECT_ID}/messages/2"
    [claims] = fake.assertions
    issued = int(NOW.timestamp())
    assert claims == {
        "iss": CLIENT_EMAIL,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "aud": fake.token_uri,
        "iat": issued,
        "exp": issued + 3600,
    }
    token_request, send = fake.received
    assert token_request.path == "/token"
    assert send.path == f"/v1/projects/{PROJECT_ID}/messages:send"
    assert send.header("authorization") == f"Bearer {next(iter(fake.access_tokens))}"
    assert send.json() == {
        "message": {
            "token": FCM_DEVICE,
            "notification": {"title": "Interlude", "body": "You have a new check-in"},
            "data": {"prompt_id": str(MESSAGE.prompt_id)},
            "android": {"priority": "high", "ttl": "3600s", "notification": {"tag": str(MESSAGE.prompt_id)}},
            "apns": {
                "headers": {
                    "apns-priority": "10",
                    "apns-push-type": "alert",
                    "apns-expiration": str(issued + 3600),
                    "apns-collapse-id": str(MESSAGE.prompt_id),
                },
                "payload": {"aps": {"sound": "default"}},
            },
        }
    }


async def test_the_access_token_is_reused_until_shortly_before_it_expires(fcm_setup: FcmSetup) -> None:
    fake = fcm_setup.fake  # issues tokens that live 3599 s; the provider stops using them 5 minutes early

    for minutes in (0, 1, 30, 54):
        assert await send_at(fcm_setup, timedelta(minutes=minutes)) == Outcome.ACCEPTED
    assert len(fake.assertions) == 1
    assert len(set(fake.bearers)) == 1

    assert await send_at(fcm_setup, timedelta(minutes=55)) == Outcome.ACCEPTED
    assert await send_at(fcm_setup, timedelta(minutes=80)) == Outcome.ACCEPTED

    assert len(fake.assertions) == 2
    assert fake.assertions[1]["iat"] == int((NOW + timedelta(minutes=55)).timestamp())
    assert len(set(fake.bearers)) == 2
    assert fake.bearers[-1] == fake.bearers[-2] != fake.bearers[0]


async def test_a_revoked_access_token_is_replaced_once_and_the_send_repeated(fcm_setup: FcmSetup) -> None:
    fake = fcm_setup.fake
    assert await send_at(fcm_setup) == Outcome.ACCEPTED
    fake.revoke_access_tokens()

    assert await send_at(fcm_setup, timedelta(minutes=2)) == Outcome.ACCEPTED

    assert len(fake.assertions) == 2
    assert fake.problems == ["send: access token unknown or expired"]
    fake.problems.clear()


async def test_a_second_401_fails_after_exactly_one_refresh(fcm_setup: FcmSetup) -> None:
    fake = fcm_setup.fake
    fake.reply_next(UNAUTHENTICATED, UNAUTHENTICATED)

    result = await fcm_setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW)

    assert result.outcome == Outcome.FAILED
    assert result.error_class == "fcm.UNAUTHENTICATED"
    assert len(fake.assertions) == 2
    assert len(fake.bearers) == 2


async def test_a_third_party_auth_error_is_not_retried_with_a_new_token(fcm_setup: FcmSetup) -> None:
    fcm_setup.fake.reply_next(fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"))

    result = await fcm_setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (Outcome.FAILED, "fcm.THIRD_PARTY_AUTH_ERROR")
    assert len(fcm_setup.fake.assertions) == 1


@pytest.mark.parametrize(
    ("reply", "outcome", "error_class", "retry_after"),
    [
        (fcm_error(404, "NOT_FOUND", "UNREGISTERED"), Outcome.DEAD_TOKEN, "fcm.UNREGISTERED", None),
        (fcm_error(400, "INVALID_ARGUMENT", "UNREGISTERED"), Outcome.DEAD_TOKEN, "fcm.UNREGISTERED", None),
        # A 404 without UNREGISTERED is a wrong URL or project: disabling every device for it would be a disaster.
        (fcm_error(404, "NOT_FOUND"), Outcome.FAILED, "fcm.NOT_FOUND", None),
        (Reply(404, None), Outcome.FAILED, "http.404", None),
        (fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), Outcome.FAILED, "fcm.INVALID_ARGUMENT", None),
        (fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), Outcome.FAILED, "fcm.SENDER_ID_MISMATCH", None),
        (
            fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", retry_after="120"),
            Outcome.RETRY,
            "fcm.QUOTA_EXCEEDED",
            120.0,
        ),
        (
            fcm_error(503, "UNAVAILABLE", "UNAVAILABLE", retry_after=format_datetime(NOW + timedelta(seconds=45))),
            Outcome.RETRY,
            "fcm.UNAVAILABLE",
            45.0,
        ),
        (fcm_error(500, "INTERNAL", "INTERNAL"), Outcome.RETRY, "fcm.INTERNAL", None),
        (Reply(502, None, {"retry-after": "7"}), Outcome.RETRY, "http.502", 7.0),
    ],
)
async def test_send_errors_are_classified(
    fcm_setup: FcmSetup, reply: Reply, outcome: Outcome, error_class: str, retry_after: float | None
) -> None:
    fcm_setup.fake.reply_next(reply)

    result = await fcm_setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class, result.retry_after) == (outcome, error_class, retry_after)
    assert result.provider_message_id is None


async def test_a_key_google_does_not_know_is_a_configuration_failure(fcm_setup: FcmSetup, keys: Keys) -> None:
    fake = fcm_setup.fake
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    account = ServiceAccount(
        project_id=PROJECT_ID, client_email=CLIENT_EMAIL, private_key=pem(stranger), token_uri=fake.token_uri
    )
    provider = FcmProvider(FcmConfig(service_account=account, base_url=fake.url, timeout=5))
    try:
        result = await provider.send(FCM_DEVICE, MESSAGE, now=NOW)
    finally:
        await provider.aclose()

    assert (result.outcome, result.error_class) == (Outcome.FAILED, "fcm.auth.invalid_grant")
    assert [p.startswith("token: bad assertion") for p in fake.problems] == [True]
    assert all(r.path == "/token" for r in fake.received)
    fake.problems.clear()


@pytest.mark.parametrize(
    ("reply", "outcome", "error_class"),
    [
        (Reply(503, None, {"retry-after": "30"}), Outcome.RETRY, "fcm.auth.http.503"),
        (Reply(400, {"error": "invalid_grant"}), Outcome.FAILED, "fcm.auth.invalid_grant"),
        (Reply(200, {"token_type": "Bearer"}), Outcome.RETRY, "fcm.auth.bad_response"),
    ],
)
async def test_token_endpoint_failures_are_classified(
    fcm_setup: FcmSetup, reply: Reply, outcome: Outcome, error_class: str
) -> None:
    fcm_setup.fake.token_replies.append(reply)

    result = await fcm_setup.provider.send(FCM_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (outcome, error_class)
    assert [r.path for r in fcm_setup.fake.received] == ["/token"]


def test_the_service_account_file_is_read_as_google_writes_it(keys: Keys) -> None:
    document = {
        "type": "service_account",
        "project_id": PROJECT_ID,
        "private_key_id": "abc123",
        "private_key": pem(keys.service_account),
        "client_email": CLIENT_EMAIL,
        "client_id": "1234567890",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
    }

    account = ServiceAccount.from_json(json.dumps(document))

    assert account == ServiceAccount(
        project_id=PROJECT_ID,
        client_email=CLIENT_EMAIL,
        private_key=pem(keys.service_account),
        token_uri="https://oauth2.googleapis.com/token",
        private_key_id="abc123",
    )
    assert "PRIVATE KEY" not in repr(account)


def test_a_key_that_is_not_rsa_is_refused_at_start_up(keys: Keys) -> None:
    account = ServiceAccount(project_id=PROJECT_ID, client_email=CLIENT_EMAIL, private_key=pem(keys.apns))

    with pytest.raises(ValueError, match="RSA"):
        FcmProvider(FcmConfig(service_account=account))
