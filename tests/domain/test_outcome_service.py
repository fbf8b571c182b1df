"""OutcomeService on a real database: local days in the patient's zone, courses and their sessions, deleted entries,
access, audit, the configured rule and the refusals. Expected values are worked out by hand in each test."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from pydantic import ValidationError

from api.container import build_services
from api.domain.actor import Actor, Role
from api.domain.audit.models import AuditEvent
from api.domain.errors import BadInput, Forbidden, NotFound
from api.domain.outcome.response import ReliefStatus
from api.domain.outcome.series import Bucket, Metric
from api.domain.outcome.service import OutcomeService
from api.domain.services import Services
from api.domain.treatment.models import SessionStatus
from api.settings import Settings
from tests.conftest import make_settings
from tests.factories import Factory, PatientUser, Staff
from tests.outcome_support import course, pain_days

EDT = timezone(timedelta(hours=-4))  # New York until 1 November 2026, 02:00
EST = timezone(timedelta(hours=-5))  # New York after


@dataclass
class World:
    staff: Staff
    alice: PatientUser  # New York
    bob: PatientUser  # same clinic
    away_staff: Staff


@pytest.fixture
async def world(factory: Factory, now: datetime) -> World:
    home, away = await factory.clinic(), await factory.clinic()
    return World(
        staff=await factory.staff(home),
        alice=await factory.patient(home, timezone="America/New_York", joined=now - timedelta(days=150)),
        bob=await factory.patient(home),
        away_staff=await factory.staff(away),
    )


async def new_york_course(factory: Factory, services: Services, alice: PatientUser, now: datetime) -> None:
    """A session on 1 November 21:00 EST (2 November 02:00 UTC), the day New York leaves summer time.

    Evening entries (21:30 local, 01:30 UTC the next day) at 6 from 25 to 31 October; one at 10 on 24 October;
    one at 10 on 28 October that is then deleted; on 1 November one at 01:30 EDT (4) and one at 21:30 EST (2).
    """
    await course(alice.patient, now, (datetime(2026, 11, 2, 2, 0, tzinfo=UTC), SessionStatus.COMPLETED))
    await pain_days(factory, alice, {datetime(2026, 10, d, 21, 30, tzinfo=EDT): 6 for d in range(25, 32)})
    await pain_days(
        factory,
        alice,
        {
            datetime(2026, 10, 24, 21, 30, tzinfo=EDT): 10,
            datetime(2026, 11, 1, 1, 30, tzinfo=EDT): 4,
            datetime(2026, 11, 1, 21, 30, tzinfo=EST): 2,
        },
    )
    wrong = await factory.entry(alice, recorded_at=datetime(2026, 10, 28, 10, 0, tzinfo=EDT), pain_average=10)
    await services.diary.delete(alice.actor, wrong.id, now=now)


async def test_days_are_the_patients_local_days_across_the_dst_change(
    factory: Factory, services: Services, world: World, now: datetime
) -> None:
    await new_york_course(factory, services, world.alice, now)

    (report,) = await services.outcomes.outcomes(world.staff.actor, world.alice.patient.id, now=now)

    outcome = report.outcome
    # The session is on 1 November locally (2 November in UTC): the baseline window is 25–31 October, where every
    # day is 6 (the 24 October 10 lies before it, the deleted 10 on the 28th is ignored): mean 6, SD 0, 7 days.
    assert outcome.first_session == date(2026, 11, 1)
    assert outcome.baseline is not None
    assert (outcome.baseline.start, outcome.baseline.end) == (date(2026, 10, 25), date(2026, 10, 31))
    assert (outcome.baseline.days, outcome.baseline.mean, outcome.baseline.sd) == (7, 6.0, 0.0)
    # 1 November holds both its entries, one in summer and one in winter time: (4 + 2)/2 = 3, −3 points, −50 %.
    first = outcome.days[0]
    assert (first.day, first.pain, first.change, first.percent_change) == (date(2026, 11, 1), 3.0, -3.0, -50.0)
    # Today in New York is 26 November (07:00 local): 1–26 November, 26 days.
    assert (outcome.until, len(outcome.days)) == (date(2026, 11, 26), 26)


async def test_courses_end_where_the_next_begins_and_cancelled_sessions_do_not_count(
    services: Services, world: World, now: datetime
) -> None:
    def at(month: int, day: int) -> datetime:
        return datetime(2026, month, day, 14, 0, tzinfo=UTC)  # 10:00 in New York

    patient = world.alice.patient
    first = await course(patient, now, (at(9, 1), SessionStatus.COMPLETED), (at(9, 8), SessionStatus.COMPLETED))
    second = await course(patient, now, (at(10, 1), SessionStatus.CANCELLED), (at(10, 15), SessionStatus.COMPLETED))
    planned = await course(patient, now, (at(12, 10), SessionStatus.SCHEDULED))
    empty = await course(patient, now, created_at=now - timedelta(days=300))

    reports = await services.outcomes.outcomes(world.staff.actor, patient.id, now=now)

    assert [r.course.id for r in reports] == [first.id, second.id, planned.id, empty.id]
    shape = [(r.outcome.first_session, r.outcome.sessions, r.outcome.until, r.outcome.started) for r in reports]
    assert shape == [
        (date(2026, 9, 1), (date(2026, 9, 1), date(2026, 9, 8)), date(2026, 10, 14), True),
        (date(2026, 10, 15), (date(2026, 10, 15),), date(2026, 11, 26), True),
        (date(2026, 12, 10), (), date(2026, 11, 26), False),
        (None, (), date(2026, 11, 26), False),
    ]
    # 1 September to 14 October: 44 days; the second course from 15 October to today: 43.
    assert [len(r.outcome.days) for r in reports] == [44, 43, 0, 0]


async def test_relief_uses_the_configured_rule_unless_the_caller_names_one(
    factory: Factory, services: Services, world: World, now: datetime
) -> None:
    # Baseline 8 (18–24 October), session 25 October, then 4 every day to 25 November: the rolling mean is 4 from
    # 28 October, 50 % down and 4 points below baseline, and stays there: relief is ongoing by either rule.
    noon = {datetime(2026, 10, d, 12, 0, tzinfo=EDT): 8 for d in range(18, 25)}
    noon |= {datetime(2026, 10, 25, 12, 0, tzinfo=EDT) + timedelta(days=i): 4 for i in range(32)}
    await course(world.alice.patient, now, (datetime(2026, 10, 25, 14, 0, tzinfo=UTC), SessionStatus.COMPLETED))
    await pain_days(factory, world.alice, noon)
    other = build_services(make_settings().model_copy(update={"outcome_return_rule": "baseline_minus_one.v1"}))

    default = await services.outcomes.outcomes(world.staff.actor, world.alice.patient.id, now=now)
    configured = await other.outcomes.outcomes(world.staff.actor, world.alice.patient.id, now=now)
    named = await services.outcomes.outcomes(
        world.staff.actor, world.alice.patient.id, now=now, rule="baseline_minus_one.v1"
    )

    reliefs = [r[0].outcome.relief for r in (default, configured, named)]
    assert [(x.rule.id, x.status, x.relief_start) for x in reliefs if x] == [
        ("rolling30.v1", ReliefStatus.ONGOING, date(2026, 10, 28)),
        ("baseline_minus_one.v1", ReliefStatus.ONGOING, date(2026, 10, 28)),
        ("baseline_minus_one.v1", ReliefStatus.ONGOING, date(2026, 10, 28)),
    ]
    # 28 October through 26 November: 30 days of relief so far.
    assert {x.duration_days for x in reliefs if x} == {30}


async def test_an_unknown_rule_is_refused_by_name_at_startup_and_per_call(
    services: Services, world: World, now: datetime
) -> None:
    with pytest.raises(ValidationError, match="unknown rule"):
        Settings(outcome_return_rule="rolling30.v9")
    with pytest.raises(ValueError, match=r"rolling30\.v9"):
        OutcomeService(services.prompts, return_rule="rolling30.v9")
    with pytest.raises(BadInput) as refused:
        await services.outcomes.outcomes(world.staff.actor, world.alice.patient.id, now=now, rule="nope.v1")
    assert refused.value.field == "return_rule"


async def test_staff_reads_are_audited_and_the_patients_own_are_not(
    services: Services, world: World, now: datetime
) -> None:
    alice = world.alice.patient.id

    await services.outcomes.outcomes(world.alice.actor, alice, now=now)
    assert await AuditEvent.filter(action="outcome.read").count() == 0

    await services.outcomes.outcomes(world.staff.actor, alice, now=now)
    await services.outcomes.series(
        Actor(world.staff.account.id, Role.CLINICIAN, world.staff.actor.clinic_id),
        alice,
        Metric.MOOD,
        start=date(2026, 11, 1),
        end=date(2026, 11, 2),
        bucket=Bucket.DAY,
        now=now,
    )
    events = await AuditEvent.filter(action="outcome.read").values_list("patient_id", "actor_id")
    assert events == [(alice, world.staff.account.id)] * 2


@pytest.mark.parametrize("who", ["other patient", "other clinic's staff", "missing patient"])
async def test_someone_elses_outcomes_are_not_found(who: str, services: Services, world: World, now: datetime) -> None:
    actor = {"other patient": world.bob.actor, "other clinic's staff": world.away_staff.actor}.get(who)
    actor = actor or world.staff.actor
    patient = uuid4() if who == "missing patient" else world.alice.patient.id
    span = {"start": date(2026, 11, 1), "end": date(2026, 11, 2), "bucket": Bucket.DAY, "now": now}

    with pytest.raises(NotFound):
        await services.outcomes.outcomes(actor, patient, now=now)
    with pytest.raises(NotFound):
        await services.outcomes.series(actor, patient, Metric.PAIN_AVERAGE, **span)  # type: ignore[arg-type]
    assert await AuditEvent.filter(action="outcome.read").count() == 0


async def test_series_counts_each_entry_on_its_own_local_day(
    factory: Factory, services: Services, world: World, now: datetime
) -> None:
    # Entries carry their own offset (the patient travelled): 10 November 00:30 at +14:00 is 9 November 10:30 UTC,
    # 10 November 23:30 at −10:00 is 11 November 09:30 UTC; both are 10 November → (2 + 6)/2 = 4.
    # 9 November 23:30 at −10:00 (10 November 09:30 UTC) is the 9th → 9.
    await pain_days(
        factory,
        world.alice,
        {
            datetime(2026, 11, 10, 0, 30, tzinfo=timezone(timedelta(hours=14))): 2,
            datetime(2026, 11, 10, 23, 30, tzinfo=timezone(timedelta(hours=-10))): 6,
            datetime(2026, 11, 9, 23, 30, tzinfo=timezone(timedelta(hours=-10))): 9,
        },
    )

    found = await services.outcomes.series(
        world.staff.actor,
        world.alice.patient.id,
        Metric.PAIN_AVERAGE,
        start=date(2026, 11, 9),
        end=date(2026, 11, 12),
        bucket=Bucket.DAY,
        now=now,
    )

    assert (found.values, found.counts) == ([9.0, 4.0, None], [1, 1, 0])


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (date(2026, 11, 2), date(2026, 11, 2), "after"),
        (date(2026, 11, 3), date(2026, 11, 2), "after"),
        (date(2025, 11, 1), date(2026, 11, 3), "366"),
    ],
)
async def test_series_refuses_an_empty_or_too_long_range(
    services: Services, world: World, now: datetime, *, start: date, end: date, message: str
) -> None:
    with pytest.raises(BadInput, match=message) as refused:
        await services.outcomes.series(
            world.staff.actor, world.alice.patient.id, Metric.MOOD, start=start, end=end, bucket=Bucket.DAY, now=now
        )
    assert refused.value.field == "to"


async def test_a_series_of_exactly_366_days_is_allowed(services: Services, world: World, now: datetime) -> None:
    start = date(2025, 11, 26)
    found = await services.outcomes.series(
        world.staff.actor,
        world.alice.patient.id,
        Metric.MOOD,
        start=start,
        end=start + timedelta(days=366),
        bucket=Bucket.DAY,
        now=now,
    )
    assert len(found.dates) == 366


async def test_trends_are_the_patients_own_last_days(
    factory: Factory, services: Services, world: World, now: datetime
) -> None:
    # Today in New York is 26 November; 3 days are 24–26 November. Mood 5 on the 23rd (outside), 7 on the 24th,
    # and two entries on the 26th (4 and 8 → 6).
    for (d, hour), value in (((23, 12), 5), ((24, 12), 7), ((26, 1), 4), ((26, 6), 8)):
        await factory.entry(world.alice, recorded_at=datetime(2026, 11, d, hour, tzinfo=EST), mood=value)

    trends = await services.outcomes.trends(world.alice.actor, 3, now=now)

    chart = trends.series(Metric.MOOD)
    assert (trends.start, trends.end) == (date(2026, 11, 24), date(2026, 11, 26))
    assert (chart.dates, chart.values) == ([date(2026, 11, d) for d in (24, 25, 26)], [7.0, None, 6.0])
    assert trends.course is None
    assert [(a.instrument, a.answered, a.expired) for a in trends.adherence] == [(None, 0, 0)]


@pytest.mark.parametrize("days", [0, -1, 366])
async def test_trends_refuse_days_out_of_range(days: int, services: Services, world: World, now: datetime) -> None:
    with pytest.raises(BadInput) as refused:
        await services.outcomes.trends(world.alice.actor, days, now=now)
    assert refused.value.field == "days"


async def test_trends_are_for_patients_only(services: Services, world: World, now: datetime) -> None:
    with pytest.raises(Forbidden):
        await services.outcomes.trends(world.staff.actor, 30, now=now)
