"""patient { adherence }: answered ÷ (answered + expired), overall first and then per instrument.

Alice lives in New York and joined on 24 November at 07:00 local: a daily diary at 20:00 local (01:00 UTC the next
day, open 7 hours), a PHQ-9 and a GAD-7 at 18:00 local that day (open 3 days).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import tests.conftest
from api.container import build_job_config
from api.domain.actor import Actor
from api.domain.prompt.models import Prompt
from jobs import passes
from tests.factories import Factory, PatientUser, Staff
from tests.graphql import GraphQLClient
from tests.schema.diary_support import LOG, entry_input

ADHERENCE = "query Adherence($id: ID!) { patient(id: $id) { adherence { instrument answered expired rate } } }"

JOINED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DIARY_24_DUE = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
DIARY_25_DUE = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


async def tick(at: datetime) -> None:
    await passes.tick(build_job_config(tests.conftest.make_settings()), at)


async def adherence(gql: GraphQLClient, alice: PatientUser, actor: Actor, at: datetime) -> list[dict[str, Any]]:
    result = (await gql(ADHERENCE, {"id": str(alice.patient.id)}, actor=actor, now=at)).ok()
    rows = result["patient"]["adherence"]
    assert isinstance(rows, list)
    return rows


def row(instrument: str | None, answered: int, expired: int, rate: object) -> dict[str, Any]:
    return {"instrument": instrument, "answered": answered, "expired": expired, "rate": rate}


@pytest.fixture
async def staff(factory: Factory) -> Staff:
    return await factory.staff(await factory.clinic())


async def _alice(factory: Factory, staff: Staff, joined: datetime) -> PatientUser:
    clinic = await staff.account.clinic
    return await factory.patient(clinic, name="Alice", timezone="America/New_York", joined=joined)


async def test_the_rate_is_null_before_anything_came_due(factory: Factory, staff: Staff, gql: GraphQLClient) -> None:
    alice = await _alice(factory, staff, JOINED)
    at = JOINED + timedelta(hours=1)
    await tick(at)

    for actor in (staff.actor, alice.actor):
        assert await adherence(gql, alice, actor, at) == [row(None, 0, 0, None)]


async def test_open_prompts_do_not_count_until_answered_or_expired(
    factory: Factory, staff: Staff, gql: GraphQLClient
) -> None:
    alice = await _alice(factory, staff, JOINED)
    for at in (DIARY_24_DUE, DIARY_24_DUE + timedelta(hours=7), DIARY_25_DUE):
        await tick(at)
    at = DIARY_25_DUE + timedelta(hours=1)
    prompt = await Prompt.get(patient_id=alice.patient.id, rule_id="daily_diary", due_at=DIARY_25_DUE)
    answer = entry_input(at - timedelta(minutes=5), promptId=str(prompt.id))
    (await gql(LOG, {"input": answer}, actor=alice.actor, now=at)).ok()

    # The 24th's diary expired, the 25th's is answered; the PHQ-9 and GAD-7 are still open.
    assert await adherence(gql, alice, staff.actor, at) == [
        row(None, 1, 1, 0.5),
        row("daily_diary", 1, 1, 0.5),
    ]


async def test_adherence_overall_and_per_instrument(factory: Factory, staff: Staff, gql: GraphQLClient) -> None:
    alice = await _alice(factory, staff, JOINED)
    for at in (DIARY_24_DUE, DIARY_25_DUE):
        await tick(at)
    answered_at = DIARY_25_DUE + timedelta(hours=1)
    prompt = await Prompt.get(patient_id=alice.patient.id, rule_id="daily_diary", due_at=DIARY_25_DUE)
    answer = entry_input(answered_at - timedelta(minutes=5), promptId=str(prompt.id))
    (await gql(LOG, {"input": answer}, actor=alice.actor, now=answered_at)).ok()
    # Three days later: the questionnaires' windows closed unanswered, as did the diaries of the 24th and 26th.
    later = datetime(2026, 11, 28, 0, 30, tzinfo=UTC)
    await tick(later)

    expected = [
        row(None, 1, 4, 0.2),
        row("daily_diary", 1, 2, pytest.approx(1 / 3)),
        row("gad7", 0, 1, 0.0),
        row("phq9", 0, 1, 0.0),
    ]
    assert await adherence(gql, alice, staff.actor, later) == expected
    assert await adherence(gql, alice, alice.actor, later) == expected


async def test_adherence_over_a_period_counts_only_prompts_due_in_it(
    factory: Factory, staff: Staff, gql: GraphQLClient
) -> None:
    alice = await _alice(factory, staff, JOINED)
    for at in (DIARY_24_DUE, DIARY_24_DUE + timedelta(hours=7), DIARY_25_DUE):
        await tick(at)
    at = DIARY_25_DUE + timedelta(hours=1)
    prompt = await Prompt.get(patient_id=alice.patient.id, rule_id="daily_diary", due_at=DIARY_25_DUE)
    (await gql(LOG, {"input": entry_input(at, promptId=str(prompt.id))}, actor=alice.actor, now=at)).ok()
    query = (
        "query($id: ID!, $from: DateTime, $to: DateTime) {"
        " patient(id: $id) { adherence(from: $from, to: $to) { instrument answered expired rate } } }"
    )

    async def period(start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
        variables = {
            "id": str(alice.patient.id),
            "from": start.isoformat() if start else None,
            "to": end.isoformat() if end else None,
        }
        rows = (await gql(query, variables, actor=staff.actor, now=at)).ok()["patient"]["adherence"]
        assert isinstance(rows, list)
        return rows

    # `from` inclusive, `to` exclusive, on the due time.
    assert await period(DIARY_24_DUE, DIARY_25_DUE) == [row(None, 0, 1, 0.0), row("daily_diary", 0, 1, 0.0)]
    assert await period(DIARY_25_DUE, None) == [row(None, 1, 0, 1.0), row("daily_diary", 1, 0, 1.0)]
    assert await period(None, None) == [row(None, 1, 1, 0.5), row("daily_diary", 1, 1, 0.5)]
    naive = await gql(query, {"id": str(alice.patient.id), "from": "2026-11-25T00:00:00"}, actor=staff.actor, now=at)
    assert (naive.codes, naive.fields) == (["BAD_USER_INPUT"], ["from"])
