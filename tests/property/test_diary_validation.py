"""What a phone sends becoming a diary entry's content (api/domain/diary/validation.py), for any input.

Properties:
- every accepted entry is within range: scores 0–10, sleep 0–24 h in hundredths, side-effect severities 0–3,
  known and distinct body regions and effects, a note of at most 2000 storable characters, the time inside the
  window and in UTC;
- round trip: what is accepted is stored as sent (scores, regions, effects and note unchanged; sleep hours equal as
  a number; the instant unchanged, with the sender's UTC offset kept in minutes), and the same input always gives
  the same content and digest;
- one field out of range in an otherwise valid entry is refused with BAD_USER_INPUT naming that field (a prompt id
  that is not an id is NOT_FOUND on prompt_id), and nothing else is ever raised.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.diary.validation import (
    MAX_NOTE,
    MEASURE_FIELDS,
    SCORE_FIELDS,
    Content,
    DiaryInput,
    SideEffectReport,
    Window,
    build_content,
)
from api.domain.diary.vocabulary import BodyRegion, SideEffect
from api.domain.errors import BadInput, DomainError, NotFound
from tests.property.strategies import STORABLE_CHARACTERS, checked

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WINDOW = Window(earliest=NOW - timedelta(days=74), latest=NOW + timedelta(minutes=5))

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
in_window = st.datetimes(
    min_value=WINDOW.earliest.replace(tzinfo=None), max_value=WINDOW.latest.replace(tzinfo=None), timezones=st.just(UTC)
)
storable_text = st.text(STORABLE_CHARACTERS, max_size=MAX_NOTE)
scores = st.none() | st.integers(0, 10)
hundredths = st.integers(0, 2400).map(lambda h: h / 100)
effects = st.lists(st.builds(SideEffectReport, st.sampled_from(SideEffect), st.integers(0, 3)), max_size=5).map(
    lambda reports: list({r.code: r for r in reports}.values())
)


@st.composite
def valid_entries(draw: st.DrawFn) -> dict[str, Any]:
    values: dict[str, Any] = {name: draw(scores) for name in SCORE_FIELDS}
    values["recorded_at"] = draw(in_window).astimezone(draw(offsets))
    values["pain_locations"] = draw(st.none() | st.lists(st.sampled_from(BodyRegion), unique=True))
    values["sleep_hours"] = draw(st.none() | hundredths)
    values["side_effects"] = draw(st.none() | effects)
    values["rescue_medication"] = draw(st.none() | st.booleans())
    values["note"] = draw(st.none() | storable_text)
    # An entry reports at least one measure.
    values["pain_now"] = draw(st.integers(0, 10))
    return values


@checked(300)
@given(valid_entries())
def test_an_accepted_entry_is_within_range_and_stored_as_sent(sent: dict[str, Any]) -> None:
    stored = build_content(sent, WINDOW).values

    for name in SCORE_FIELDS:
        assert stored[name] == sent[name]
        assert stored[name] is None or 0 <= stored[name] <= 10
    assert stored["recorded_at"] == sent["recorded_at"]
    assert stored["recorded_at"].tzinfo is UTC
    assert WINDOW.earliest <= stored["recorded_at"] <= WINDOW.latest
    assert stored["utc_offset_minutes"] * 60 == sent["recorded_at"].utcoffset().total_seconds()
    assert stored["pain_locations"] == [r.value for r in sent["pain_locations"] or []]
    assert stored["side_effects"] == [
        {"code": e.code.value, "severity": e.severity} for e in sent["side_effects"] or []
    ]
    if sent["sleep_hours"] is None:
        assert stored["sleep_hours"] is None
    else:
        assert float(stored["sleep_hours"]) == sent["sleep_hours"]
        assert Decimal(0) <= stored["sleep_hours"] <= Decimal(24)
        assert stored["sleep_hours"] == stored["sleep_hours"].quantize(Decimal("0.01"))
    assert stored["note"] == sent["note"]
    assert (stored["rescue_medication"], stored["prompt_id"]) == (sent["rescue_medication"], None)


@checked(100)
@given(valid_entries())
def test_the_same_entry_always_gives_the_same_content(sent: dict[str, Any]) -> None:
    first, again = build_content(sent, WINDOW), build_content(dict(sent), WINDOW)

    assert first.as_json() == again.as_json()
    assert first.digest() == again.digest()


def bad(field: str, key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, str, Any]]:
    """(the field a refusal names, the input key, a bad value for it)."""
    return values.map(lambda value: (field, key, value))


outside_scale = st.integers(max_value=-1) | st.integers(min_value=11)
later = st.datetimes(min_value=(WINDOW.latest + timedelta(seconds=1)).replace(tzinfo=None))
earlier = st.datetimes(max_value=(WINDOW.earliest - timedelta(seconds=1)).replace(tzinfo=None))
unstorable = st.tuples(storable_text, st.sampled_from(["\x00", "\ud800", "\udfff"]), storable_text).map("".join)
bad_sleep = st.one_of(
    st.floats(max_value=-0.01),
    st.floats(min_value=24.01),
    st.sampled_from([float("nan"), float("inf")]),
    hundredths.map(lambda h: h + 0.001),
)
twice = st.sampled_from(BodyRegion).map(lambda region: [region, region])
HEADACHE = SideEffectReport(SideEffect.HEADACHE, 1)
one_bad_field = st.one_of(
    *(bad(name, name, outside_scale) for name in SCORE_FIELDS),
    bad("sleep_hours", "sleep_hours", bad_sleep),
    bad("note", "note", st.integers(MAX_NOTE + 1, MAX_NOTE + 50).map(lambda n: "x" * n)),
    bad("note", "note", unstorable),
    bad("recorded_at", "recorded_at", in_window.map(lambda at: at.replace(tzinfo=None))),
    bad("recorded_at", "recorded_at", (later | earlier).map(lambda at: at.replace(tzinfo=UTC))),
    bad("pain_locations", "pain_locations", twice),
    bad("pain_locations", "pain_locations", st.text().filter(lambda t: t not in set(BodyRegion)).map(lambda t: [t])),
    bad(
        "side_effects[0].severity",
        "side_effects",
        (st.integers(max_value=-1) | st.integers(min_value=4)).map(lambda s: [SideEffectReport(SideEffect.NAUSEA, s)]),
    ),
    bad(
        "side_effects[0].code",
        "side_effects",
        st.text().filter(lambda t: t not in set(SideEffect)).map(lambda code: [{"code": code, "severity": 1}]),
    ),
    bad("side_effects", "side_effects", st.just([HEADACHE, HEADACHE])),
)


@checked(400)
@given(valid_entries(), one_bad_field)
def test_one_bad_field_is_refused_naming_it(sent: dict[str, Any], spoiled: tuple[str, str, Any]) -> None:
    field, key, value = spoiled

    with pytest.raises(DomainError) as refused:
        build_content({**sent, key: value}, WINDOW)

    assert isinstance(refused.value, BadInput)
    assert refused.value.field == field


@checked(100)
@given(valid_entries(), st.text().filter(lambda t: not _is_uuid(t)))
def test_a_prompt_id_that_is_not_an_id_is_not_found(sent: dict[str, Any], prompt_id: str) -> None:
    with pytest.raises(NotFound) as refused:
        build_content({**sent, "prompt_id": prompt_id}, WINDOW)

    assert refused.value.field == "prompt_id"


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def test_an_entrys_digest_is_the_one_stored_entries_were_given() -> None:
    """A resend is judged by the digest stored with the entry (`client_hash`): the same content must give the same
    digest in every release, or a phone resending an entry stored before an upgrade would be told it conflicts.
    The value below is what the digest of this content has always been (canonical JSON, keys sorted, SHA-256)."""
    content = Content(
        {
            # In no particular order: the digest sorts the keys.
            "prompt_id": UUID("6f1c8d52-7c1e-4a53-9d51-0f7f4b0f2a11"),
            "side_effects": [{"code": "NAUSEA", "severity": 2}],
            "recorded_at": datetime(2026, 11, 28, 8, 30, 15, 250000, tzinfo=timezone(timedelta(hours=1))),
            "note": 'ça va "bien" 😀',
            "pain_worst": None,
            "sleep_hours": Decimal("7.50"),
            "utc_offset_minutes": 60,
            "mood": 10,
            "pain_now": 4,
            "rescue_medication": False,
            "pain_average": 0,
            "pain_locations": ["HEAD", "NECK"],
            "sleep_quality": 7,
        }
    )
    assert content.digest() == "815c76412a5c7774245e36c390752453c9fc8afb0fbb4f1c9a332401e6e8ef01"


def test_an_inputs_values_are_its_instant_measures_and_prompt() -> None:
    sent = DiaryInput(client_id=UUID(int=1), recorded_at=NOW, pain_now=3, note="n", prompt_id="p", sleep_hours=7.5)
    values = sent.values()
    assert list(values) == ["recorded_at", *MEASURE_FIELDS, "prompt_id"]
    assert values == {name: getattr(sent, name) for name in values}
