"""patient { outcomes series } over GraphQL, as the clinician sees them, computed by hand from a steady course.

The course (tests/outcome_support.py, steady_course): baseline 18–24 October at 8; one session on 25 October;
pain 4 every day from 25 October to 25 November; today is 26 November in New York.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from tests.conftest import count_queries
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient
from tests.outcome_support import steady_course

OUTCOMES = """
query Outcomes($id: ID!, $rule: String) {
  patient(id: $id) {
    outcomes(returnRule: $rule) {
      course { id }
      started firstSession sessions until
      baseline { start end days mean sd sufficient }
      current { date rolling rollingChange rollingPercentChange category twoPoint }
      onset { date days }
      relief { rule ruleName ruleVersion lastSession status reliefStart returnedOn timeToReturnDays durationDays }
      areas { start end afterLastSession daysWithData auc spanDays mean }
      daily { dates pain change percentChange rolling rollingPercentChange category twoPoint }
      trends { metric baseline baselineDays recent recentDays change }
    }
  }
}
"""
SERIES = """
query Series($id: ID!, $metric: SeriesMetric!, $from: Date!, $to: Date!, $bucket: SeriesBucket!) {
  patient(id: $id) {
    series(metric: $metric, from: $from, to: $to, bucket: $bucket) { metric bucket dates values counts }
  }
}
"""


@pytest.fixture
async def clinician(factory: Factory, alice: PatientUser) -> Staff:
    clinic = await alice.patient.clinic
    return await factory.staff(clinic)


@pytest.fixture
async def alice(factory: Factory, now: datetime) -> PatientUser:
    who = await factory.patient(
        await factory.clinic(), name="Alice", timezone="America/New_York", joined=now - timedelta(days=120)
    )
    await steady_course(factory, who, now)
    return who


async def test_the_clinician_reads_the_course_outcome(gql: GraphQLClient, alice: PatientUser, clinician: Staff) -> None:
    result = await gql(OUTCOMES, {"id": str(alice.patient.id)}, actor=clinician.actor)

    (outcome,) = result.ok()["patient"]["outcomes"]
    assert (outcome["started"], outcome["firstSession"], outcome["sessions"], outcome["until"]) == (
        True,
        "2026-10-25",
        ["2026-10-25"],
        "2026-11-26",
    )
    assert outcome["baseline"] == {
        "start": "2026-10-18",
        "end": "2026-10-24",
        "days": 7,
        "mean": 8.0,
        "sd": 0.0,
        "sufficient": True,
    }
    # Today (26 November) the window 20–26 November holds six days at 4: 4 − 8 = −4 points, −50 %.
    assert outcome["current"] == {
        "date": "2026-11-26",
        "rolling": 4.0,
        "rollingChange": -4.0,
        "rollingPercentChange": -50.0,
        "category": "SUBSTANTIAL",
        "twoPoint": True,
    }
    # 25–28 October: the fourth day since the session gives the first rolling mean, already −50 %.
    assert outcome["onset"] == {"date": "2026-10-28", "days": 3}
    # Relief from 28 October through today: 4 + 26 = 30 days, not returned.
    assert outcome["relief"] == {
        "rule": "rolling30.v1",
        "ruleName": "rolling30",
        "ruleVersion": 1,
        "lastSession": "2026-10-25",
        "status": "ONGOING",
        "reliefStart": "2026-10-28",
        "returnedOn": None,
        "timeToReturnDays": None,
        "durationDays": 30,
    }
    # 32 days at 4 from 25 October to 25 November: 31 one-day trapezoids of 4 = 124 point-days, mean 4.
    assert outcome["areas"] == [
        {
            "start": "2026-10-25",
            "end": "2026-11-26",
            "afterLastSession": True,
            "daysWithData": 32,
            "auc": 124.0,
            "spanDays": 31,
            "mean": 4.0,
        }
    ]


async def test_the_daily_response_is_parallel_lists(gql: GraphQLClient, alice: PatientUser, clinician: Staff) -> None:
    result = await gql(OUTCOMES, {"id": str(alice.patient.id)}, actor=clinician.actor)

    daily = result.ok()["patient"]["outcomes"][0]["daily"]
    # 25 October … 26 November: 7 + 26 = 33 days; every list has one value per day.
    assert {len(v) for v in daily.values()} == {33}
    assert daily["dates"][:4] == ["2026-10-25", "2026-10-26", "2026-10-27", "2026-10-28"]
    assert daily["pain"][:4] == [4.0] * 4
    assert daily["pain"][-1] is None
    assert daily["change"][0] == -4.0
    assert daily["percentChange"][0] == -50.0
    assert daily["rolling"][:4] == [None, None, None, 4.0]
    assert daily["category"][:4] == [None, None, None, "SUBSTANTIAL"]
    assert daily["twoPoint"][:4] == [None, None, None, True]


async def test_sleep_and_mood_trends_sit_alongside(gql: GraphQLClient, alice: PatientUser, clinician: Staff) -> None:
    result = await gql(OUTCOMES, {"id": str(alice.patient.id)}, actor=clinician.actor)

    trends = {t["metric"]: t for t in result.ok()["patient"]["outcomes"][0]["trends"]}
    # Baseline 6 h and mood 4 over seven days; the last seven days (20–26 November) have six days at 7.5 h, mood 7.
    assert trends["SLEEP_HOURS"] == {
        "metric": "SLEEP_HOURS",
        "baseline": 6.0,
        "baselineDays": 7,
        "recent": 7.5,
        "recentDays": 6,
        "change": 1.5,
    }
    assert (trends["MOOD"]["baseline"], trends["MOOD"]["recent"], trends["MOOD"]["change"]) == (4.0, 7.0, 3.0)
    # Nobody logged sleep quality or worst pain: no means, no change.
    assert (trends["SLEEP_QUALITY"]["baseline"], trends["SLEEP_QUALITY"]["recentDays"]) == (None, 0)
    assert set(trends) == {"PAIN_WORST", "SLEEP_HOURS", "SLEEP_QUALITY", "MOOD"}


async def test_the_caller_may_name_another_return_rule(
    gql: GraphQLClient, alice: PatientUser, clinician: Staff
) -> None:
    named = await gql(OUTCOMES, {"id": str(alice.patient.id), "rule": "baseline_minus_one.v1"}, actor=clinician.actor)
    unknown = await gql(OUTCOMES, {"id": str(alice.patient.id), "rule": "rolling30.v2"}, actor=clinician.actor)

    assert named.ok()["patient"]["outcomes"][0]["relief"]["rule"] == "baseline_minus_one.v1"
    assert (unknown.codes, unknown.fields) == (["BAD_USER_INPUT"], ["returnRule"])


async def test_a_years_chart_is_one_request_with_a_fixed_number_of_statements(
    gql: GraphQLClient, alice: PatientUser, clinician: Staff
) -> None:
    variables = {
        "id": str(alice.patient.id),
        "metric": "PAIN_AVERAGE",
        "from": "2025-11-27",
        "to": "2026-11-27",
        "bucket": "DAY",
    }

    with count_queries() as counter:
        result = await gql(SERIES, variables, actor=clinician.actor)

    chart = result.ok()["patient"]["series"]
    assert (chart["metric"], chart["bucket"], len(chart["dates"]), len(chart["values"])) == (
        "PAIN_AVERAGE",
        "DAY",
        365,
        365,
    )
    assert chart["dates"][0] == "2025-11-27"
    assert chart["dates"][-1] == "2026-11-26"
    # 18 October is day 325 of the range (27 November 2025 + 325 days); 7 days at 8 then 32 at 4, then today empty.
    start = chart["dates"].index("2026-10-18")
    assert start == (date(2026, 10, 18) - date(2025, 11, 27)).days
    assert chart["values"][start:] == [8.0] * 7 + [4.0] * 32 + [None]
    assert sum(chart["counts"]) == 39
    # The patient (1), the audit event and its subject (2), the entries (1): nothing per day or per entry.
    assert counter.statements == ["SELECT", "INSERT", "INSERT", "SELECT"]


@pytest.mark.parametrize(
    ("bucket", "dates", "values"),
    [
        # 18 October (a Sunday) to 1 November. ISO weeks: Mon 12 Oct holds only the 18th (8); Mon 19 Oct holds
        # 19–24 Oct at 8 and the 25th at 4 → 52/7; Mon 26 Oct to Sun 1 Nov at 4.
        ("WEEK", ["2026-10-12", "2026-10-19", "2026-10-26"], [8.0, 52 / 7, 4.0]),
        # October: 18–24 at 8 (7 days) and 25–31 at 4 (7 days) → 6. November: only the 1st, 4.
        ("MONTH", ["2026-10-01", "2026-11-01"], [6.0, 4.0]),
    ],
)
async def test_weekly_and_monthly_buckets(
    gql: GraphQLClient, alice: PatientUser, clinician: Staff, *, bucket: str, dates: list[str], values: list[float]
) -> None:
    variables = {"id": str(alice.patient.id), "metric": "PAIN_AVERAGE", "from": "2026-10-18", "to": "2026-11-02"}

    chart = (await gql(SERIES, {**variables, "bucket": bucket}, actor=clinician.actor)).ok()["patient"]["series"]

    assert chart["dates"] == dates
    assert chart["values"] == pytest.approx(values)


@pytest.mark.parametrize(
    ("start", "end"), [("2026-11-02", "2026-11-02"), ("2026-11-03", "2026-11-01"), ("2025-11-01", "2026-11-03")]
)
async def test_an_empty_or_too_long_range_is_refused_naming_to(
    start: str, end: str, gql: GraphQLClient, alice: PatientUser, clinician: Staff
) -> None:
    variables = {"id": str(alice.patient.id), "metric": "MOOD", "from": start, "to": end, "bucket": "DAY"}

    result = await gql(SERIES, variables, actor=clinician.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], ["to"])


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [("0001-01-01", "0001-02-01", "from"), ("9999-12-01", "9999-12-31", "from"), ("2026-11-01", "9999-12-31", "to")],
)
async def test_dates_at_the_ends_of_the_calendar_are_refused_naming_the_argument(
    gql: GraphQLClient, alice: PatientUser, clinician: Staff, *, start: str, end: str, field: str
) -> None:
    # The lookback and the UTC margins around them would overflow `date`: refused, never INTERNAL.
    variables = {"id": str(alice.patient.id), "metric": "PAIN_ROLLING7", "from": start, "to": end, "bucket": "DAY"}

    result = await gql(SERIES, variables, actor=clinician.actor)

    assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field])
