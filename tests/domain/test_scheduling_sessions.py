"""Prompts anchored to infusion sessions follow every change to the session (design §4.1–4.2): scheduled,
rescheduled, cancelled, completed with its real end, superseded by the next session. Sent and answered prompts are
history and never move."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from api.container import build_job_config
from api.domain.diary.validation import DiaryInput
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, SessionStatus
from api.domain.treatment.service import SessionChange
from jobs.passes import tick
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser, Staff

NY = "America/New_York"
SESSION_RULES = ("pre_session", "post_infusion_2h", "post_infusion_24h", "post_infusion_72h")
CONFIG = build_job_config(make_settings())


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(NY)).astimezone(UTC)


def wall(instant: datetime) -> str:
    return instant.astimezone(ZoneInfo(NY)).strftime("%m-%d %H:%M")


@dataclass
class Clinic:
    staff: Staff
    alice: PatientUser


@pytest.fixture
async def clinic(factory: Factory, now: datetime) -> Clinic:
    home = await factory.clinic()
    return Clinic(await factory.staff(home), await factory.patient(home, timezone=NY, joined=now - timedelta(days=2)))


async def schedule(services: Services, c: Clinic, starts: str, now: datetime, minutes: int = 60) -> InfusionSession:
    return await services.treatment.schedule(
        c.staff.actor,
        c.alice.patient.id,
        starts_at=local(starts),
        planned_duration_minutes=minutes,
        course_id=None,
        now=now,
    )


async def of_session(session_id: UUID) -> dict[str, Prompt]:
    return {p.rule_id: p for p in await Prompt.filter(session_id=session_id)}


def times(prompts: dict[str, Prompt]) -> dict[str, tuple[str, str, PromptStatus]]:
    return {rule: (wall(p.due_at), wall(p.expires_at), p.status) for rule, p in prompts.items()}


S = PromptStatus.SCHEDULED


async def test_scheduling_an_infusion_creates_its_follow_ups(services: Services, clinic: Clinic, now: datetime) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)

    prompts = await of_session(session.id)
    assert times(prompts) == {
        "pre_session": ("11-26 10:00", "11-27 10:00", S),  # closes when the session starts
        "post_infusion_2h": ("11-27 13:00", "11-27 17:00", S),
        "post_infusion_24h": ("11-28 11:00", "11-28 23:00", S),
        "post_infusion_72h": ("11-30 11:00", "12-01 11:00", S),
    }
    assert {p.anchor for p in prompts.values()} == {f"session:{session.id}"}
    assert {p.instrument for p in prompts.values()} == {"pre_session", "post_infusion"}
    assert all(p.push and p.deliver_at == p.due_at for p in prompts.values())


async def test_rescheduling_moves_the_same_rows(services: Services, clinic: Clinic, now: datetime) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    before = await of_session(session.id)

    await services.treatment.update(
        clinic.staff.actor, session.id, SessionChange(starts_at=local("2026-11-28 09:00")), now=now
    )

    after = await of_session(session.id)
    assert {r: p.id for r, p in after.items()} == {r: p.id for r, p in before.items()}
    assert times(after) == {
        "pre_session": ("11-27 09:00", "11-28 09:00", S),
        "post_infusion_2h": ("11-28 12:00", "11-28 16:00", S),
        "post_infusion_24h": ("11-29 10:00", "11-29 22:00", S),
        "post_infusion_72h": ("12-01 10:00", "12-02 10:00", S),
    }
    assert await Prompt.filter(patient_id=clinic.alice.patient.id, rule_id__in=SESSION_RULES).count() == 4


async def test_a_session_moved_past_the_horizon_and_back_keeps_its_prompts(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    ids = {r: p.id for r, p in (await of_session(session.id)).items()}

    await services.treatment.update(
        clinic.staff.actor, session.id, SessionChange(starts_at=local("2026-12-20 10:00")), now=now
    )
    assert {p.status for p in (await of_session(session.id)).values()} == {PromptStatus.CANCELLED}

    await services.treatment.update(
        clinic.staff.actor, session.id, SessionChange(starts_at=local("2026-11-27 11:00")), now=now
    )
    back = await of_session(session.id)
    assert {r: p.id for r, p in back.items()} == ids
    assert {p.status for p in back.values()} == {S}
    assert all(p.cancelled_at is None for p in back.values())
    assert wall(back["post_infusion_2h"].due_at) == "11-27 14:00"


async def test_cancelling_a_session_cancels_its_unsent_prompts(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    other = await schedule(services, clinic, "2026-12-02 10:00", now)
    later = now + timedelta(hours=1)

    cancelled = await services.treatment.update(
        clinic.staff.actor, session.id, SessionChange(status=SessionStatus.CANCELLED), now=later
    )

    assert cancelled.status is SessionStatus.CANCELLED
    prompts = await of_session(session.id)
    assert {p.status for p in prompts.values()} == {PromptStatus.CANCELLED}
    assert {p.cancelled_at for p in prompts.values()} == {later}
    # The other session's prompts stand.
    assert {p.status for p in (await of_session(other.id)).values()} == {S}


async def test_completing_re_anchors_after_session_prompts_on_the_real_end(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    before = await of_session(session.id)
    at = local("2026-11-27 12:00")
    await tick(CONFIG, at)  # the pre-session check went out the day before

    await services.treatment.update(
        clinic.staff.actor,
        session.id,
        SessionChange(
            status=SessionStatus.COMPLETED, started_at=local("2026-11-27 10:05"), ended_at=local("2026-11-27 10:50")
        ),
        now=at,
    )

    after = await of_session(session.id)
    course_end = after.pop("pgic_course_end")  # no session of the course is left to come
    assert {r: p.id for r, p in after.items()} == {r: p.id for r, p in before.items()}
    assert (wall(course_end.due_at), course_end.instrument) == ("12-04 10:50", "pgic")
    assert times(after) == {
        # Expired when the session started; never cancelled by its completion.
        "pre_session": ("11-26 10:00", "11-27 10:00", PromptStatus.EXPIRED),
        "post_infusion_2h": ("11-27 12:50", "11-27 16:50", S),
        "post_infusion_24h": ("11-28 10:50", "11-28 22:50", S),
        "post_infusion_72h": ("11-30 10:50", "12-01 10:50", S),
    }


async def test_a_session_48_hours_later_supersedes_the_72_hour_check(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    first = await schedule(services, clinic, "2026-11-27 10:00", now)

    second = await schedule(services, clinic, "2026-11-29 10:00", now)

    mine = await of_session(first.id)
    assert mine["post_infusion_72h"].status is PromptStatus.CANCELLED
    assert {r: p.status for r, p in mine.items() if r != "post_infusion_72h"} == dict.fromkeys(
        ("pre_session", "post_infusion_2h", "post_infusion_24h"), S
    )
    theirs = await of_session(second.id)
    assert times(theirs) == {
        "pre_session": ("11-28 10:00", "11-29 10:00", S),
        "post_infusion_2h": ("11-29 13:00", "11-29 17:00", S),
        "post_infusion_24h": ("11-30 11:00", "11-30 23:00", S),
        "post_infusion_72h": ("12-02 11:00", "12-03 11:00", S),
    }

    # Cancelling the second session gives the first its 72-hour check back: the same row.
    await services.treatment.update(
        clinic.staff.actor, second.id, SessionChange(status=SessionStatus.CANCELLED), now=now
    )
    again = await of_session(first.id)
    assert again["post_infusion_72h"].id == mine["post_infusion_72h"].id
    assert again["post_infusion_72h"].status is S


async def test_sent_and_answered_prompts_are_never_moved_or_cancelled(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    await tick(CONFIG, local("2026-11-26 10:00"))  # pre-session check sent
    pre = (await of_session(session.id))["pre_session"]
    await services.diary.log(
        clinic.alice.actor,
        DiaryInput(client_id=uuid4(), recorded_at=local("2026-11-26 10:30"), pain_now=3, prompt_id=str(pre.id)),
        now=local("2026-11-26 10:30"),
    )
    await tick(CONFIG, local("2026-11-27 13:00"))  # the 2-hour check sent
    history = await of_session(session.id)
    assert history["pre_session"].status is PromptStatus.ANSWERED
    assert history["post_infusion_2h"].status is PromptStatus.SENT
    at = local("2026-11-27 13:30")

    await services.treatment.update(clinic.staff.actor, session.id, SessionChange(planned_duration_minutes=240), now=at)
    moved = await of_session(session.id)
    await services.treatment.update(
        clinic.staff.actor, session.id, SessionChange(status=SessionStatus.CANCELLED), now=at
    )
    cancelled = await of_session(session.id)

    for prompts in (moved, cancelled):
        for rule in ("pre_session", "post_infusion_2h"):
            assert (prompts[rule].status, prompts[rule].due_at, prompts[rule].updated_at) == (
                history[rule].status,
                history[rule].due_at,
                history[rule].updated_at,
            )
    assert wall(moved["post_infusion_24h"].due_at) == "11-28 14:00"  # the longer session moved the unsent ones
    assert {cancelled[r].status for r in ("post_infusion_24h", "post_infusion_72h")} == {PromptStatus.CANCELLED}


async def test_a_missed_window_is_left_to_expire_rather_than_cancelled(
    services: Services, clinic: Clinic, now: datetime
) -> None:
    """The pre-session check closed when the session began and nobody answered it: that is a missed check (it
    counts against adherence), even if the expire pass has not run before the clinician records the session."""
    session = await schedule(services, clinic, "2026-11-27 10:00", now)
    cancelled = await schedule(services, clinic, "2026-11-28 10:00", now)
    at = local("2026-11-28 12:00")

    await services.treatment.update(
        clinic.staff.actor,
        session.id,
        SessionChange(status=SessionStatus.COMPLETED, ended_at=local("2026-11-27 11:00")),
        now=at,
    )
    await services.treatment.update(
        clinic.staff.actor, cancelled.id, SessionChange(status=SessionStatus.CANCELLED), now=at
    )

    pres = [(await of_session(s.id))["pre_session"] for s in (session, cancelled)]
    assert [p.status for p in pres] == [S, S]
    await tick(CONFIG, at)
    pres = [(await of_session(s.id))["pre_session"] for s in (session, cancelled)]
    assert [(p.status, p.expired_at) for p in pres] == [(PromptStatus.EXPIRED, at)] * 2
