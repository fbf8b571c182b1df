"""Claims and leases: a dispatcher that dies after claiming leaves rows nobody sends until the lease ends,
dispatchers running side by side send every message exactly once (design §4.5), a slow one stops sending before its
lease ends, and one whose lease ran out anyway never overwrites what the dispatcher that took its rows recorded."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from uuid import UUID, uuid4

import pytest
from tortoise.transactions import in_transaction

from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.push import outbox
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import Outcome, PushProvider, SendResult, accepted
from api.domain.push.providers.base import PushMessage as Payload
from tests.conftest import Database
from tests.factories import Factory

# The lease's clock stands still unless a test moves it: no pass runs out of time by the machine's slowness.
POLICY = DeliveryPolicy(jitter=lambda: 0.0, monotonic=lambda: 0.0)


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


@dataclass
class Stopwatch:
    """The dispatcher's monotonic clock, moved by the test."""

    seconds: float = 0.0

    def __call__(self) -> float:
        return self.seconds


@dataclass
class SlowProvider(Recorder):
    """Accepts everything, each send taking `each` seconds on `clock`. The send that reaches `at` is still waiting
    for its answer when the next dispatch pass runs (`meanwhile`)."""

    clock: Stopwatch = field(default_factory=Stopwatch)
    each: float = 10.0
    at: float = 0.0
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    meanwhile: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, token: str, message: Payload, *, now: datetime) -> SendResult:
        self.clock.seconds += self.each
        if self.clock.seconds >= self.at:
            self.reached.set()
            await self.meanwhile.wait()
        return await super().send(token, message, now=now)


async def test_a_slow_dispatch_stops_before_its_lease_ends_and_the_next_pass_sends_the_rest_once(
    factory: Factory, now: datetime
) -> None:
    """Ten seconds a send, twenty rows, a two-minute lease: sending them all would outlast it, and the pass at the
    lease's end would take over and send the rows still ahead of this one again (design §4.5)."""
    expected = await outbox_rows(factory, now, prompts=10, devices=2)
    clock = Stopwatch()
    slow = SlowProvider("slow", clock=clock, at=POLICY.lease.total_seconds())
    policy = replace(POLICY, monotonic=clock)
    assert policy.send_window == POLICY.lease - timedelta(seconds=30)

    async def slow_pass() -> outbox.DeliveryReport:
        try:
            return await outbox.deliver(providers(slow), policy, now=now)
        finally:
            slow.reached.set()  # the lease's end comes in any case

    async def next_pass() -> outbox.DeliveryReport:
        await slow.reached.wait()
        try:
            return await outbox.deliver(providers(fast), POLICY, now=now + POLICY.lease)
        finally:
            slow.meanwhile.set()

    fast = Recorder("fast")
    first, second = await asyncio.gather(slow_pass(), next_pass())

    # Sends start at 0, 10, … 80 s; at 90 s less than the 30-second margin would be left after the next one.
    assert (first.claimed, first.accepted, first.returned, first.lapsed) == (20, 9, 11, 0)
    assert (second.claimed, second.accepted) == (11, 11)
    assert Counter([*slow.sent, *fast.sent]) == Counter(expected)  # each exactly once
    assert Counter(await PushMessage.all().values_list("status", "attempts")) == {(MessageStatus.ACCEPTED, 1): 20}


@pytest.mark.parametrize(
    ("lease", "margin", "window"),
    [(120, 30, 90), (300, 30, 270), (60, 30, 45), (4, 30, 3)],
    ids=["default", "long", "short", "a-tests"],
)
def test_the_send_window_leaves_the_margin_or_a_quarter_of_the_lease(lease: int, margin: int, window: float) -> None:
    policy = DeliveryPolicy(lease=timedelta(seconds=lease), lease_margin=timedelta(seconds=margin))
    assert policy.send_window == timedelta(seconds=window)


@dataclass
class Answering(Recorder):
    """Answers `result`; the first send waits for `meanwhile` first (the provider is slow to answer)."""

    result: SendResult = field(default_factory=lambda: accepted("late"))
    started: asyncio.Event = field(default_factory=asyncio.Event)
    meanwhile: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, token: str, message: Payload, *, now: datetime) -> SendResult:
        self.sent.append((token, message.prompt_id))
        self.started.set()
        await self.meanwhile.wait()
        return self.result


@pytest.mark.parametrize(
    "late",
    [
        accepted("late-1"),
        SendResult(Outcome.RETRY, error_class="http.503"),
        SendResult(Outcome.FAILED, "late-1", "http.400"),
    ],
    ids=["accepted", "retry", "failed"],
)
async def test_an_answer_after_the_row_was_taken_over_is_not_recorded(
    factory: Factory, now: datetime, late: SendResult
) -> None:
    """A dispatcher stalled past its lease (a pause no clock of its own noticed): the pass after the lease took its
    rows over and recorded them. The stalled one's late answer changes nothing, and it gives back nothing."""
    expected = await outbox_rows(factory, now, prompts=2, devices=2)
    stalled = Answering("stalled", result=late)
    takeover = Recorder("takeover")

    async def stalled_pass() -> outbox.DeliveryReport:
        stop_after_one = replace(POLICY, stopping=lambda: len(stalled.sent) >= 1)
        return await outbox.deliver(providers(stalled), stop_after_one, now=now)

    async def takeover_pass() -> outbox.DeliveryReport:
        await stalled.started.wait()
        try:
            return await outbox.deliver(providers(takeover), POLICY, now=now + POLICY.lease)
        finally:
            stalled.meanwhile.set()

    first, second = await asyncio.gather(stalled_pass(), takeover_pass())

    rows = await PushMessage.all().values_list("status", "attempts", "provider_message_id", "sent_at", "lease_until")
    taken_over = now + POLICY.lease
    assert Counter(rows) == Counter((MessageStatus.ACCEPTED, 2, f"takeover-{i}", taken_over, None) for i in range(1, 5))
    assert Counter(takeover.sent) == Counter(expected)
    assert (second.claimed, second.accepted) == (4, 4)
    assert (first.claimed, first.lapsed, first.returned) == (4, 1, 0)
    assert (first.accepted, first.retried, first.failed) == (0, 0, 0)
