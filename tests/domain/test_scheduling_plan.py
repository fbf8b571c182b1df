"""Materialising prompts in the database: registration, idempotent re-planning, races between planners, statement
counts, and preference changes (design §4.2)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from api.domain.actor import Role
from api.domain.errors import BadInput
from api.domain.patient.erasure import ErasureService
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt import scheduling
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.prompt.plans import default_plan
from api.domain.prompt.scheduling import SchedulingPolicy, plan_all, replan
from api.domain.prompt.service import PreferenceChange
from api.domain.services import Services
from tests.conftest import count_queries
from tests.factories import PASSWORD, Factory, PatientUser

NEW_YORK = "America/New_York"
POLICY = SchedulingPolicy()


def local(zone: str, text: str) -> datetime:
    """A wall-clock time in `zone`, as the UTC instant the database stores."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def wall(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


async def rows(patient: Patient | PatientUser, *rules: str) -> list[Prompt]:
    patient_id = patient.patient.id if isinstance(patient, PatientUser) else patient.id
    query = Prompt.filter(patient_id=patient_id)
    if rules:
        query = query.filter(rule_id__in=list(rules))
    return await query.order_by("due_at", "rule_id")


def snapshot(prompts: list[Prompt]) -> list[tuple[object, ...]]:
    return [
        (p.id, p.rule_id, p.anchor, p.status, p.due_at, p.deliver_at, p.expires_at, p.push, p.updated_at)
        for p in prompts
    ]


# --- registration and idempotence ------------------------------------------------------------------------------


async def test_registration_plans_a_week_of_diaries_at_the_local_diary_time(factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic(), timezone=NEW_YORK, joined=now)

    patient = await Patient.get(id=alice.patient.id)
    assert patient.status is PatientStatus.ACTIVE
    plan = await default_plan(patient.clinic_id, now=now)
    assert (patient.plan_family_id, patient.enrolled_at) == (plan.family_id, now)
    diaries = await rows(alice, "daily_diary")
    # Joined at 07:00 New York time on the 26th: that evening's diary is the first.
    assert [wall(p.due_at, NEW_YORK) for p in diaries] == [f"2026-{d} 20:00" for d in (
        "11-26", "11-27", "11-28", "11-29", "11-30", "12-01", "12-02"
    )]  # fmt: skip
    assert [p.anchor for p in diaries] == [f"date:{wall(p.due_at, NEW_YORK)[:10]}" for p in diaries]
    for p in diaries:
        assert p.status is PromptStatus.SCHEDULED
        assert p.deliver_at == p.due_at  # 20:00 is before quiet hours
        assert p.expires_at == p.due_at + timedelta(hours=7)
        assert (p.push, p.instrument, p.plan_id, p.reminder_minutes) == (True, "daily_diary", plan.id, [60, 120])
    # The fortnightly questionnaires start on the day of enrolment; nothing session-bound exists without sessions.
    others = await Prompt.filter(patient_id=alice.patient.id).exclude(rule_id="daily_diary").order_by("rule_id")
    assert [(p.rule_id, wall(p.due_at, NEW_YORK)) for p in others] == [
        ("gad7_biweekly", "2026-11-26 18:00"),
        ("phq9_biweekly", "2026-11-26 18:00"),
    ]


async def test_diaries_keep_their_local_hour_across_a_dst_change(factory: Factory) -> None:
    joined = local(NEW_YORK, "2027-03-11 09:00")  # clocks go forward on the 14th
    alice = await factory.patient(await factory.clinic(), timezone=NEW_YORK, joined=joined)

    diaries = await rows(alice, "daily_diary")

    assert [wall(p.due_at, NEW_YORK) for p in diaries] == [f"2027-03-{d} 20:00" for d in range(11, 18)]
    assert [p.due_at.astimezone(UTC).hour for p in diaries] == [1, 1, 1, 0, 0, 0, 0]


async def test_planning_again_changes_nothing(factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    before = snapshot(await rows(alice))

    for _ in range(2):
        report = await plan_all(POLICY, now=now)
        assert (report.patients, report.created, report.moved, report.cancelled, report.revived) == (1, 0, 0, 0, 0)
        single = await replan([await Patient.get(id=alice.patient.id)], POLICY, now=now)
        assert (single.created, single.moved, single.cancelled, single.revived) == (0, 0, 0, 0)

    assert snapshot(await rows(alice)) == before


async def test_the_horizon_rolls_forward_one_day_at_a_time(factory: Factory, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    before = {p.id for p in await rows(alice)}

    report = await plan_all(POLICY, now=now + timedelta(days=1))

    after = await rows(alice, "daily_diary")
    assert report.created == 1
    assert wall(after[-1].due_at, NEW_YORK) == "2026-12-03 20:00"
    assert before < {p.id for p in await rows(alice)}


@pytest.mark.parametrize("round_", range(3))
async def test_concurrent_planners_create_each_prompt_once(factory: Factory, now: datetime, round_: int) -> None:
    clinic = await factory.clinic()
    people = [await factory.patient(clinic, joined=now - timedelta(hours=round_)) for _ in range(3)]
    # Downtime: nothing was planned, as if the rows had never been written.
    await Prompt.all().delete()

    reports = await asyncio.gather(plan_all(POLICY, now=now), plan_all(POLICY, now=now))

    stored = await Prompt.all()
    keys = [(p.patient_id, p.rule_id, p.anchor) for p in stored]
    assert len(keys) == len(set(keys))
    assert sum(r.created for r in reports) == len(stored)
    for who in people:
        assert len([p for p in stored if p.patient_id == who.patient.id and p.rule_id == "daily_diary"]) >= 7


async def test_planners_that_both_read_before_either_wrote_create_each_prompt_once(
    factory: Factory, now: datetime
) -> None:
    """The deterministic form of the race above: two replicas decide on the same empty state."""
    clinic = await factory.clinic()
    for _ in range(2):
        await factory.patient(clinic, joined=now)
    await Prompt.all().delete()
    patients = await Patient.all()
    first = await scheduling.load_state(patients, POLICY, now=now)
    second = await scheduling.load_state(patients, POLICY, now=now)

    won = await scheduling.write_plan(first, now=now)
    lost = await scheduling.write_plan(second, now=now)

    stored = await Prompt.all()
    assert (won.created, lost.created) == (len(stored), 0)
    assert len({(p.patient_id, p.rule_id, p.anchor) for p in stored}) == len(stored) == 18


@pytest.mark.parametrize("retention", [timedelta(days=365), timedelta(0)], ids=["held", "purged"])
async def test_a_patient_read_before_their_erasure_gets_nothing_planned_and_the_others_in_the_batch_do(
    factory: Factory, services: Services, now: datetime, retention: timedelta
) -> None:
    """A service replans the patient it read, after its transaction committed: an erasure may have committed in
    between. Held, the erasure's cancelled prompts would be revived; purged, the plan would be created again."""
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    alice = await factory.patient(clinic, joined=now)
    bob = await factory.patient(clinic, joined=now)
    stale = await Patient.get(id=alice.patient.id)
    eraser = ErasureService(accounts=services.accounts, retention=retention)
    await eraser.erase_patient(admin.actor, stale.id, "by letter", password=PASSWORD, now=now)
    erased = snapshot(await rows(alice))
    await Prompt.filter(patient_id=bob.patient.id).delete()

    report = await replan([stale, await Patient.get(id=bob.patient.id)], POLICY, now=now)

    assert stale.status is PatientStatus.ACTIVE
    assert snapshot(await rows(alice)) == erased
    assert report.created == len(await rows(bob)) > 0
    assert (report.moved, report.revived, report.cancelled) == (0, 0, 0)


async def test_a_paused_patient_loses_unsent_prompts_and_gets_them_back_when_active(
    factory: Factory, now: datetime
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    ids = {p.id for p in await rows(alice)}
    await Patient.filter(id=alice.patient.id).update(status=PatientStatus.PAUSED)

    paused = await plan_all(POLICY, now=now)

    # Not planned any more, and nothing unsent of theirs may go out.
    assert (paused.patients, paused.cancelled) == (0, len(ids))
    assert {p.status for p in await rows(alice)} == {PromptStatus.CANCELLED}
    assert (await plan_all(POLICY, now=now)).cancelled == 0

    await Patient.filter(id=alice.patient.id).update(status=PatientStatus.ACTIVE)
    back = await plan_all(POLICY, now=now)

    assert (back.revived, back.created) == (len(ids), 0)
    assert {p.id for p in await rows(alice)} == ids
    assert {p.status for p in await rows(alice)} == {PromptStatus.SCHEDULED}


# --- statement counts --------------------------------------------------------------------------------------------


async def _planned_patients(factory: Factory, now: datetime, count: int) -> None:
    clinic = await factory.clinic()
    plan = await default_plan(clinic.id, now=now)
    await Patient.bulk_create(
        [
            Patient(
                id=uuid4(),
                clinic_id=clinic.id,
                display_name=f"P{i}",
                search_name=f"p{i}",
                timezone=("Europe/Berlin", NEW_YORK, "Asia/Tokyo")[i % 3],
                status=PatientStatus.ACTIVE,
                plan_family_id=plan.family_id,
                enrolled_at=now - timedelta(days=3),
                created_at=now - timedelta(days=3),
            )
            for i in range(count)
        ]
    )


async def _statements(now: datetime) -> tuple[int, int]:
    with count_queries() as first:
        created = await plan_all(POLICY, now=now)
    with count_queries() as again:
        steady = await plan_all(POLICY, now=now)
    assert created.created > 0
    assert steady.created == steady.moved == steady.cancelled == 0
    return len(first.statements), len(again.statements)


async def test_planning_statements_do_not_grow_with_the_number_of_patients(factory: Factory, now: datetime) -> None:
    await _planned_patients(factory, now, 10)
    ten = await _statements(now)
    await Patient.all().delete()

    await _planned_patients(factory, now, 50)
    fifty = await _statements(now)

    assert fifty == ten, (ten, fifty)
    # patients, plans, sessions, prompts, (the statuses again and the insert, when there is something to write),
    # the empty last batch, the unplanned
    assert fifty == (8, 6)


# --- preferences -------------------------------------------------------------------------------------------------


async def _released(alice: PatientUser, now: datetime) -> Prompt:
    """Tonight's diary, as if the dispatcher had sent it."""
    prompt = (await rows(alice, "daily_diary"))[0]
    prompt.status, prompt.sent_at = PromptStatus.SENT, now
    await prompt.save()
    return prompt


async def test_a_new_timezone_moves_unsent_prompts_and_leaves_sent_ones(
    factory: Factory, services: Services, now: datetime
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    sent = await _released(alice, now)
    unsent_ids = [p.id for p in await rows(alice, "daily_diary")][1:]

    patient = await services.prompts.update_preferences(
        alice.actor, PreferenceChange(timezone="Europe/Berlin"), now=now
    )

    assert patient.timezone == "Europe/Berlin"
    after = await rows(alice, "daily_diary")
    assert after[0].id == sent.id
    assert (after[0].status, after[0].due_at) == (PromptStatus.SENT, sent.due_at)
    moved = [p for p in after if p.status is PromptStatus.SCHEDULED]
    assert [p.id for p in moved] == unsent_ids  # the same rows, moved
    assert [wall(p.due_at, "Europe/Berlin") for p in moved] == [f"2026-{d} 20:00" for d in (
        "11-27", "11-28", "11-29", "11-30", "12-01", "12-02"
    )]  # fmt: skip


async def test_a_new_diary_time_moves_unsent_diaries(factory: Factory, services: Services, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    sent = await _released(alice, now)

    await services.prompts.update_preferences(alice.actor, PreferenceChange(diary_time="07:30"), now=now)

    after = await rows(alice, "daily_diary")
    assert (after[0].id, after[0].due_at, after[0].status) == (sent.id, sent.due_at, PromptStatus.SENT)
    # 07:30 falls inside quiet hours (21:30–08:00): due at 07:30, delivered when they end.
    # The 26th's 07:30 had passed when the change was made, and its diary was already sent.
    moved = [p for p in after if p.status is PromptStatus.SCHEDULED]
    assert [wall(p.due_at, NEW_YORK) for p in moved][:2] == ["2026-11-27 07:30", "2026-11-28 07:30"]
    assert {wall(p.deliver_at, NEW_YORK)[11:] for p in moved} == {"08:00"}


async def test_new_quiet_hours_move_delivery_of_unsent_prompts(
    factory: Factory, services: Services, now: datetime
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)

    await services.prompts.update_preferences(
        alice.actor, PreferenceChange(quiet_hours_start="17:00", quiet_hours_end="09:15"), now=now
    )

    diaries = await rows(alice, "daily_diary")
    assert {wall(p.due_at, NEW_YORK)[11:] for p in diaries} == {"20:00"}
    # The window (until 03:00) closes inside the new quiet hours: listed and answerable, never pushed at night.
    assert {(p.push, p.deliver_at == p.due_at) for p in diaries} == {(False, True)}
    phq9 = (await rows(alice, "phq9_biweekly"))[0]
    assert (phq9.push, wall(phq9.deliver_at, NEW_YORK)) == (True, "2026-11-27 09:15")

    await services.prompts.update_preferences(
        alice.actor, PreferenceChange(quiet_hours_start="22:00", quiet_hours_end="07:00"), now=now
    )

    diaries = await rows(alice, "daily_diary")
    assert {(p.push, p.deliver_at == p.due_at) for p in diaries} == {(True, True)}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (PreferenceChange(timezone="Mars/Olympus_Mons"), "timezone"),
        (PreferenceChange(timezone=""), "timezone"),
        (PreferenceChange(timezone="est"), "timezone"),
        (PreferenceChange(diary_time="25:00"), "diary_time"),
        (PreferenceChange(diary_time="7:30"), "diary_time"),
        (PreferenceChange(diary_time="07:60"), "diary_time"),
        (PreferenceChange(diary_time="+7:30"), "diary_time"),
        (PreferenceChange(diary_time=" 7:30"), "diary_time"),
        (PreferenceChange(diary_time="٠٧:٣٠"), "diary_time"),  # Arabic-Indic digits: int() would read them
        (PreferenceChange(diary_time="07:30:00"), "diary_time"),
        (PreferenceChange(diary_time=""), "diary_time"),
        (PreferenceChange(quiet_hours_start="ab:cd"), "quiet_hours_start"),
        (PreferenceChange(quiet_hours_end="24:00"), "quiet_hours_end"),
        # One bad field refuses the whole change: the valid timezone is not applied either.
        (PreferenceChange(timezone="Europe/Berlin", quiet_hours_end="8"), "quiet_hours_end"),
    ],
)
async def test_invalid_preferences_are_refused_naming_the_field_and_change_nothing(
    factory: Factory, services: Services, now: datetime, change: PreferenceChange, field: str
) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)
    patient_before = await Patient.get(id=alice.patient.id)
    prompts_before = snapshot(await rows(alice))

    with pytest.raises(BadInput) as refused:
        await services.prompts.update_preferences(alice.actor, change, now=now + timedelta(minutes=5))

    assert refused.value.field == field
    patient_after = await Patient.get(id=alice.patient.id)
    assert (patient_after.timezone, patient_after.diary_time, patient_after.quiet_hours_start) == (
        patient_before.timezone,
        patient_before.diary_time,
        patient_before.quiet_hours_start,
    )
    assert patient_after.quiet_hours_end == patient_before.quiet_hours_end
    assert snapshot(await rows(alice)) == prompts_before


async def test_valid_times_are_stored_in_canonical_form(factory: Factory, services: Services, now: datetime) -> None:
    alice = await factory.patient(await factory.clinic(), joined=now)

    patient = await services.prompts.update_preferences(
        alice.actor,
        PreferenceChange(diary_time="00:00", quiet_hours_start="23:59", quiet_hours_end="06:05"),
        now=now,
    )

    stored = await Patient.get(id=patient.id)
    assert (stored.diary_time, stored.quiet_hours_start, stored.quiet_hours_end) == ("00:00", "23:59", "06:05")


# --- races between planning and the rest of the funnel ---------------------------------------------------------


async def test_a_prompt_sent_or_answered_while_planning_ran_is_not_moved_back(
    factory: Factory, services: Services, now: datetime
) -> None:
    """The planner read the rows, then the dispatcher sent one and the patient answered another: its writes must
    not turn them back into SCHEDULED prompts (that would send them twice)."""
    alice = await factory.patient(await factory.clinic(), joined=now)
    patient = await Patient.get(id=alice.patient.id)
    patient.diary_time = "19:00"
    await patient.save()
    state = await scheduling.load_state([patient], POLICY, now=now)
    diaries = await rows(alice, "daily_diary")
    await Prompt.filter(id=diaries[0].id).update(status=PromptStatus.SENT, sent_at=now)
    await Prompt.filter(id=diaries[1].id).update(status=PromptStatus.ANSWERED, answered_at=now)

    report = await scheduling.write_plan(state, now=now)

    after = {p.id: p for p in await rows(alice, "daily_diary")}
    assert after[diaries[0].id].status is PromptStatus.SENT
    assert after[diaries[0].id].due_at == diaries[0].due_at
    assert after[diaries[1].id].status is PromptStatus.ANSWERED
    assert report.moved == len(diaries) - 2
    assert {wall(p.due_at, NEW_YORK)[11:] for p in after.values() if p.status is PromptStatus.SCHEDULED} == {"19:00"}

    # Cancelling on stale rows: only what is still unsent is cancelled.
    stale = await scheduling.load_state([await Patient.get(id=patient.id)], POLICY, now=now)
    await Prompt.filter(id=diaries[2].id).update(status=PromptStatus.SENT, sent_at=now)
    await Patient.filter(id=patient.id).update(status=PatientStatus.PAUSED)
    paused = await scheduling.load_state([await Patient.get(id=patient.id)], POLICY, now=now)
    paused.existing = stale.existing

    report = await scheduling.write_plan(paused, now=now)

    after = {p.id: p for p in await rows(alice, "daily_diary")}
    assert after[diaries[2].id].status is PromptStatus.SENT
    assert {after[d.id].status for d in diaries[3:]} == {PromptStatus.CANCELLED}
    unsent = [r for r in stale.existing[patient.id].values() if r.status is PromptStatus.SCHEDULED]
    assert report.cancelled == len(unsent) - 1


async def test_a_new_plan_version_updates_unsent_prompts_in_place_and_leaves_sent_ones(
    factory: Factory, services: Services, now: datetime
) -> None:
    """Editing a plan must not duplicate or re-send anything (anchors §3 C): the same rows take the new rule."""
    alice = await factory.patient(await factory.clinic(), joined=now)
    sent = await _released(alice, now)
    before = await rows(alice)
    old = await default_plan(alice.patient.clinic_id, now=now)
    rules = [dict(r, reminder_minutes=[30]) if r["id"] == "daily_diary" else r for r in old.rules]
    await PromptPlan.filter(id=old.id).update(is_current=False)
    await PromptPlan.create(
        clinic_id=old.clinic_id,
        family_id=old.family_id,
        name=old.name,
        version=2,
        is_default=True,
        rules=rules,
        created_at=now,
    )

    report = await plan_all(POLICY, now=now + timedelta(minutes=1))

    after = await rows(alice)
    assert [p.id for p in after] == [p.id for p in before]
    assert (report.created, report.cancelled) == (0, 0)
    diaries = [p for p in after if p.rule_id == "daily_diary"]
    assert report.moved == len(diaries) - 1
    assert [p.reminder_minutes for p in diaries] == [[60, 120]] + [[30]] * (len(diaries) - 1)
    assert (diaries[0].id, diaries[0].status, diaries[0].updated_at) == (sent.id, PromptStatus.SENT, sent.updated_at)
