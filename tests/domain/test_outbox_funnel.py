"""The delivery funnel with devices: release → outbox rows → provider, reminders, quiet hours, the daily cap, dead
tokens, retries and drops (design §4.3–4.4). Time moves only by the `now` each pass is given."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from api.container import build_job_config
from api.domain.diary.validation import DiaryInput
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.prompt.rules import Rule, RuleKind
from api.domain.prompt.scheduling import SchedulingPolicy, plan_all
from api.domain.prompt.service import PreferenceChange, PromptEvent
from api.domain.push import devices, outbox
from api.domain.push.models import Device, MessageStatus, ProviderName, PushMessage
from api.domain.push.outbox import DeliveryPolicy
from api.domain.push.providers.base import Outcome, PushProvider, SendResult, accepted
from api.domain.push.providers.base import PushMessage as Payload
from api.domain.services import Services
from jobs.passes import JobConfig, tick
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser, Staff

NY = "America/New_York"
ANDROID, IPAD = "alice-android-token", "alice-ipad-token"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(NY)).astimezone(UTC)


def wall(instant: datetime | None) -> str | None:
    return instant.astimezone(ZoneInfo(NY)).strftime("%m-%d %H:%M") if instant else None


@dataclass(frozen=True)
class Sent:
    token: str
    prompt_id: UUID
    at: datetime


@dataclass
class Scripted:
    """A push provider whose answers a test scripts per token; anything unscripted is accepted."""

    name: str
    scripts: dict[str, list[SendResult | Exception]] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    async def send(self, token: str, message: Payload, *, now: datetime) -> SendResult:
        self.sent.append(Sent(token, message.prompt_id, now))
        script = self.scripts.get(token)
        if script:
            result = script.pop(0)
            if isinstance(result, Exception):
                raise result
            return result
        return accepted(f"{self.name}-{len(self.sent)}")

    async def aclose(self) -> None:
        return None


@dataclass
class World:
    staff: Staff
    alice: PatientUser
    bob: PatientUser
    fcm: Scripted
    apns: Scripted
    config: JobConfig
    android: Device
    ipad: Device

    @property
    def providers(self) -> dict[ProviderName, PushProvider]:
        return dict(self.config.providers)

    @property
    def policy(self) -> DeliveryPolicy:
        return self.config.delivery

    def sends(self) -> list[Sent]:
        return sorted([*self.fcm.sent, *self.apns.sent], key=lambda s: (s.at, s.token))

    async def diary(self, day: str) -> Prompt:
        return await Prompt.get(patient_id=self.alice.patient.id, rule_id="daily_diary", anchor=f"date:2026-{day}")


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, timezone=NY, joined=now)
    bob = await factory.patient(clinic, timezone=NY, joined=now)
    android = await devices.register(alice.actor, ProviderName.FCM, ANDROID, "android", now=now)
    ipad = await devices.register(alice.actor, ProviderName.APNS, IPAD, "ios", now=now)
    fcm, apns = Scripted("fcm"), Scripted("apns")
    providers: dict[ProviderName, PushProvider] = {
        ProviderName.FCM: fcm,
        ProviderName.APNS: apns,
        ProviderName.EXPO: Scripted("expo"),
        ProviderName.WEBPUSH: Scripted("webpush"),
    }
    settings = make_settings()
    config = build_job_config(settings, providers=providers)
    config = replace(config, delivery=DeliveryPolicy(daily_cap=settings.push_daily_cap, jitter=lambda: 0.0))
    return World(await factory.staff(clinic), alice, bob, fcm, apns, config, android, ipad)


async def messages(prompt: Prompt | UUID) -> list[PushMessage]:
    prompt_id = prompt.id if isinstance(prompt, Prompt) else prompt
    return await PushMessage.filter(prompt_id=prompt_id).order_by("sequence", "created_at", "device_id")


def answer(prompt: Prompt, at: datetime) -> DiaryInput:
    return DiaryInput(client_id=uuid4(), recorded_at=at, pain_now=3, prompt_id=str(prompt.id))


async def evening(world: World, policy: DeliveryPolicy | None = None) -> PushMessage:
    """The fortnightly questionnaires go out at 18:00; then tonight's diary is released at 20:00, alone.
    Returns its message to the Android phone, not yet sent."""
    policy = policy or world.policy
    await outbox.release_due(policy, now=local("2026-11-26 18:00"))
    await outbox.deliver(world.providers, policy, now=local("2026-11-26 18:00"))
    world.fcm.sent.clear()
    world.apns.sent.clear()
    await outbox.release_due(policy, now=local("2026-11-26 20:00"))
    diary = await world.diary("11-26")
    return await PushMessage.get(prompt_id=diary.id, device_id=world.android.id)


# --- release and delivery --------------------------------------------------------------------------------------


async def test_release_queues_one_message_per_enabled_device_and_delivery_records_the_provider_id(
    world: World, services: Services
) -> None:
    await devices.register(world.alice.actor, ProviderName.EXPO, "old-phone", None, now=world.android.created_at)
    await devices.unregister(world.alice.actor, "old-phone", now=world.android.created_at)
    await evening(world)  # the 18:00 questionnaires are out of the way; tonight's diaries are released
    world.fcm.sent.clear()
    world.apns.sent.clear()
    at = local("2026-11-26 20:00")

    diary = await world.diary("11-26")
    bobs = await Prompt.get(patient_id=world.bob.patient.id, rule_id="daily_diary", anchor="date:2026-11-26")
    assert bobs.status is PromptStatus.SENT
    assert await messages(bobs) == []  # Bob has no device
    assert (diary.status, diary.sent_at, diary.late) == (PromptStatus.SENT, at, False)
    assert wall(diary.next_reminder_at) == "11-26 21:00"
    queued = await messages(diary)
    assert {m.device_id for m in queued} == {world.android.id, world.ipad.id}
    assert {(m.status, m.sequence, m.attempts, m.next_attempt_at) for m in queued} == {
        (MessageStatus.PENDING, 0, 0, at)
    }
    assert world.sends() == []  # nothing leaves before the outbox rows are committed and claimed

    delivered = await outbox.deliver(world.providers, world.policy, now=at)

    assert (delivered.claimed, delivered.accepted) == (2, 2)
    assert world.sends() == [Sent(ANDROID, diary.id, at), Sent(IPAD, diary.id, at)]
    done = {m.device_id: m for m in await messages(diary)}
    assert (done[world.android.id].status, done[world.android.id].provider_message_id) == (
        MessageStatus.ACCEPTED,
        "fcm-1",
    )
    assert done[world.ipad.id].provider_message_id == "apns-1"
    assert {(m.attempts, m.sent_at, m.lease_until) for m in done.values()} == {(1, at, None)}
    assert (await outbox.deliver(world.providers, world.policy, now=at)).claimed == 0

    # The app acknowledges: each funnel step keeps its time, and steps only move forward.
    opened_at = at + timedelta(minutes=3)
    await services.prompts.acknowledge(world.alice.actor, diary.id, PromptEvent.DELIVERED, now=at)
    await services.prompts.acknowledge(world.alice.actor, diary.id, PromptEvent.OPENED, now=opened_at)
    await services.prompts.acknowledge(world.alice.actor, diary.id, PromptEvent.DELIVERED, now=opened_at)
    seen = await world.diary("11-26")
    assert (seen.status, seen.delivered_at, seen.opened_at) == (PromptStatus.OPENED, at, opened_at)


async def test_with_notifications_off_prompts_are_released_and_answerable_but_not_pushed(
    world: World, services: Services
) -> None:
    await services.prompts.update_preferences(
        world.alice.actor, PreferenceChange(notifications_enabled=False), now=local("2026-11-26 08:00")
    )
    at = local("2026-11-26 20:00")

    await tick(world.config, at)
    await tick(world.config, at + timedelta(hours=1))  # reminder time

    diary = await world.diary("11-26")
    assert diary.status is PromptStatus.SENT
    assert diary.id in {p.id for p in await services.prompts.mine(world.alice.actor, None, now=at)}
    assert await PushMessage.filter(prompt__patient_id=world.alice.patient.id).count() == 0
    assert world.sends() == []
    await services.diary.log(world.alice.actor, answer(diary, at + timedelta(hours=1)), now=at + timedelta(hours=1))
    assert (await world.diary("11-26")).status is PromptStatus.ANSWERED


async def test_a_patient_without_devices_gets_prompts_but_no_pushes(world: World, services: Services) -> None:
    at = local("2026-11-26 20:00")

    await tick(world.config, at)

    bobs = await Prompt.get(patient_id=world.bob.patient.id, anchor="date:2026-11-26", rule_id="daily_diary")
    assert bobs.status is PromptStatus.SENT
    assert await messages(bobs) == []
    assert bobs.id in {p.id for p in await services.prompts.mine(world.bob.actor, None, now=at)}


# --- reminders -------------------------------------------------------------------------------------------------


async def test_reminders_go_while_unanswered_and_never_into_quiet_hours(world: World) -> None:
    for hhmm in ("20:00", "21:00", "21:01", "22:00"):
        await tick(world.config, local(f"2026-11-26 {hhmm}"))
    await tick(world.config, local("2026-11-27 08:00"))

    diary = await world.diary("11-26")
    sent = await messages(diary)
    # The second reminder (22:00) fell in quiet hours, and they end after the window closes (03:00): dropped.
    assert [(m.sequence, wall(m.created_at)) for m in sent] == [
        (0, "11-26 20:00"),
        (0, "11-26 20:00"),
        (1, "11-26 21:00"),
        (1, "11-26 21:00"),
    ]
    assert (diary.reminders_sent, diary.next_reminder_at) == (1, None)


async def test_no_reminder_once_answered(world: World, services: Services) -> None:
    await tick(world.config, local("2026-11-26 20:00"))
    diary = await world.diary("11-26")
    await services.diary.log(world.alice.actor, answer(diary, local("2026-11-26 20:40")), now=local("2026-11-26 20:40"))

    await tick(world.config, local("2026-11-26 21:00"))

    assert [m.sequence for m in await messages(diary)] == [0, 0]


async def test_a_reminder_postponed_by_quiet_hours_keeps_its_distance_to_the_next(
    world: World, services: Services
) -> None:
    """Pre-session check: reminders 4 h and 12 h after delivery. Sent at 20:00, the first (00:00) waits for the end
    of quiet hours (08:00) — where the second (also 08:00) must not follow it straight away."""
    session = await services.treatment.schedule(
        world.staff.actor,
        world.alice.patient.id,
        starts_at=local("2026-11-28 20:00"),
        planned_duration_minutes=60,
        course_id=None,
        now=local("2026-11-26 09:00"),
    )
    for text in (
        "2026-11-27 20:00",
        "2026-11-28 00:00",
        "2026-11-28 08:00",
        "2026-11-28 08:01",
        "2026-11-28 12:00",
        "2026-11-28 16:00",
        "2026-11-28 19:00",
    ):
        await tick(world.config, local(text))

    pre = await Prompt.get(session_id=session.id, rule_id="pre_session")
    reminders = [(m.sequence, wall(m.created_at)) for m in await messages(pre) if m.device_id == world.android.id]
    assert reminders == [(0, "11-27 20:00"), (1, "11-28 08:00"), (2, "11-28 16:00")]
    assert (pre.reminders_sent, pre.next_reminder_at) == (2, None)  # at most the rule's reminders


# --- the daily cap ---------------------------------------------------------------------------------------------


async def enrol(world: World, services: Services, rules: list[Rule], now: datetime) -> None:
    clinic_id = world.alice.patient.clinic_id
    plan = await PromptPlan.create(
        clinic_id=clinic_id,
        family_id=uuid4(),
        name="Busy plan",
        version=1,
        rules=[r.to_json() for r in rules],
        created_at=now,
    )
    await services.prompts.enroll(world.staff.actor, world.alice.patient.id, plan.id, now=now)


def daily(rule_id: str, at: time, window: timedelta = timedelta(hours=30), **extra: object) -> Rule:
    return Rule(rule_id, RuleKind.DAILY, "daily_diary", window=window, at=at, **extra)  # type: ignore[arg-type]


async def test_the_daily_cap_defers_the_rest_to_the_next_day(world: World, services: Services) -> None:
    rules = [daily(f"r{h}", time(h)) for h in (9, 10, 11, 12, 13)]
    rules.append(daily("short", time(14), window=timedelta(hours=2)))  # closes before tomorrow
    await enrol(world, services, rules, local("2026-11-26 08:30"))

    for hour in range(9, 15):
        await tick(world.config, local(f"2026-11-26 {hour:02}:00"))

    today = {p.rule_id: p for p in await Prompt.filter(patient_id=world.alice.patient.id, anchor="date:2026-11-26")}
    pushed = {p for p, prompt in today.items() if await messages(prompt)}
    assert pushed == {"r9", "r10", "r11", "r12"}  # four pushes per local day
    assert (today["r13"].status, wall(today["r13"].deliver_at)) == (PromptStatus.SCHEDULED, "11-27 08:00")
    # Its window would close first: released (listed, answerable), not pushed.
    assert (today["short"].status, await messages(today["short"])) == (PromptStatus.SENT, [])

    # Planning again leaves the hold alone: nothing moves, nothing is counted.
    replanned = await plan_all(SchedulingPolicy(), now=local("2026-11-26 14:00"))
    assert (replanned.moved, replanned.created, replanned.cancelled) == (0, 0, 0)
    held = await Prompt.get(id=today["r13"].id)
    assert (wall(held.deliver_at), held.updated_at) == ("11-27 08:00", today["r13"].updated_at)

    await tick(world.config, local("2026-11-27 08:00"))

    released = await Prompt.get(id=today["r13"].id)
    assert (released.status, wall(released.sent_at), released.late) == (PromptStatus.SENT, "11-27 08:00", False)
    assert [m.sequence for m in await messages(released)] == [0, 0]


async def test_a_capped_reminder_waits_for_the_next_day(world: World, services: Services) -> None:
    rules = [
        daily("first", time(9), reminders=(timedelta(hours=2),)),
        daily("second", time(10)),
        daily("third", time(10, 30)),
        daily("fourth", time(10, 45)),
    ]
    await enrol(world, services, rules, local("2026-11-26 08:30"))
    for text in ("09:00", "10:00", "10:30", "10:45", "11:00", "12:00"):
        await tick(world.config, local(f"2026-11-26 {text}"))

    first = await Prompt.get(patient_id=world.alice.patient.id, rule_id="first", anchor="date:2026-11-26")
    assert [m.sequence for m in await messages(first)] == [0, 0]
    assert (first.reminders_sent, wall(first.next_reminder_at)) == (0, "11-27 08:00")

    await tick(world.config, local("2026-11-27 08:00"))

    first = await Prompt.get(id=first.id)
    assert [(m.sequence, wall(m.created_at)) for m in await messages(first)][2:] == [
        (1, "11-27 08:00"),
        (1, "11-27 08:00"),
    ]
    assert first.reminders_sent == 1


# --- provider outcomes -----------------------------------------------------------------------------------------


async def test_a_dead_token_disables_the_device_and_later_prompts_skip_it(world: World) -> None:
    await tick(world.config, local("2026-11-26 18:00"))
    world.fcm.scripts[ANDROID] = [SendResult(Outcome.DEAD_TOKEN, error_class="fcm.UNREGISTERED")]
    at = local("2026-11-26 20:00")

    await tick(world.config, at)

    diary = await world.diary("11-26")
    status = {m.device_id: m.status for m in await messages(diary)}
    assert status == {world.android.id: MessageStatus.DEAD_TOKEN, world.ipad.id: MessageStatus.ACCEPTED}
    android = await Device.get(id=world.android.id)
    assert (android.disabled_at, android.disabled_reason) == (at, "fcm.UNREGISTERED")

    await tick(world.config, local("2026-11-26 21:00"))  # the reminder
    await tick(world.config, local("2026-11-27 20:00"))  # tomorrow's diary

    assert {m.device_id for m in await messages(diary) if m.sequence == 1} == {world.ipad.id}
    assert {m.device_id for m in await messages(await world.diary("11-27"))} == {world.ipad.id}
    assert [s.at for s in world.fcm.sent] == [local("2026-11-26 18:00")] * 2 + [at]


async def test_after_a_dead_token_the_rest_of_the_batch_for_that_device_is_dropped(world: World) -> None:
    world.fcm.scripts[ANDROID] = [SendResult(Outcome.DEAD_TOKEN, error_class="fcm.UNREGISTERED")]
    at = local("2026-11-26 18:00")  # PHQ-9 and GAD-7 are due together

    await outbox.release_due(world.policy, now=at)
    report = await outbox.deliver(world.providers, world.policy, now=at)

    assert (report.dead_tokens, report.dropped, report.accepted) == (1, 1, 2)
    assert [s.token for s in world.fcm.sent] == [ANDROID]
    statuses = sorted(m.status for m in await PushMessage.filter(device_id=world.android.id))
    assert statuses == [MessageStatus.DEAD_TOKEN, MessageStatus.DROPPED]


async def test_retries_back_off_exponentially_and_then_fail(world: World) -> None:
    policy = DeliveryPolicy(backoff=timedelta(seconds=30), max_attempts=4, jitter=lambda: 0.0)
    message = await evening(world, policy)
    world.fcm.scripts[ANDROID] = [SendResult(Outcome.RETRY, error_class="http.503")] * 4
    at = local("2026-11-26 20:00")
    waits = []
    clock = at

    for _ in range(3):
        await outbox.deliver(world.providers, policy, now=clock)
        message = await PushMessage.get(id=message.id)
        assert (message.status, message.error_class, message.lease_until) == (MessageStatus.PENDING, "http.503", None)
        waits.append(message.next_attempt_at - clock)
        # Not a moment before its time.
        early = await outbox.deliver(world.providers, policy, now=message.next_attempt_at - timedelta(seconds=1))
        assert early.claimed == 0
        clock = message.next_attempt_at

    final = await outbox.deliver(world.providers, policy, now=clock)

    # Half of each doubling step with no jitter: 15 s, 30 s, 60 s; the fourth attempt was the last.
    assert waits == [timedelta(seconds=15), timedelta(seconds=30), timedelta(seconds=60)]
    assert (final.failed, final.errors) == (1, {"http.503": 1})
    message = await PushMessage.get(id=message.id)
    assert (message.status, message.attempts, message.sent_at) == (MessageStatus.FAILED, 4, None)
    assert len(world.fcm.sent) == 4


@pytest.mark.parametrize(
    ("jitter", "attempts", "retry_after", "wait"),
    [
        (1.0, 1, None, timedelta(seconds=30)),  # full jitter: the whole step
        (0.5, 2, None, timedelta(seconds=45)),
        (0.0, 10, None, timedelta(minutes=30)),  # the step stops doubling at max_backoff
        (0.0, 1, 600.0, timedelta(minutes=10)),  # the provider's Retry-After wins when longer
        (1.0, 3, 5.0, timedelta(minutes=2)),  # and not when shorter
    ],
)
async def test_backoff_jitter_cap_and_retry_after(
    world: World, jitter: float, attempts: int, retry_after: float | None, wait: timedelta
) -> None:
    policy = DeliveryPolicy(
        backoff=timedelta(seconds=30), max_backoff=timedelta(hours=1), max_attempts=20, jitter=lambda: jitter
    )
    message = await evening(world, policy)
    world.fcm.scripts[ANDROID] = [SendResult(Outcome.RETRY, error_class="http.429", retry_after=retry_after)]
    at = local("2026-11-26 20:00")
    await PushMessage.filter(id=message.id).update(attempts=attempts - 1)

    await outbox.deliver(world.providers, policy, now=at)

    message = await PushMessage.get(id=message.id)
    assert (message.attempts, message.next_attempt_at - at) == (attempts, wait)


async def test_a_permanent_failure_is_not_retried(world: World) -> None:
    message = await evening(world)
    world.fcm.scripts[ANDROID] = [SendResult(Outcome.FAILED, error_class="fcm.INVALID_ARGUMENT")]
    at = local("2026-11-26 20:00")

    await tick(world.config, at)
    await tick(world.config, at + timedelta(minutes=5))

    message = await PushMessage.get(id=message.id)
    assert (message.status, message.error_class, message.attempts) == (
        MessageStatus.FAILED,
        "fcm.INVALID_ARGUMENT",
        1,
    )
    assert (await Device.get(id=world.android.id)).disabled_at is None  # not known dead
    assert len(world.fcm.sent) == 1


async def test_a_provider_that_raises_does_not_stop_the_batch(world: World) -> None:
    message = await evening(world)
    world.fcm.scripts[ANDROID] = [RuntimeError("boom")]
    at = local("2026-11-26 20:00")

    report = await outbox.deliver(world.providers, world.policy, now=at)

    assert (report.accepted, report.retried) == (1, 1)
    android = await PushMessage.get(id=message.id)
    assert (android.status, android.error_class) == (MessageStatus.PENDING, "provider.exception")
    later = await outbox.deliver(world.providers, world.policy, now=android.next_attempt_at)
    assert later.accepted == 1


async def test_messages_for_prompts_answered_or_expired_before_the_send_are_dropped(
    world: World, services: Services
) -> None:
    at = local("2026-11-26 20:00")
    await outbox.release_due(world.policy, now=at)
    diary = await world.diary("11-26")
    await services.diary.log(world.alice.actor, answer(diary, at), now=at)
    phq9 = await Prompt.get(patient_id=world.alice.patient.id, rule_id="phq9_biweekly")  # released with it, late

    answered = await outbox.deliver(world.providers, world.policy, now=at)

    assert {m.status for m in await messages(diary)} == {MessageStatus.DROPPED}
    assert {m.status for m in await messages(phq9)} == {MessageStatus.ACCEPTED}
    assert answered.dropped == 2
    assert diary.id not in {s.prompt_id for s in world.sends()}

    # Tomorrow's diary: queued, then the window closes before the outbox gets to it.
    tomorrow = local("2026-11-27 20:00")
    await outbox.release_due(world.policy, now=tomorrow)
    expired = await outbox.deliver(world.providers, world.policy, now=tomorrow + timedelta(hours=7))

    assert expired.dropped == 2
    assert {m.status for m in await messages(await world.diary("11-27"))} == {MessageStatus.DROPPED}


async def test_a_token_registered_by_another_patient_moves_with_its_pending_messages_dropped(
    world: World, services: Services
) -> None:
    at = local("2026-11-26 20:00")
    await outbox.release_due(world.policy, now=at)
    # Before the outbox sends, the phone changes hands: Bob signs in on it.
    moved = await devices.register(world.bob.actor, ProviderName.FCM, ANDROID, "android", now=at)

    await outbox.deliver(world.providers, world.policy, now=at)

    assert (moved.id, moved.patient_id) == (world.android.id, world.bob.patient.id)
    diary = await world.diary("11-26")
    status = {m.device_id: m.status for m in await messages(diary)}
    assert status == {world.android.id: MessageStatus.DROPPED, world.ipad.id: MessageStatus.ACCEPTED}
    assert [s for s in world.fcm.sent if s.prompt_id == diary.id] == []

    await tick(world.config, local("2026-11-27 20:00"))

    assert {m.device_id for m in await messages(await world.diary("11-27"))} == {world.ipad.id}
    bobs = await Prompt.get(patient_id=world.bob.patient.id, rule_id="daily_diary", anchor="date:2026-11-27")
    assert [m.device_id for m in await messages(bobs)] == [world.android.id]
    alices = set(await Prompt.filter(patient_id=world.alice.patient.id).values_list("id", flat=True))
    assert bobs.id in {s.prompt_id for s in world.fcm.sent}
    assert not alices & {s.prompt_id for s in world.fcm.sent}


async def test_session_prompts_reach_every_device(world: World, services: Services) -> None:
    session = await services.treatment.schedule(
        world.staff.actor,
        world.alice.patient.id,
        starts_at=local("2026-11-27 10:00"),
        planned_duration_minutes=60,
        course_id=None,
        now=local("2026-11-26 09:00"),
    )

    await tick(world.config, local("2026-11-27 13:00"))

    check = await Prompt.get(session_id=session.id, rule_id="post_infusion_2h")
    assert check.status is PromptStatus.SENT
    assert {(m.device_id, m.status) for m in await messages(check)} == {
        (world.android.id, MessageStatus.ACCEPTED),
        (world.ipad.id, MessageStatus.ACCEPTED),
    }


async def test_a_platform_without_a_provider_fails_its_messages_and_sends_the_rest(world: World) -> None:
    message = await evening(world)
    providers = {ProviderName.APNS: world.apns}  # no FCM client configured

    report = await outbox.deliver(providers, world.policy, now=local("2026-11-26 20:00"))

    assert (report.accepted, report.failed, report.errors) == (1, 1, {"provider.unconfigured": 1})
    failed = await PushMessage.get(id=message.id)
    assert (failed.status, failed.error_class) == (MessageStatus.FAILED, "provider.unconfigured")
    assert world.fcm.sent == []
