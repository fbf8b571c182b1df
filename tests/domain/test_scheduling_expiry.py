"""Windows: a missed window expires (no backfill), downtime is caught up late inside the window, and answering a
prompt with a diary entry happens in the entry's own transaction (design §4.2)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from api.container import build_job_config
from api.domain.diary.models import DiaryEntry
from api.domain.diary.service import SyncStatus
from api.domain.diary.validation import DiaryInput
from api.domain.errors import BadInput, Conflict, DomainError, ErrorCode, NotFound
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.prompt.service import PreferenceChange, PromptExpired
from api.domain.push import devices
from api.domain.push.models import ProviderName, PushMessage
from api.domain.push.providers.log import LogProvider
from api.domain.services import Services
from jobs.passes import JobConfig, tick
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser, Staff

NY = "America/New_York"


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(NY)).astimezone(UTC)


@dataclass
class World:
    staff: Staff
    alice: PatientUser
    bob: PatientUser
    provider: LogProvider
    config: JobConfig

    async def diary(self, day: str, who: PatientUser | None = None) -> Prompt:
        patient = (who or self.alice).patient.id
        return await Prompt.get(patient_id=patient, rule_id="daily_diary", anchor=f"date:2026-{day}")


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, timezone=NY, joined=now)
    bob = await factory.patient(clinic, timezone=NY, joined=now)
    await devices.register(alice.actor, ProviderName.FCM, "alice-phone", "android", now=now)
    provider = LogProvider()
    config = build_job_config(make_settings(), providers=dict.fromkeys(ProviderName, provider))
    return World(await factory.staff(clinic), alice, bob, provider, config)


# --- expiry and catch-up ---------------------------------------------------------------------------------------


async def test_a_window_that_closed_during_downtime_expires_and_is_never_sent(world: World) -> None:
    at = local("2026-11-27 03:00")  # tonight's diary closed at 03:00; no pass ran since the morning before

    await tick(world.config, at)

    diary = await world.diary("11-26")
    assert (diary.status, diary.expired_at, diary.sent_at) == (PromptStatus.EXPIRED, at, None)
    assert await PushMessage.filter(prompt_id=diary.id).count() == 0
    # The fortnightly questionnaires are still open but it is 03:00, inside quiet hours: nothing is pushed now.
    assert await PushMessage.all().count() == 0
    assert list(world.provider.records) == []

    morning = local("2026-11-27 08:00")
    await tick(world.config, morning)

    caught_up = await Prompt.filter(patient_id=world.alice.patient.id, rule_id__in=["phq9_biweekly", "gad7_biweekly"])
    assert {(p.status, p.late, p.sent_at) for p in caught_up} == {(PromptStatus.SENT, True, morning)}
    assert {r.prompt_id for r in world.provider.records} == {p.id for p in caught_up}
    assert (await world.diary("11-26")).status is PromptStatus.EXPIRED  # never re-opened


async def test_a_window_that_closed_before_planning_ran_gets_no_prompt(world: World) -> None:
    at = local("2026-12-05 07:00")  # nine days without a pass: the horizon stopped at the 2nd

    await tick(world.config, at)

    anchors = Counter(p.anchor for p in await Prompt.filter(patient_id=world.alice.patient.id, rule_id="daily_diary"))
    assert "date:2026-12-03" not in anchors  # closed at 03:00 on the 4th, before any pass saw it
    assert "date:2026-12-04" not in anchors
    assert anchors["date:2026-12-05"] == 1  # tonight's is owed
    expired = await Prompt.filter(patient_id=world.alice.patient.id, rule_id="daily_diary", status=PromptStatus.EXPIRED)
    assert len(expired) == 7
    assert await PushMessage.all().count() == 0


@pytest.mark.parametrize(("minutes_late", "late"), [(0, False), (10, False), (60, True), (89, True)])
async def test_catch_up_inside_the_window_is_sent_and_marked_late(world: World, minutes_late: int, late: bool) -> None:
    at = local("2026-11-26 20:00") + timedelta(minutes=minutes_late)  # quiet hours start at 21:30

    await tick(world.config, at)

    diary = await world.diary("11-26")
    assert (diary.status, diary.late, diary.sent_at) == (PromptStatus.SENT, late, at)
    assert await PushMessage.filter(prompt_id=diary.id, sequence=0).count() == 1


async def test_catch_up_inside_quiet_hours_is_listed_but_not_pushed_when_the_window_closes_first(
    world: World, services: Services
) -> None:
    at = local("2026-11-26 23:00")

    await tick(world.config, at)

    diary = await world.diary("11-26")
    assert (diary.status, diary.late) == (PromptStatus.SENT, True)
    assert await PushMessage.filter(prompt_id=diary.id).count() == 0
    assert diary.id in {p.id for p in await services.prompts.mine(world.alice.actor, None, now=at)}


# --- answering with a diary entry ------------------------------------------------------------------------------


def entry(at: datetime, prompt: Prompt | UUID | None, **values: object) -> DiaryInput:
    prompt_id = prompt.id if isinstance(prompt, Prompt) else prompt
    return DiaryInput(
        client_id=uuid4(),
        recorded_at=at,
        prompt_id=str(prompt_id) if prompt_id else None,
        **values,  # type: ignore[arg-type]
    )


async def stored() -> list[tuple[object, ...]]:
    entries = await DiaryEntry.all().order_by("id").values_list("id", "prompt_id", "version")
    prompts = await Prompt.all().order_by("id").values_list("id", "status", "answered_at", "updated_at")
    return [*entries, *prompts]


async def test_answering_an_open_diary_prompt_marks_it_answered(world: World, services: Services) -> None:
    await tick(world.config, local("2026-11-26 20:00"))
    at = local("2026-11-26 20:20")
    diary = await world.diary("11-26")

    saved = await services.diary.log(world.alice.actor, entry(at, diary, pain_now=4, mood=6), now=at)

    assert saved.prompt_id == diary.id
    answered = await world.diary("11-26")
    assert (answered.status, answered.answered_at, answered.updated_at) == (PromptStatus.ANSWERED, at, at)
    adherence = await services.prompts.adherence(world.staff.actor, world.alice.patient.id, now=at)
    assert (adherence[0].answered, adherence[0].expired, adherence[0].rate) == (1, 0, 1.0)


async def test_a_due_prompt_held_back_by_quiet_hours_is_already_answerable(world: World, services: Services) -> None:
    at = local("2026-11-27 07:45")
    await services.prompts.update_preferences(
        world.alice.actor, PreferenceChange(diary_time="07:30"), now=local("2026-11-26 21:00")
    )
    diary = await world.diary("11-27")
    assert (diary.status, diary.deliver_at) == (PromptStatus.SCHEDULED, local("2026-11-27 08:00"))

    await services.diary.log(world.alice.actor, entry(at, diary, pain_now=2), now=at)

    assert (await world.diary("11-27")).status is PromptStatus.ANSWERED
    await tick(world.config, local("2026-11-27 08:00"))
    assert await PushMessage.filter(prompt_id=diary.id).count() == 0  # answered: nothing to push


async def test_answering_an_expired_prompt_is_refused_and_stores_nothing(world: World, services: Services) -> None:
    at = local("2026-11-27 03:30")
    await tick(world.config, at)
    diary = await world.diary("11-26")
    before = await stored()

    with pytest.raises(PromptExpired) as refused:
        await services.diary.log(world.alice.actor, entry(at, diary, pain_now=4), now=at)

    assert (refused.value.code, refused.value.field) == (ErrorCode.PROMPT_EXPIRED, "prompt_id")
    assert await stored() == before
    # The free diary entry is still possible.
    await services.diary.log(world.alice.actor, entry(at, None, pain_now=4), now=at)
    assert await DiaryEntry.filter(patient_id=world.alice.patient.id).count() == 1


async def test_a_prompt_whose_window_just_closed_is_expired_even_before_the_pass(
    world: World, services: Services
) -> None:
    await tick(world.config, local("2026-11-26 20:00"))
    diary = await world.diary("11-26")
    before = await stored()

    with pytest.raises(PromptExpired):
        await services.diary.log(world.alice.actor, entry(diary.expires_at, diary, pain_now=4), now=diary.expires_at)

    assert await stored() == before


async def test_a_prompt_is_answered_once(world: World, services: Services) -> None:
    await tick(world.config, local("2026-11-26 20:00"))
    at = local("2026-11-26 20:30")
    diary = await world.diary("11-26")
    first = entry(at, diary, pain_now=4)
    saved = await services.diary.log(world.alice.actor, first, now=at)
    before = await stored()

    # The same entry again (the phone retried): unchanged, not a second answer.
    again = await services.diary.sync(world.alice.actor, [first], now=at + timedelta(minutes=1))
    assert [(o.status, o.entry and o.entry.id) for o in again] == [(SyncStatus.UNCHANGED, saved.id)]
    # Another entry for the same prompt: refused, and not stored either.
    with pytest.raises(Conflict) as refused:
        await services.diary.log(world.alice.actor, entry(at, diary, pain_now=7), now=at + timedelta(minutes=2))
    assert refused.value.field == "prompt_id"
    assert await stored() == before


async def test_other_prompts_cannot_be_answered_by_a_diary_entry(world: World, services: Services) -> None:
    await tick(world.config, local("2026-11-26 20:00"))
    at = local("2026-11-26 20:30")
    phq9 = await Prompt.get(patient_id=world.alice.patient.id, rule_id="phq9_biweekly")
    bobs = await world.diary("11-26", world.bob)
    future = await world.diary("11-28")
    cancelled = await world.diary("11-29")
    await Prompt.filter(id=cancelled.id).update(status=PromptStatus.CANCELLED, cancelled_at=at)
    before = await stored()

    refusals: list[tuple[UUID, type[DomainError]]] = [
        (phq9.id, BadInput),  # answered by submitting the questionnaire
        (bobs.id, NotFound),  # another patient's: exactly as if it did not exist
        (uuid4(), NotFound),
        (future.id, NotFound),  # not due yet, so not shown yet
        (cancelled.id, NotFound),
    ]
    for prompt_id, error in refusals:
        with pytest.raises(error) as refused:
            await services.diary.log(world.alice.actor, entry(at, prompt_id, pain_now=1), now=at)
        assert refused.value.field == "prompt_id"

    assert await stored() == before
    assert (await world.diary("11-26", world.bob)).status is PromptStatus.SENT
