"""Expo's push API against a fake: tickets on send, receipts later."""

from __future__ import annotations

import uuid

import pytest

from api.domain.push.providers.base import Outcome, PushMessage, SendResult
from api.domain.push.providers.expo import ExpoConfig, ExpoProvider, ReceiptCheckFailed
from tests.push.fakes.expo import FakeExpo, error_ticket, request_errors
from tests.push.fakes.server import Reply
from tests.push.support import EXPO_DEVICE, NOW, Setup

ExpoSetup = Setup[FakeExpo, ExpoProvider]
MESSAGE = PushMessage(prompt_id=uuid.UUID("5d1c3a8e-0000-4000-8000-000000000004"))


async def test_an_ok_ticket_is_accepted_with_its_id(expo_setup: ExpoSetup) -> None:
    result = await expo_setup.provider.send(EXPO_DEVICE, MESSAGE, now=NOW)

    assert result.outcome == Outcome.ACCEPTED
    assert result.provider_message_id is not None
    assert uuid.UUID(result.provider_message_id)
    [request] = expo_setup.fake.received
    assert request.path == "/--/api/v2/push/send"
    assert request.header("authorization") is None
    assert request.json() == [
        {
            "to": EXPO_DEVICE,
            "title": "Interlude",
            "body": "You have a new check-in",
            "data": {"prompt_id": str(MESSAGE.prompt_id)},
            "priority": "high",
            "ttl": 3600,
        }
    ]


async def test_the_access_token_is_sent_when_configured(expo_setup: ExpoSetup) -> None:
    fake = expo_setup.fake
    fake.access_token = "expo-access-token"
    right = ExpoProvider(ExpoConfig(base_url=fake.url, access_token="expo-access-token"))
    wrong = ExpoProvider(ExpoConfig(base_url=fake.url, access_token="stale-token"))
    try:
        accepted = await right.send(EXPO_DEVICE, MESSAGE, now=NOW)
        refused = await wrong.send(EXPO_DEVICE, MESSAGE, now=NOW)
    finally:
        await right.aclose()
        await wrong.aclose()

    assert accepted.outcome == Outcome.ACCEPTED
    assert (refused.outcome, refused.error_class) == (Outcome.FAILED, "expo.UNAUTHORIZED")
    assert fake.received[0].header("authorization") == "Bearer expo-access-token"
    assert fake.problems == ["access token"]
    fake.problems.clear()


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("DeviceNotRegistered", Outcome.DEAD_TOKEN),
        ("MessageRateExceeded", Outcome.RETRY),
        ("MessageTooBig", Outcome.FAILED),
        ("InvalidCredentials", Outcome.FAILED),
        ("MismatchSenderId", Outcome.FAILED),
        ("SomethingNew", Outcome.FAILED),
    ],
)
async def test_error_tickets_are_classified(expo_setup: ExpoSetup, code: str, outcome: Outcome) -> None:
    expo_setup.fake.tickets.append(error_ticket(code))

    result = await expo_setup.provider.send(EXPO_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class) == (outcome, f"expo.{code}")


@pytest.mark.parametrize(
    ("reply", "outcome", "error_class", "retry_after"),
    [
        (request_errors(429, "TOO_MANY_REQUESTS", retry_after="30"), Outcome.RETRY, "expo.TOO_MANY_REQUESTS", 30.0),
        (request_errors(400, "VALIDATION_ERROR"), Outcome.FAILED, "expo.VALIDATION_ERROR", None),
        (Reply(500, None), Outcome.RETRY, "http.500", None),
        (Reply(503, None, {"retry-after": "12"}), Outcome.RETRY, "http.503", 12.0),
        (Reply(200, {"data": "nonsense"}), Outcome.RETRY, "expo.bad_response", None),
    ],
)
async def test_refused_requests_are_classified(
    expo_setup: ExpoSetup, reply: Reply, outcome: Outcome, error_class: str, retry_after: float | None
) -> None:
    expo_setup.fake.reply_next(reply)

    result = await expo_setup.provider.send(EXPO_DEVICE, MESSAGE, now=NOW)

    assert (result.outcome, result.error_class, result.retry_after) == (outcome, error_class, retry_after)


async def test_receipts_say_whether_apple_or_google_took_the_message(expo_setup: ExpoSetup) -> None:
    fake, provider = expo_setup.fake, expo_setup.provider
    ids = [(await provider.send(EXPO_DEVICE, MESSAGE, now=NOW)).provider_message_id for _ in range(4)]
    delivered, dead, throttled, pending = [i for i in ids if i is not None]
    fake.receipts[delivered] = {"status": "ok"}
    fake.receipts[dead] = error_ticket("DeviceNotRegistered")
    fake.receipts[throttled] = error_ticket("MessageRateExceeded")

    receipts = await provider.check_receipts([delivered, dead, throttled, pending], now=NOW)

    assert receipts == {
        delivered: SendResult(Outcome.ACCEPTED, provider_message_id=delivered),
        dead: SendResult(Outcome.DEAD_TOKEN, provider_message_id=dead, error_class="expo.DeviceNotRegistered"),
        throttled: SendResult(Outcome.RETRY, provider_message_id=throttled, error_class="expo.MessageRateExceeded"),
    }
    assert fake.received[-1].path == "/--/api/v2/push/getReceipts"
    assert fake.receipt_requests == [[delivered, dead, throttled, pending]]


async def test_receipts_are_asked_for_in_batches(expo_setup: ExpoSetup) -> None:
    fake = expo_setup.fake
    provider = ExpoProvider(ExpoConfig(base_url=fake.url, max_receipt_ids=2))
    ids = [f"ticket-{n}" for n in range(5)]
    fake.receipts.update({i: {"status": "ok"} for i in ids})
    try:
        receipts = await provider.check_receipts(ids, now=NOW)
    finally:
        await provider.aclose()

    assert set(receipts) == set(ids)
    assert fake.receipt_requests == [ids[0:2], ids[2:4], ids[4:5]]


async def test_a_failed_receipt_request_is_an_exception_with_what_was_fetched(expo_setup: ExpoSetup) -> None:
    """Distinct from a receipt saying "retry": nothing is known about these tickets, so nothing is re-sent."""
    fake = expo_setup.fake
    provider = ExpoProvider(ExpoConfig(base_url=fake.url, max_receipt_ids=1))
    fake.receipts["first"] = {"status": "ok"}
    fake.reply_next(Reply(200, {"data": {"first": {"status": "ok"}}}), Reply(503, None, {"retry-after": "60"}))
    try:
        with pytest.raises(ReceiptCheckFailed) as failed:
            await provider.check_receipts(["first", "second"], now=NOW)
    finally:
        await provider.aclose()

    assert failed.value.result == SendResult(Outcome.RETRY, error_class="http.503", retry_after=60.0)
    assert failed.value.partial == {"first": SendResult(Outcome.ACCEPTED, provider_message_id="first")}


async def test_no_ids_means_no_request(expo_setup: ExpoSetup) -> None:
    assert await expo_setup.provider.check_receipts([], now=NOW) == {}
    assert expo_setup.fake.received == []
