"""Claims and leases: a dispatcher that dies after claiming leaves rows nobody sends until the lease ends, and
dispatchers running side by side send every message exactly once (design §4.5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from tortoise.transactions import in_transaction

from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push import outbox
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import PushMessage as Payload
from api.domain.push.providers.base import PushProvider, SendResult, accepted
from tests.conftest import Database
from tests.factories import Factory

POLICY = DeliveryPolicy(jitter=lambda: 0.0)


@dataclass
class Recorder:
    """A provider that accepts everything and remembers (token, prompt) per send."""

    name: str = "recorder"
    sent: list[tuple[str, UUID]] = field(default_factory=list)

    async def send(self, token: str, message: Payload, *, now: datetime) -> SendResult:
        self.sent.append((token, message.prompt_id))
        # Hand control back as a network call would: the other dispatcher runs meanwhile.
        await asyncio.sleep(0)
        return accepted(f"{self.name}-{len(self.sent)}")

    async def aclose(self) -> None:
        return None


def providers(recorder: Recorder) -> dict[ProviderName, PushProvider]:
    return dict.fromkeys(ProviderName, recorder)


async def outbox_rows(factory: Factory, now: datetime, *, prompts: int, devices: int) -> set[tuple[str, UUID]]:
    """`prompts × devices` due messages for one patient, written directly: the funnel that makes them is tested
    elsewhere; here only the outbox matters. Returns each message's (token, prompt) identity."""
    alice = await factory.patient(await factory.clinic(), joined=now)
    clinic_id, patient_id = alice.patient.clinic_id, alice.patient.id
    await Prompt.filter(patient_id=patient_id).delete()
    sent = [
        Prompt(
            id=uuid4(),
            clinic_id=clinic_id,
            patient_id=patient_id,
            plan_id=uuid4(),
            rule_id="load",
            anchor=f"n:{i}",
            instrument="daily_diary",
            due_at=now,
            deliver_at=now,
            expires_at=now + timedelta(hours=6),
            status=PromptStatus.SENT,
            sent_at=now,
            created_at=now,
            updated_at=now,
        )
        for i in range(prompts)
    ]
    phones = [
        Device(
            id=uuid4(),
            clinic_id=clinic_id,
            patient_id=patient_id,
            provider=ProviderName.FCM,
            token=f"token-{i}",
            token_hash=f"{i:064x}",
            created_at=now,
            last_seen_at=now,
        )
        for i in range(devices)
    ]
    await Prompt.bulk_create(sent)
    await Device.bulk_create(phones)
    await PushMessage.bulk_create(
        [
            PushMessage(
                clinic_id=clinic_id,
                prompt_id=p.id,
                device_id=d.id,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
            for p in sent
            for d in phones
        ],
        batch_size=1000,
    )
    return {(d.token, p.id) for p in sent for d in phones}


async def test_a_crashed_claim_is_sent_by_nobody_until_its_lease_ends(factory: Factory, now: datetime) -> None:
    expected = await outbox_rows(factory, now, prompts=3, devices=2)
    crashed = await outbox._claim(POLICY, now)  # claimed, committed, and then the process died
    assert {m.status for m in crashed} == {MessageStatus.CLAIMED}
    assert len(crashed) == len(expected)
    recorder = Recorder()

    for moment in (now, now + timedelta(minutes=1), now + POLICY.lease - timedelta(seconds=1)):
        report = await outbox.deliver(providers(recorder), POLICY, now=moment)
        assert report.claimed == 0
    assert recorder.sent == []

    after_lease = now + POLICY.lease
    report = await outbox.deliver(providers(recorder), POLICY, now=after_lease)
    again = await outbox.deliver(providers(recorder), POLICY, now=after_lease + timedelta(minutes=5))

    assert (report.claimed, report.accepted, again.claimed) == (len(expected), len(expected), 0)
    assert Counter(recorder.sent) == Counter(expected)
    rows = await PushMessage.all()
    assert {(m.status, m.attempts, m.lease_until, m.sent_at) for m in rows} == {
        (MessageStatus.ACCEPTED, 2, None, after_lease)
    }


async def dispatcher(recorder: Recorder, now: datetime) -> int:
    """One dispatcher process: deliver passes until the outbox has nothing for it."""
    passes = 0
    while (await outbox.deliver(providers(recorder), POLICY, now=now)).claimed:
        passes += 1
    return passes


async def test_two_dispatchers_send_every_message_exactly_once(factory: Factory, now: datetime) -> None:
    expected = await outbox_rows(factory, now, prompts=50, devices=41)  # 2,050 messages, ten batches and more
    first, second = Recorder("first"), Recorder("second")

    passes = await asyncio.gather(dispatcher(first, now), dispatcher(second, now))

    together = Counter([*first.sent, *second.sent])
    assert len(together) == len(expected) == 2050
    assert together == Counter(expected)  # each once: none twice, none missing
    assert first.sent, passes  # both took part
    assert second.sent, passes
    statuses = Counter(await PushMessage.all().values_list("status", "attempts"))
    assert statuses == {(MessageStatus.ACCEPTED, 1): 2050}


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_a_claim_skips_rows_another_connection_holds(db: Database, factory: Factory, now: datetime) -> None:
    """PostgreSQL: while one transaction holds rows (FOR UPDATE), a dispatcher on another connection passes them
    over at once (SKIP LOCKED) — it neither waits nor sends them — and takes the rest."""
    assert db.backend == "postgres"
    expected = await outbox_rows(factory, now, prompts=4, devices=5)
    held_ids: list[UUID] = []
    holding, finish = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with in_transaction() as conn:
            rows = await PushMessage.filter().order_by("id").limit(8).select_for_update().using_db(conn)
            held_ids.extend(r.id for r in rows)
            holding.set()
            await finish.wait()

    holder = asyncio.create_task(hold())
    await holding.wait()
    recorder = Recorder()
    try:
        report = await asyncio.wait_for(outbox.deliver(providers(recorder), POLICY, now=now), timeout=10)
    finally:
        finish.set()
        await holder

    assert report.claimed == len(expected) - len(held_ids) == 12
    sent_rows = set(await PushMessage.filter(status=MessageStatus.ACCEPTED).values_list("id", flat=True))
    assert not sent_rows & set(held_ids)
    rest = await outbox.deliver(providers(recorder), POLICY, now=now)
    assert rest.claimed == len(held_ids)
    assert Counter(recorder.sent) == Counter(expected)
