"""myPrompts, acknowledgePrompt and answering a prompt with a diary entry, driven by the jobs at fixed clocks.

Alice lives in New York and joined on 24 November at 07:00 local. Her plan asks for a daily diary at 20:00 local
(01:00 UTC the next day, open 7 hours) and a PHQ-9 and GAD-7 every 14 days at 18:00 local (open 3 days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

import tests.conftest
from api.container import build_job_config
from api.domain.diary.models import DiaryEntry
from api.domain.prompt.models import Prompt
from jobs import passes
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient
from tests.schema.diary_support import LOG, entry_input

PROMPT_FIELDS = "id instrument ruleId dueAt deliverAt expiresAt status late deliveredAt openedAt answeredAt"
MY_PROMPTS = f"query Mine($status: [PromptStatus!]) {{ myPrompts(status: $status) {{ {PROMPT_FIELDS} }} }}"
ACKNOWLEDGE = f"""
mutation Ack($id: ID!, $event: PromptEvent!) {{ acknowledgePrompt(id: $id, event: $event) {{ {PROMPT_FIELDS} }} }}
"""

JOINED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
QUESTIONNAIRES_DUE = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)  # 18:00 in New York
DIARY_24_DUE = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 20:00 on the 24th in New York
DIARY_25_DUE = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
DIARY_26_DUE = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
AT = DIARY_25_DUE + timedelta(hours=1)  # when Alice opens the app


@dataclass
class Diarists:
    alice: PatientUser
    bob: PatientUser


async def tick(at: datetime) -> None:
    await passes.tick(build_job_config(tests.conftest.make_settings()), at)


@pytest.fixture
async def people(factory: Factory) -> Diarists:
    clinic = await factory.clinic()
    alice = await factory.patient(clinic, name="Alice", timezone="America/New_York", joined=JOINED)
    bob = await factory.patient(clinic, name="Bob", timezone="America/New_York", joined=JOINED)
    return Diarists(alice, bob)


@pytest.fixture
async def on_time(people: Diarists) -> Diarists:
    """The jobs ran when each prompt came due; the 24th's diary went unanswered and closed."""
    for at in (QUESTIONNAIRES_DUE, DIARY_24_DUE, DIARY_24_DUE + timedelta(hours=7), DIARY_25_DUE):
        await tick(at)
    return people


async def mine(gql: GraphQLClient, who: PatientUser, at: datetime, status: list[str] | None = None) -> list[Any]:
    result = (await gql(MY_PROMPTS, {"status": status}, actor=who.actor, now=at)).ok()["myPrompts"]
    assert isinstance(result, list)
    return result


async def prompt_of(who: PatientUser, rule: str, due: datetime) -> Prompt:
    return await Prompt.get(patient_id=who.patient.id, rule_id=rule, due_at=due)


async def test_my_prompts_lists_only_my_prompts_that_have_come_due_newest_first(
    on_time: Diarists, gql: GraphQLClient
) -> None:
    listed = await mine(gql, on_time.alice, AT)

    order = [(p["ruleId"], p["dueAt"]) for p in listed]
    assert order[:2] == [("daily_diary", "2026-11-26T01:00:00+00:00"), ("daily_diary", "2026-11-25T01:00:00+00:00")]
    # Due at the same instant: either order.
    assert sorted(order[2:]) == [
        ("gad7_biweekly", "2026-11-24T23:00:00+00:00"),
        ("phq9_biweekly", "2026-11-24T23:00:00+00:00"),
    ]
    due = await Prompt.filter(patient_id=on_time.alice.patient.id, due_at__lte=AT).values_list("id", flat=True)
    assert {p["id"] for p in listed} == {str(i) for i in due}
    # Tomorrow's diary is planned already, but not shown until it comes due.
    future = await Prompt.filter(patient_id=on_time.alice.patient.id, due_at__gt=AT).count()
    assert future > 0
    bobs = await Prompt.filter(patient_id=on_time.bob.patient.id).values_list("id", flat=True)
    assert not {p["id"] for p in listed} & {str(i) for i in bobs}


async def test_a_listed_prompt_carries_its_times_with_offsets(on_time: Diarists, gql: GraphQLClient) -> None:
    listed = await mine(gql, on_time.alice, AT)

    assert {k: v for k, v in listed[0].items() if k != "id"} == {
        "instrument": "daily_diary",
        "ruleId": "daily_diary",
        "dueAt": "2026-11-26T01:00:00+00:00",
        "deliverAt": "2026-11-26T01:00:00+00:00",
        "expiresAt": "2026-11-26T08:00:00+00:00",
        "status": "SENT",
        "late": False,
        "deliveredAt": None,
        "openedAt": None,
        "answeredAt": None,
    }
    for prompt in listed:
        for name in ("dueAt", "deliverAt", "expiresAt"):
            assert datetime.fromisoformat(prompt[name]).utcoffset() is not None


async def test_a_prompt_comes_due_at_its_due_time(people: Diarists, gql: GraphQLClient) -> None:
    before = await mine(gql, people.alice, DIARY_26_DUE - timedelta(seconds=1))
    after = await mine(gql, people.alice, DIARY_26_DUE)

    assert [p["dueAt"] for p in after if p not in before] == ["2026-11-27T01:00:00+00:00"]


@pytest.mark.parametrize(
    ("status", "rules"),
    [
        (["EXPIRED"], [("daily_diary", "2026-11-25T01:00:00+00:00")]),
        (
            ["SENT"],
            [
                ("daily_diary", "2026-11-26T01:00:00+00:00"),
                ("gad7_biweekly", "2026-11-24T23:00:00+00:00"),
                ("phq9_biweekly", "2026-11-24T23:00:00+00:00"),
            ],
        ),
        (["ANSWERED", "EXPIRED"], [("daily_diary", "2026-11-25T01:00:00+00:00")]),
        (["ANSWERED", "OPENED", "SCHEDULED", "CANCELLED"], []),
    ],
)
async def test_my_prompts_filters_by_status(
    status: list[str], rules: list[tuple[str, str]], on_time: Diarists, gql: GraphQLClient
) -> None:
    listed = await mine(gql, on_time.alice, AT, status)

    assert sorted((p["ruleId"], p["dueAt"]) for p in listed) == sorted(rules)
    assert {p["status"] for p in listed} <= set(status)


async def test_after_downtime_prompts_still_open_are_delivered_late_and_say_so(
    people: Diarists, gql: GraphQLClient
) -> None:
    # The jobs were down from before 18:00 until 20:10 local; back up ten minutes after the diary came due.
    await tick(DIARY_24_DUE + timedelta(minutes=10))

    listed = {p["ruleId"]: p for p in await mine(gql, people.alice, DIARY_24_DUE + timedelta(minutes=20))}

    assert {rule: (p["status"], p["late"]) for rule, p in listed.items()} == {
        "daily_diary": ("SENT", False),  # ten minutes is on time
        "phq9_biweekly": ("SENT", True),
        "gad7_biweekly": ("SENT", True),
    }


async def test_acknowledgements_move_forward_only(on_time: Diarists, gql: GraphQLClient) -> None:
    prompt = await prompt_of(on_time.alice, "daily_diary", DIARY_25_DUE)
    actor, first, second, third = on_time.alice.actor, AT, AT + timedelta(minutes=1), AT + timedelta(minutes=2)

    delivered = (await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "DELIVERED"}, actor=actor, now=first)).ok()
    opened = (await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "OPENED"}, actor=actor, now=second)).ok()
    row = await Prompt.get(id=prompt.id)
    late_receipt = (await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "DELIVERED"}, actor=actor, now=third)).ok()

    assert delivered["acknowledgePrompt"]["status"] == "DELIVERED"
    assert delivered["acknowledgePrompt"]["deliveredAt"] == first.isoformat()
    assert opened["acknowledgePrompt"]["status"] == "OPENED"
    assert opened["acknowledgePrompt"]["deliveredAt"] == first.isoformat()
    assert opened["acknowledgePrompt"]["openedAt"] == second.isoformat()
    # A DELIVERED receipt that arrives after OPENED keeps OPENED and changes nothing at all.
    assert late_receipt["acknowledgePrompt"] == opened["acknowledgePrompt"]
    assert await Prompt.filter(id=prompt.id).values() == [await _values(row)]
    listed = await mine(gql, on_time.alice, third, ["OPENED"])
    assert [p["id"] for p in listed] == [str(prompt.id)]


async def _values(prompt: Prompt) -> dict[str, Any]:
    rows = await Prompt.filter(id=prompt.id).values()
    assert len(rows) == 1
    return rows[0]


async def test_opening_a_prompt_that_was_never_acknowledged_as_delivered_delivers_it_too(
    on_time: Diarists, gql: GraphQLClient
) -> None:
    prompt = await prompt_of(on_time.alice, "daily_diary", DIARY_25_DUE)
    actor = on_time.alice.actor

    opened = (await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "OPENED"}, actor=actor, now=AT)).ok()
    again = await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "OPENED"}, actor=actor, now=AT + timedelta(hours=1))

    ack = opened["acknowledgePrompt"]
    assert (ack["status"], ack["deliveredAt"], ack["openedAt"]) == ("OPENED", AT.isoformat(), AT.isoformat())
    assert again.ok()["acknowledgePrompt"] == ack


async def test_an_acknowledgement_does_not_reopen_a_closed_prompt(on_time: Diarists, gql: GraphQLClient) -> None:
    expired = await prompt_of(on_time.alice, "daily_diary", DIARY_24_DUE)
    before = await _values(expired)

    for event in ("DELIVERED", "OPENED"):
        result = await gql(ACKNOWLEDGE, {"id": str(expired.id), "event": event}, actor=on_time.alice.actor, now=AT)
        assert result.ok()["acknowledgePrompt"]["status"] == "EXPIRED"

    assert await _values(expired) == before


async def test_a_diary_entry_answers_the_prompt(on_time: Diarists, gql: GraphQLClient) -> None:
    prompt = await prompt_of(on_time.alice, "daily_diary", DIARY_25_DUE)
    entry = entry_input(AT - timedelta(minutes=5), promptId=str(prompt.id), painNow=3)

    logged = (await gql(LOG, {"input": entry}, actor=on_time.alice.actor, now=AT)).ok()["logDiaryEntry"]

    assert logged["promptId"] == str(prompt.id)
    answered = await mine(gql, on_time.alice, AT, ["ANSWERED"])
    assert [(p["id"], p["answeredAt"]) for p in answered] == [(str(prompt.id), AT.isoformat())]


async def test_an_opened_prompt_can_be_answered(on_time: Diarists, gql: GraphQLClient) -> None:
    prompt = await prompt_of(on_time.alice, "daily_diary", DIARY_25_DUE)
    await gql(ACKNOWLEDGE, {"id": str(prompt.id), "event": "OPENED"}, actor=on_time.alice.actor, now=AT)

    entry = entry_input(AT - timedelta(minutes=5), promptId=str(prompt.id))
    (await gql(LOG, {"input": entry}, actor=on_time.alice.actor, now=AT)).ok()

    assert (await Prompt.get(id=prompt.id)).status == "ANSWERED"


@pytest.mark.parametrize(
    ("due", "at"),
    [
        (DIARY_24_DUE, AT),  # closed and marked expired by the jobs
        (DIARY_25_DUE, DIARY_25_DUE + timedelta(hours=7)),  # closed; the expiry pass has not run yet
    ],
    ids=["marked expired", "window just closed"],
)
async def test_answering_a_closed_prompt_is_refused_and_stores_nothing(
    due: datetime, at: datetime, on_time: Diarists, gql: GraphQLClient
) -> None:
    prompt = await prompt_of(on_time.alice, "daily_diary", due)
    before = (await DiaryEntry.all().count(), await _values(prompt))
    entry = entry_input(at - timedelta(minutes=5), promptId=str(prompt.id))

    result = await gql(LOG, {"input": entry}, actor=on_time.alice.actor, now=at)

    assert (result.codes, result.fields) == (["PROMPT_EXPIRED"], ["promptId"])
    assert result.data is None
    assert (await DiaryEntry.all().count(), await _values(prompt)) == before
    # The patient may still log a free entry.
    free = entry_input(at - timedelta(minutes=5))
    assert (await gql(LOG, {"input": free}, actor=on_time.alice.actor, now=at)).ok()["logDiaryEntry"][
        "promptId"
    ] is None


@pytest.mark.parametrize(
    ("which", "code"),
    [
        ("answered", "CONFLICT"),
        ("questionnaire", "BAD_USER_INPUT"),
        ("bob's", "NOT_FOUND"),
        ("unknown", "NOT_FOUND"),
        ("future", "NOT_FOUND"),
    ],
)
async def test_a_diary_entry_cannot_answer_a_prompt_it_does_not_fit(
    which: str, code: str, on_time: Diarists, gql: GraphQLClient
) -> None:
    alice = on_time.alice
    prompt_id = uuid4()  # "unknown"
    if which == "answered":
        prompt_id = (await prompt_of(alice, "daily_diary", DIARY_25_DUE)).id
        first = entry_input(AT - timedelta(minutes=9), promptId=str(prompt_id))
        (await gql(LOG, {"input": first}, actor=alice.actor, now=AT)).ok()
    elif which == "questionnaire":
        prompt_id = (await prompt_of(alice, "phq9_biweekly", QUESTIONNAIRES_DUE)).id
    elif which == "bob's":
        prompt_id = (await prompt_of(on_time.bob, "daily_diary", DIARY_25_DUE)).id
    elif which == "future":
        prompt_id = (await prompt_of(alice, "daily_diary", DIARY_26_DUE)).id
    before = (await DiaryEntry.all().count(), await Prompt.all().order_by("id").values())

    entry = entry_input(AT - timedelta(minutes=5), promptId=str(prompt_id))
    result = await gql(LOG, {"input": entry}, actor=alice.actor, now=AT)

    assert (result.codes, result.fields) == ([code], ["promptId"])
    assert (await DiaryEntry.all().count(), await Prompt.all().order_by("id").values()) == before


async def test_cancelled_prompts_are_listed_only_when_asked_for(on_time: Diarists, gql: GraphQLClient) -> None:
    # A prompt that was due but never sent, cancelled (its session moved, or the patient was paused).
    prompt = await prompt_of(on_time.alice, "daily_diary", DIARY_25_DUE)
    await Prompt.filter(id=prompt.id).update(status="CANCELLED", cancelled_at=DIARY_25_DUE)

    default = {p["id"] for p in await mine(gql, on_time.alice, AT, None)}
    asked = {p["id"] for p in await mine(gql, on_time.alice, AT, ["CANCELLED"])}

    assert str(prompt.id) not in default
    assert asked == {str(prompt.id)}
