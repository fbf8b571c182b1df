"""myTrends: the patient's own chart series, current course and adherence, worked out by hand from a steady course.

The course (tests/outcome_support.py, steady_course): baseline 18–24 October (pain 8, sleep 6 h, mood 4); one session
on 25 October; from 25 October to 25 November pain 4, sleep 7.5 h, mood 7. Today is 26 November in New York.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from api.domain.treatment.models import SessionStatus
from tests.conftest import count_queries
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.outcome_support import course, steady_course

TRENDS = """
query Trends($days: Int) {
  myTrends(days: $days) {
    days from to
    pain { metric bucket dates values counts }
    painRolling7 { values }
    sleepHours { values }
    sleepQuality { values }
    mood { values }
    weekly: series(metric: MOOD, bucket: WEEK) { dates values counts }
    course { firstSession baseline { mean } current { rolling category twoPoint } relief { rule status } }
    adherence { instrument answered expired rate }
  }
}
"""


@pytest.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    who = await factory.patient(
        await factory.clinic(), name="Alice", timezone="America/New_York", joined=now - timedelta(days=120)
    )
    await steady_course(factory, who, now)
    return who


async def test_ten_days_of_trends(gql: GraphQLClient, alice: PatientUser) -> None:
    trends = (await gql(TRENDS, {"days": 10}, actor=alice.actor)).ok()["myTrends"]

    # 17–26 November: nine logged days, today empty.
    assert (trends["days"], trends["from"], trends["to"]) == (10, "2026-11-17", "2026-11-26")
    assert trends["pain"]["dates"] == [f"2026-11-{d}" for d in range(17, 27)]
    assert (trends["pain"]["metric"], trends["pain"]["bucket"]) == ("PAIN_AVERAGE", "DAY")
    assert trends["pain"]["values"] == [4.0] * 9 + [None]
    assert trends["pain"]["counts"] == [1] * 9 + [0]
    # The rolling mean looks back before the range (the 11th–17th for the 17th) and today still has six days.
    assert trends["painRolling7"]["values"] == [4.0] * 10
    assert trends["sleepHours"]["values"] == [7.5] * 9 + [None]
    assert trends["sleepQuality"]["values"] == [None] * 10
    assert trends["mood"]["values"] == [7.0] * 9 + [None]
    # ISO weeks: Mon 16 November (17–22: six days) and Mon 23 November (23–26: three with data).
    assert trends["weekly"] == {"dates": ["2026-11-16", "2026-11-23"], "values": [7.0, 7.0], "counts": [6, 3]}


async def test_the_current_course_and_adherence_come_with_the_trends(gql: GraphQLClient, alice: PatientUser) -> None:
    trends = (await gql(TRENDS, {"days": 10}, actor=alice.actor)).ok()["myTrends"]

    # The course began long before these ten days: its baseline (18–24 October) is still 8, and today's rolling
    # mean (20–26 November, six days at 4) is 50 % down and 4 points below it.
    assert trends["course"] == {
        "firstSession": "2026-10-25",
        "baseline": {"mean": 8.0},
        "current": {"rolling": 4.0, "category": "SUBSTANTIAL", "twoPoint": True},
        "relief": {"rule": "rolling30.v1", "status": "ONGOING"},
    }
    # No check-in came due: nothing answered, nothing missed, no rate.
    assert trends["adherence"] == [{"instrument": None, "answered": 0, "expired": 0, "rate": None}]


async def test_booking_the_next_course_does_not_replace_the_one_under_way(
    gql: GraphQLClient, alice: PatientUser, now: datetime
) -> None:
    # A second course whose first session is only booked (3 December): the patient is still in the first one.
    await course(alice.patient, now, (now + timedelta(days=7), SessionStatus.SCHEDULED), created_at=now)

    trends = (await gql(TRENDS, {"days": 10}, actor=alice.actor)).ok()["myTrends"]

    assert trends["course"]["firstSession"] == "2026-10-25"
    assert trends["course"]["current"] == {"rolling": 4.0, "category": "SUBSTANTIAL", "twoPoint": True}


async def test_thirty_days_by_default_also_when_null(gql: GraphQLClient, alice: PatientUser) -> None:
    omitted = (await gql(TRENDS, {}, actor=alice.actor)).ok()["myTrends"]
    null = (await gql(TRENDS, {"days": None}, actor=alice.actor)).ok()["myTrends"]

    # 28 October – 26 November.
    assert (omitted["days"], omitted["from"], len(omitted["pain"]["values"])) == (30, "2026-10-28", 30)
    assert null == omitted


@pytest.mark.parametrize("days", [0, -5, 366])
async def test_days_out_of_range_are_refused(days: int, gql: GraphQLClient, alice: PatientUser) -> None:
    result = await gql(TRENDS, {"days": days}, actor=alice.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["days"])
    assert result.data is None


async def test_a_year_of_trends_is_one_request_with_a_fixed_number_of_statements(
    gql: GraphQLClient, alice: PatientUser
) -> None:
    with count_queries() as counter:
        trends = (await gql(TRENDS, {"days": 365}, actor=alice.actor)).ok()["myTrends"]

    assert len(trends["pain"]["values"]) == len(trends["mood"]["values"]) == 365
    # 7 days at 8, 32 at 4 and an empty today at the end of the year.
    assert trends["pain"]["values"][-40:] == [8.0] * 7 + [4.0] * 32 + [None]
    # The patient, the courses, the sessions, the entries and the adherence counts: no statement per day.
    assert counter.statements == ["SELECT"] * 6
