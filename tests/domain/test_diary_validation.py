"""build_content: what a phone sent becomes an entry's content, or a refusal naming the field. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from api.domain.diary.validation import MAX_NOTE, SCORE_FIELDS, Content, SideEffectReport, Window, build_content
from api.domain.diary.vocabulary import BodyRegion, SideEffect
from api.domain.errors import BadInput, DomainError, ErrorCode, NotFound

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW = Window(earliest=NOW - timedelta(days=74), latest=NOW + timedelta(minutes=5))


def content(**values: Any) -> Content:
    base: dict[str, Any] = {"recorded_at": NOW - timedelta(hours=1), "pain_now": 5}
    return build_content({**base, **values}, WINDOW)


def refused(field: str, **values: Any) -> DomainError:
    with pytest.raises(BadInput) as caught:
        content(**values)
    assert caught.value.field == field
    assert caught.value.code is ErrorCode.BAD_USER_INPUT
    return caught.value


@pytest.mark.parametrize("name", SCORE_FIELDS)
@pytest.mark.parametrize("value", [0, 10])
def test_scores_accept_the_ends_of_the_scale(name: str, value: int) -> None:
    assert content(**{name: value}).values[name] == value


@pytest.mark.parametrize("name", SCORE_FIELDS)
@pytest.mark.parametrize("value", [-1, 11])
def test_scores_outside_zero_to_ten_are_refused(name: str, value: int) -> None:
    refused(name, **{name: value})


@pytest.mark.parametrize(
    ("sent", "stored"),
    [(7.6, Decimal("7.6")), (7.25, Decimal("7.25")), (0.0, Decimal(0)), (24.0, Decimal(24)), (8, Decimal(8))],
)
def test_sleep_hours_are_kept_as_exact_decimals(sent: float, stored: Decimal) -> None:
    value = content(sleep_hours=sent).values["sleep_hours"]
    assert isinstance(value, Decimal)
    assert value == stored


@pytest.mark.parametrize("hours", [-0.01, 24.01, 25.0, float("nan"), float("inf"), float("-inf")])
def test_sleep_hours_outside_zero_to_twenty_four_are_refused(hours: float) -> None:
    refused("sleep_hours", sleep_hours=hours)


@pytest.mark.parametrize("hours", [7.255, 7.001, 1e-7])
def test_sleep_hours_with_more_than_two_decimals_are_refused(hours: float) -> None:
    refused("sleep_hours", sleep_hours=hours)


def test_side_effect_severity_outside_zero_to_three_names_the_item() -> None:
    ok = [SideEffectReport(SideEffect.NAUSEA, 0), SideEffectReport(SideEffect.HEADACHE, 3)]
    assert content(side_effects=ok).values["side_effects"] == [
        {"code": "NAUSEA", "severity": 0},
        {"code": "HEADACHE", "severity": 3},
    ]
    for severity in (-1, 4):
        bad = [SideEffectReport(SideEffect.NAUSEA, 1), SideEffectReport(SideEffect.HEADACHE, severity)]
        refused("side_effects[1].severity", side_effects=bad)


def test_a_side_effect_listed_twice_is_refused() -> None:
    twice = [SideEffectReport(SideEffect.NAUSEA, 1), SideEffectReport(SideEffect.NAUSEA, 2)]
    refused("side_effects", side_effects=twice)


def test_a_body_region_listed_twice_is_refused() -> None:
    assert content(pain_locations=[BodyRegion.HEAD, BodyRegion.NECK]).values["pain_locations"] == ["HEAD", "NECK"]
    refused("pain_locations", pain_locations=[BodyRegion.HEAD, BodyRegion.NECK, BodyRegion.HEAD])


def test_note_may_hold_two_thousand_characters_and_no_more() -> None:
    assert content(note="x" * MAX_NOTE).values["note"] == "x" * MAX_NOTE
    # Characters, not bytes: 2000 emoji are 8000 bytes of UTF-8 and still fit.
    assert content(note="🙂" * MAX_NOTE).values["note"] == "🙂" * MAX_NOTE
    refused("note", note="x" * (MAX_NOTE + 1))


@pytest.mark.parametrize("note", ["before\x00after", "lone \ud800 surrogate"])
def test_note_text_a_database_cannot_store_is_refused(note: str) -> None:
    # PostgreSQL refuses NUL in text and neither backend can encode a lone surrogate: without this check the
    # insert fails with an internal error (and takes the rest of a sync batch with it).
    refused("note", note=note)


def test_an_entry_reporting_nothing_is_refused() -> None:
    with pytest.raises(BadInput) as caught:
        build_content({"recorded_at": NOW}, WINDOW)
    assert caught.value.field == "input"
    empties: list[dict[str, Any]] = [{"pain_locations": [], "side_effects": []}, {"note": ""}, {"note": "  \n\t "}]
    for empty in empties:
        with pytest.raises(BadInput):
            build_content({"recorded_at": NOW, **empty}, WINDOW)


@pytest.mark.parametrize(
    "only",
    [
        {"pain_worst": 0},
        {"sleep_hours": 0.0},
        {"rescue_medication": False},
        {"note": "slept badly"},
        {"pain_locations": [BodyRegion.HEAD]},
        {"side_effects": [SideEffectReport(SideEffect.NAUSEA, 0)]},
    ],
)
def test_any_one_measure_is_enough(only: dict[str, Any]) -> None:
    # Zero and False are answers, not absences.
    build_content({"recorded_at": NOW, **only}, WINDOW)


def test_recorded_at_keeps_the_instant_in_utc_and_the_offset_in_minutes() -> None:
    sent = datetime(2026, 11, 26, 7, 15, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))
    values = content(recorded_at=sent).values
    assert values["recorded_at"] == sent
    assert values["recorded_at"].utcoffset() == timedelta(0)
    assert values["utc_offset_minutes"] == -210
    east = content(recorded_at=datetime(2026, 11, 26, 16, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))))
    assert east.values["utc_offset_minutes"] == 345


def test_a_naive_recorded_at_is_refused() -> None:
    refused("recorded_at", recorded_at=datetime(2026, 11, 26, 10, 0))


def test_recorded_at_is_required() -> None:
    refused("recorded_at", recorded_at=None)


def test_recorded_at_may_be_up_to_the_clock_skew_ahead_and_no_more() -> None:
    content(recorded_at=WINDOW.latest)
    refused("recorded_at", recorded_at=WINDOW.latest + timedelta(seconds=1))


def test_recorded_at_may_not_precede_the_window() -> None:
    content(recorded_at=WINDOW.earliest)
    refused("recorded_at", recorded_at=WINDOW.earliest - timedelta(seconds=1))


def test_a_prompt_id_that_is_not_a_uuid_is_not_found() -> None:
    with pytest.raises(NotFound) as caught:
        content(prompt_id="not-a-uuid")
    assert caught.value.field == "prompt_id"


def test_the_digest_depends_on_content_and_offset_only() -> None:
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    same = content(recorded_at=at, sleep_hours=7.6).digest()
    assert content(recorded_at=at, sleep_hours=7.6).digest() == same
    assert content(recorded_at=at, sleep_hours=7.60).digest() == same
    assert content(recorded_at=at, sleep_hours=7.5).digest() != same
    # The same instant written in another zone is another report (its local day differs).
    elsewhere = at.astimezone(timezone(timedelta(hours=2)))
    assert content(recorded_at=elsewhere, sleep_hours=7.6).digest() != same


def test_unknown_vocabulary_from_a_non_graphql_caller_is_bad_input() -> None:
    # GraphQL refuses unknown enum values itself; the domain must still refuse them for other callers.
    refused("pain_locations", pain_locations=["TAIL"])
    refused("side_effects[0].code", side_effects=[{"code": "HICCUPS", "severity": 1}])
