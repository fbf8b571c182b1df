"""Expo receipts through the outbox: a ticket is not a delivery (design §4.4, research/tech.md §5.3)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
import pytest_asyncio

from api.container import build_job_config
from api.domain.prompt.models import Prompt
from api.domain.push import devices, receipts
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.providers.base import PushProvider
from jobs.passes import JobConfig, dispatch
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser
from tests.push.fakes.expo import FakeExpo
from tests.push.fakes.server import Reply
from tests.push.support import EXPO_DEVICE, Keys, Running, running

pytestmark = pytest.mark.usefixtures("db")


@pytest_asyncio.fixture
async def expo(keys: Keys) -> AsyncIterator[Running]:
    async with running("expo", keys, None) as setup:
        yield setup


@pytest_asyncio.fixture
async def sent(factory: Factory, expo: Running, now: datetime) -> tuple[PatientUser, PushMessage]:
    """One daily-diary push accepted by Expo with a ticket id."""
    who = await factory.patient(await factory.clinic(), joined=now - timedelta(days=2), timezone="UTC")
    await devices.register(who.actor, ProviderName.EXPO, EXPO_DEVICE, "ios", now=now)
    prompt = await Prompt.filter(patient_id=who.patient.id, instrument="daily_diary").order_by("due_at").first()
    assert prompt is not None
    at = prompt.deliver_at
    expo.fake.now = at
    await dispatch(config(expo.provider), at)
    message = await PushMessage.get(prompt_id=prompt.id)
    assert message.status is MessageStatus.ACCEPTED
    assert message.provider_message_id
    return who, message


def fake(setup: Running) -> FakeExpo:
    assert isinstance(setup.fake, FakeExpo)
    return setup.fake


def config(provider: PushProvider) -> JobConfig:
    return build_job_config(make_settings(), dict.fromkeys(ProviderName, provider))


async def check(expo: Running, at: datetime) -> receipts.ReceiptReport:
    expo.fake.now = at
    return await receipts.check_receipts({ProviderName.EXPO: expo.provider}, now=at)


async def test_receipts_wait_fifteen_minutes_then_confirm(expo: Running, sent: tuple[PatientUser, PushMessage]) -> None:
    _, message = sent
    assert message.sent_at is not None
    assert message.provider_message_id is not None
    fake(expo).receipts[message.provider_message_id] = {"status": "ok"}
    early = await check(expo, message.sent_at + timedelta(minutes=5))
    assert early.checked == 0
    assert fake(expo).receipt_requests == []
    report = await check(expo, message.sent_at + timedelta(minutes=20))
    assert (report.checked, report.confirmed) == (1, 1)
    # Every accepted ticket is asked about in one request (other prompts were released at the same time).
    [asked] = fake(expo).receipt_requests
    assert message.provider_message_id in asked
    again = await check(expo, message.sent_at + timedelta(minutes=40))
    assert again.checked == 0  # a confirmed receipt is not fetched twice


async def test_device_not_registered_in_a_receipt_disables_the_device(
    expo: Running, sent: tuple[PatientUser, PushMessage]
) -> None:
    who, message = sent
    assert message.sent_at is not None
    assert message.provider_message_id is not None
    fake(expo).receipts[message.provider_message_id] = {
        "status": "error",
        "message": "gone",
        "details": {"error": "DeviceNotRegistered"},
    }
    report = await check(expo, message.sent_at + timedelta(minutes=20))
    assert report.dead_tokens == 1
    stored = await PushMessage.get(id=message.id)
    assert stored.status is MessageStatus.DEAD_TOKEN
    device = await Device.get(patient_id=who.patient.id)
    assert device.disabled_at is not None


async def test_a_retry_receipt_puts_the_message_back_and_it_is_sent_again(
    expo: Running, sent: tuple[PatientUser, PushMessage]
) -> None:
    _, message = sent
    assert message.sent_at is not None
    assert message.provider_message_id is not None
    fake(expo).receipts[message.provider_message_id] = {
        "status": "error",
        "message": "slow down",
        "details": {"error": "MessageRateExceeded"},
    }
    at = message.sent_at + timedelta(minutes=20)
    assert (await check(expo, at)).resent == 1
    assert (await PushMessage.get(id=message.id)).status is MessageStatus.PENDING
    sends_before = len([r for r in expo.fake.received if r.path.endswith("/push/send")])
    await dispatch(config(expo.provider), at)
    resent = await PushMessage.get(id=message.id)
    assert resent.status is MessageStatus.ACCEPTED
    assert len([r for r in expo.fake.received if r.path.endswith("/push/send")]) == sends_before + 1


async def test_a_receipt_not_ready_is_asked_again_and_a_failed_request_changes_nothing(
    expo: Running, sent: tuple[PatientUser, PushMessage]
) -> None:
    _, message = sent
    assert message.sent_at is not None
    not_ready = await check(expo, message.sent_at + timedelta(minutes=20))
    assert not_ready.checked == 0
    expo.fake.replies.append(Reply(503, {"errors": [{"code": "INTERNAL"}]}))
    waiting = await PushMessage.filter(status=MessageStatus.ACCEPTED, receipt_checked_at=None).count()
    assert waiting >= 1
    failed = await check(expo, message.sent_at + timedelta(minutes=30))
    assert failed.unavailable == waiting
    assert await PushMessage.filter(status=MessageStatus.ACCEPTED, receipt_checked_at=None).count() == waiting
