"""Issue 5, proof: the jobs process is killed mid-dispatch and restarted; no message is lost, none is sent twice.

`interlude jobs` runs as a real process on the scratch database, sending through the Expo provider to a fake Expo on
127.0.0.1 that records every message by identity (device token, prompt id). The fake takes the 60th send and holds
its answer, so the process is always killed at the same point: in the middle of a send, with 59 recorded before it
and 140 claimed behind it.

What is guaranteed, and proven here:
- SIGKILL: every message goes out; each goes out exactly once except the one send in hand at the instant of the kill,
  which the provider had taken and the database had not recorded. That one goes out once more after the lease, to
  the same device with the same prompt id. No provider can be asked afterwards whether it took a request, and none
  drops a repeated one (none has an idempotency key): exactly once is not possible for that send. APNs, FCM and Web
  Push are given the prompt id as collapse key (tests/push/test_collapse.py), so the phone shows the repeat in place
  of the first; Expo has no such field, and the app can recognise the repeat by its prompt id.
- SIGTERM: exactly once. The dispatcher finishes and records the send in hand, gives the rest of its claim back at
  once, and a restarted process sends the rest.
"""

from __future__ import annotations

import signal
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from api.container import build_job_config
from api.domain.push import outbox
from api.domain.push.models import MessageStatus, ProviderName
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import PushMessage as Payload
from api.domain.push.providers.base import PushProvider, SendResult, accepted
from jobs.scheduler import JobClock
from tests.conftest import NOW, Database, make_settings
from tests.factories import Factory
from tests.resilience.jobs_support import (
    HoldingExpo,
    Identity,
    JobsProcess,
    Row,
    counts,
    jobs_environment,
    outbox_rows,
    seed_outbox,
    serving,
    tally,
)

PHONES, PROMPTS = 25, 12  # 300 messages: a first claim of BATCH, then the rest
BATCH = DeliveryPolicy().batch
HOLD_AT = 60
ACCEPTED, CLAIMED, PENDING = MessageStatus.ACCEPTED, MessageStatus.CLAIMED, MessageStatus.PENDING


async def test_a_killed_dispatcher_loses_nothing_and_repeats_only_its_send_in_hand(
    db: Database, factory: Factory
) -> None:
    expected = await seed_outbox(factory, phones=PHONES, prompts=PROMPTS)
    async with serving(HoldingExpo(hold_at=HOLD_AT)) as fake:
        first = await JobsProcess.start(jobs_environment(db, fake))
        try:
            await first.until(fake.holding.wait(), f"send {HOLD_AT}")
            await first.kill()
        finally:
            await first.close()

        killed = await outbox_rows()
        # Taken by the provider, not recorded as sent: the only message whose fate the outbox cannot know.
        in_hand = {m for m in fake.sends if killed[m].status is not ACCEPTED}
        assert in_hand == {fake.sends[-1]}
        assert killed[fake.sends[-1]] == Row(CLAIMED, 1, leased=True)
        assert tally(killed) == {
            Row(ACCEPTED, 1, leased=False): HOLD_AT - 1,
            Row(CLAIMED, 1, leased=True): BATCH - (HOLD_AT - 1),  # the dead process's claim, until its lease ends
            Row(PENDING, 0, leased=False): len(expected) - BATCH,
        }

        fake.let_go()  # the dead process's request: answered into a closed connection
        second = await JobsProcess.start(jobs_environment(db, fake))
        try:
            await second.until(fake.until_sends(len(expected) + len(in_hand)), "every message")
            assert await second.terminate() == 0
        finally:
            await second.close()

    assert Counter(fake.sends) == Counter(expected) + Counter(in_hand)  # none lost; none twice but the one in hand
    assert tally(await outbox_rows()) == {
        Row(ACCEPTED, 1, leased=False): HOLD_AT - 1 + len(expected) - BATCH,
        Row(ACCEPTED, 2, leased=False): BATCH - (HOLD_AT - 1),  # claimed by both processes, sent by the second
    }
    assert second.problems() == []
    assert fake.problems == []


async def test_a_stopped_dispatcher_records_its_send_in_hand_and_gives_the_rest_back(
    db: Database, factory: Factory
) -> None:
    expected = await seed_outbox(factory, phones=PHONES, prompts=PROMPTS)
    async with serving(HoldingExpo(hold_at=HOLD_AT)) as fake:
        first = await JobsProcess.start(jobs_environment(db, fake))
        try:
            await first.until(fake.holding.wait(), f"send {HOLD_AT}")
            first.process.send_signal(signal.SIGTERM)
            await first.until_logged("jobs.stopping")
            fake.let_go()  # the send in hand is answered after the stop began
            assert await first.exit() == 0
        finally:
            await first.close()

        assert first.problems() == []
        assert first.logged("jobs.stopped")
        [dispatch] = [counts(e) for e in first.logged("push.dispatch")]
        assert (dispatch["claimed"], dispatch["accepted"], dispatch["returned"]) == (BATCH, HOLD_AT, BATCH - HOLD_AT)
        stopped = await outbox_rows()
        assert {m for m, row in stopped.items() if row.status is ACCEPTED} == set(fake.sends)
        assert tally(stopped) == {
            Row(ACCEPTED, 1, leased=False): HOLD_AT,
            Row(PENDING, 0, leased=False): len(expected) - HOLD_AT,  # given back unclaimed, or never claimed
        }

        second = await JobsProcess.start(jobs_environment(db, fake))
        try:
            await second.until(fake.until_sends(len(expected)), "every message")
            assert await second.terminate() == 0
        finally:
            await second.close()

    assert Counter(fake.sends) == Counter(expected)  # each exactly once
    assert tally(await outbox_rows()) == {Row(ACCEPTED, 1, leased=False): len(expected)}
    assert second.problems() == []
    assert fake.problems == []


class Recorder:
    """Accepts everything, remembering each message's identity."""

    name = "recorder"

    def __init__(self) -> None:
        self.sent: list[Identity] = []

    async def send(self, token: str, message: Payload, *, now: datetime) -> SendResult:
        self.sent.append((token, message.prompt_id))
        return accepted(f"recorded-{len(self.sent)}")

    async def aclose(self) -> None:
        return None


def providers(recorder: Recorder) -> dict[ProviderName, PushProvider]:
    return dict.fromkeys(ProviderName, recorder)


async def test_a_dispatch_asked_to_stop_gives_back_what_it_has_not_sent(factory: Factory, now: datetime) -> None:
    expected = await seed_outbox(factory, phones=2, prompts=3)
    recorder = Recorder()
    stopping = DeliveryPolicy(jitter=lambda: 0.0, stopping=lambda: len(recorder.sent) >= 2)

    report = await outbox.deliver(providers(recorder), stopping, now=now)

    assert (report.claimed, report.accepted, report.returned) == (6, 2, 4)
    assert tally(await outbox_rows()) == {Row(ACCEPTED, 1, leased=False): 2, Row(PENDING, 0, leased=False): 4}
    rest = await outbox.deliver(providers(recorder), DeliveryPolicy(jitter=lambda: 0.0), now=now)  # due at once
    assert (rest.claimed, rest.accepted) == (4, 4)
    assert Counter(recorder.sent) == Counter(expected)


async def test_a_claim_gives_back_only_rows_it_still_holds(factory: Factory, now: datetime) -> None:
    await seed_outbox(factory, phones=2, prompts=2)
    policy = DeliveryPolicy(jitter=lambda: 0.0)
    lapsed = await outbox._claim(policy, now)
    current = await outbox._claim(policy, now + policy.lease)  # the first claim's lease ran out: all taken over

    assert await outbox._give_back(lapsed, now) == 0
    assert tally(await outbox_rows()) == {Row(CLAIMED, 2, leased=True): 4}
    assert await outbox._give_back(current, now) == 4
    assert tally(await outbox_rows()) == {Row(PENDING, 1, leased=False): 4}


@pytest.mark.parametrize(("lease", "every"), [(120, 15), (40, 10), (2, 0.5)])
async def test_the_outbox_is_swept_every_quarter_lease_at_most_every_15_seconds(lease: int, every: float) -> None:
    config = build_job_config(make_settings())
    jobs = JobClock(replace(config, delivery=DeliveryPolicy(lease=timedelta(seconds=lease))), lambda: NOW)
    jobs.scheduler.start(paused=True)
    try:
        dispatch = jobs.scheduler.get_job("push.dispatch")
        assert dispatch is not None
        assert dispatch.trigger.interval == timedelta(seconds=every)
    finally:
        jobs.scheduler.shutdown(wait=False)
