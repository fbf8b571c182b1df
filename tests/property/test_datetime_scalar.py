"""The DateTime scalar's reading of a variable (schema/scalars.py).

Property: for any text, `parse_datetime` returns what Strawberry's own parser (dateutil's `isoparse`) returns, the
same instant with an equal time zone object of the same class, or refuses it as Strawberry refuses it, with the
same message. The texts are drawn in the shape apps send and around it: every field in and out of range, every
fraction length, every offset, and characters changed or dropped anywhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from strawberry.exceptions import StrawberryInputCoercionError
from strawberry.schema.types.base_scalars import DateTimeDefinition

from schema import build_schema
from schema.scalars import parse_datetime
from tests.property.strategies import checked

STRAWBERRYS = DateTimeDefinition.parse_value


def outcome(parse: Any, value: object) -> tuple[str, object, object, object]:
    try:
        parsed = parse(value)
    except StrawberryInputCoercionError as exc:
        return ("refused", str(exc), None, None)
    assert isinstance(parsed, datetime)
    zone = parsed.tzinfo
    return ("read", parsed.replace(tzinfo=None), type(zone), (zone.utcoffset(parsed) if zone else None, zone))


def digits(n: int, top: int) -> st.SearchStrategy[str]:
    return st.integers(0, top).map(lambda v: str(v).zfill(n))


@st.composite
def instant_texts(draw: st.DrawFn) -> str:
    """The shape apps send, each part drawn in range and a little beyond it."""
    date = f"{draw(digits(4, 9999))}-{draw(digits(2, 14))}-{draw(digits(2, 33))}"
    clock = f"{draw(digits(2, 25))}:{draw(digits(2, 61))}:{draw(digits(2, 61))}"
    fraction = draw(st.sampled_from(["", ".", ".1", ".12", ".123", ".1234", ".12345", ".123456", ".1234567"]))
    zone = draw(
        st.sampled_from(["", "Z", "z"])
        | st.builds(lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), digits(2, 25), digits(2, 99))
        | st.builds(lambda s, h, m: f"{s}{h}{m}", st.sampled_from("+-"), digits(2, 23), digits(2, 59))
    )
    separator = draw(st.sampled_from(["T", "T", "T", " ", "t"]))
    return f"{date}{separator}{clock}{fraction}{zone}"


@st.composite
def damaged(draw: st.DrawFn) -> str:
    """An instant's text with a character replaced, inserted or dropped."""
    text = draw(instant_texts())
    at = draw(st.integers(0, len(text)))
    change = draw(st.sampled_from(["replace", "insert", "drop"]))
    character = draw(st.characters(codec="utf-8") | st.sampled_from(list("0123456789:-+.TZ٣")))
    if change == "replace":
        return text[:at] + character + text[at + 1 :]
    if change == "insert":
        return text[:at] + character + text[at:]
    return text[:at] + text[at + 1 :]


@checked(600)
@given(instant_texts() | damaged())
# Offsets Python reads and dateutil refuses (minutes past 59 carry into the hours), and the edges around them.
@example("2026-11-27T08:30:00+05:60")
@example("2026-11-27T08:30:00-05:60")
@example("2026-11-27T08:30:00+00:99")
@example("2026-11-27T08:30:00+23:59")
@example("2026-11-27T08:30:00+24:00")
@example("2026-11-27T08:30:00-00:00")
@example("2026-11-27T24:00:00Z")
def test_any_text_is_read_or_refused_as_strawberry_reads_or_refuses_it(text: str) -> None:
    assert outcome(parse_datetime, text) == outcome(STRAWBERRYS, text)


@checked(300)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-23 * 60 - 59, 23 * 60 + 59),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_every_instant_an_app_writes_is_read_as_strawberry_reads_it(
    moment: datetime, offset_minutes: int, precision: str
) -> None:
    for zone in (None, timedelta(0), timedelta(minutes=offset_minutes)):
        value = moment if zone is None else moment.replace(tzinfo=timezone(zone))
        for text in {value.isoformat(timespec=precision), value.isoformat(timespec=precision).replace("+00:00", "Z")}:
            assert outcome(parse_datetime, text) == outcome(STRAWBERRYS, text)


@pytest.mark.parametrize("value", [None, 5, 5.5, ["2026-11-27T08:30:00Z"], {"at": 1}, b"2026-11-27T08:30:00Z"])
def test_what_is_not_text_is_refused_as_strawberry_refuses_it(value: object) -> None:
    assert outcome(parse_datetime, value) == outcome(STRAWBERRYS, value)


def test_the_apps_schema_reads_datetime_variables_with_it() -> None:
    scalar = build_schema()._schema.get_type("DateTime")
    assert scalar is not None
    assert scalar.parse_value is parse_datetime  # type: ignore[attr-defined]
    assert scalar.description == "Date with time (isoformat)"
