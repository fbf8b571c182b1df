"""Pagination cursors and page sizes (api/domain/paging.py), and time zone names (api/domain/timezones.py).

Properties:
- a cursor decodes to the key and id it was made from: an instant (any offset) as the same instant in UTC, text
  (that a column can hold) as the same text;
- a page holds at most `size` rows, says whether more follow, and each cursor decodes to its row's key;
- any string that is not a cursor we made, including base64 of arbitrary JSON, is refused with BAD_USER_INPUT on
  `after`; nothing else is ever raised; so is one whose key no column can hold (NUL, a lone surrogate) or is
  longer than its column;
- `first` is accepted from 1 to 100 and refused otherwise, never clamped;
- a zone name is accepted exactly when the tz database has it, and an accepted one always loads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.errors import BadInput
from api.domain.paging import (
    MAX_PAGE,
    decode_cursor,
    encode_cursor,
    make_page,
    page_size,
    parse_instant,
    text_key,
)
from api.domain.timezones import check_timezone
from tests.property.strategies import ANY_CHARACTER, STORABLE_CHARACTERS, ZONE_NAMES, checked

offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
# Instants that exist in UTC (0001-01-01 at +01:00 does not).
instants = st.builds(
    lambda at, zone: at.astimezone(zone),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)),
    offsets,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@checked(200)
@given(instants, st.uuids())
def test_an_instant_cursor_decodes_to_the_same_instant_in_utc(key: datetime, row_id: UUID) -> None:
    decoded, decoded_id = decode_cursor(encode_cursor(key, row_id), parse_instant)

    assert decoded == key
    assert isinstance(decoded, datetime)
    assert decoded.tzinfo is UTC
    assert decoded_id == row_id


@checked(200)
@given(instants, st.uuids())
def test_an_instant_cursor_is_the_json_pair_clients_already_hold(key: datetime, row_id: UUID) -> None:
    """Written without json.dumps for speed; a cursor issued before stays the same cursor."""
    as_json = json.dumps([key.isoformat(), str(row_id)]).encode()

    assert encode_cursor(key, row_id) == base64.urlsafe_b64encode(as_json).decode()


@checked(200)
@given(st.text(STORABLE_CHARACTERS), st.uuids())
def test_a_text_cursor_decodes_to_the_same_text(key: str, row_id: UUID) -> None:
    assert decode_cursor(encode_cursor(key, row_id), str) == (key, row_id)


@checked(100)
@given(st.lists(st.tuples(st.text(STORABLE_CHARACTERS, max_size=5), st.uuids()), max_size=12), st.integers(1, 10))
def test_a_page_holds_at_most_its_size_and_says_whether_more_follow(rows: list[tuple[str, UUID]], size: int) -> None:
    fetched = rows[: size + 1]

    page = make_page(fetched, size, lambda row: row)

    assert page.items == fetched[:size]
    assert page.has_next is (len(fetched) > size)
    assert [decode_cursor(c, str) for c in page.cursors] == page.items
    assert page.end_cursor == (page.cursors[-1] if page.cursors else None)


garbage = st.one_of(
    st.text(),
    st.binary().map(b64),
    json_values.map(lambda v: b64(json.dumps(v).encode())),
    st.tuples(st.text(), st.text()).map(lambda pair: b64(json.dumps(list(pair)).encode())),
    st.tuples(st.text(), st.uuids()).map(lambda pair: b64(json.dumps([pair[0], str(pair[1])]).encode())),
)


@checked(400)
@given(garbage, st.sampled_from([parse_instant, str]))
def test_anything_else_is_refused_as_bad_input_on_after(
    cursor: str, parse_key: Callable[[str], datetime | str]
) -> None:
    decoded = decode_or_refusal(cursor, parse_key)

    if isinstance(decoded, BadInput):
        assert decoded.field == "after"
    else:
        key, row_id = decoded
        assert isinstance(row_id, UUID)
        assert parse_key is str or (isinstance(key, datetime) and key.tzinfo is UTC)


def decode_or_refusal(
    cursor: str, parse_key: Callable[[str], datetime | str]
) -> tuple[datetime | str, UUID] | BadInput:
    """The decoded cursor, or the refusal; any other exception fails the test."""
    try:
        return decode_cursor(cursor, parse_key)
    except BadInput as refused:
        return refused


@checked(200)
@given(st.text(ANY_CHARACTER), st.sampled_from(["\x00", "\ud800", "\udfff"]), st.text(ANY_CHARACTER), st.uuids())
def test_a_cursor_whose_key_no_column_can_hold_is_refused(before: str, bad: str, after: str, row_id: UUID) -> None:
    """Such a key would reach the query and fail it (NUL on PostgreSQL, a lone surrogate anywhere)."""
    cursor = b64(json.dumps([before + bad + after, str(row_id)]).encode())

    with pytest.raises(BadInput) as refused:
        decode_cursor(cursor, str)
    assert refused.value.field == "after"


@checked(100)
@given(st.integers(1, 300), st.integers(0, 300), st.uuids())
def test_a_text_key_longer_than_its_column_is_refused(column: int, length: int, row_id: UUID) -> None:
    cursor = encode_cursor("k" * length, row_id)

    if length <= column:
        assert decode_cursor(cursor, text_key(column)) == ("k" * length, row_id)
        return
    with pytest.raises(BadInput) as refused:
        decode_cursor(cursor, text_key(column))
    assert refused.value.field == "after"


@checked(100)
@given(st.none() | st.integers())
def test_first_is_accepted_from_one_to_a_hundred_and_never_clamped(first: int | None) -> None:
    if first is None or 1 <= first <= MAX_PAGE:
        assert page_size(first) == (first or page_size(None))
        return
    with pytest.raises(BadInput) as refused:
        page_size(first)
    assert refused.value.field == "first"


@checked(200)
@given(st.sampled_from(ZONE_NAMES) | st.text(max_size=40))
def test_a_zone_is_accepted_exactly_when_the_tz_database_has_it(name: str) -> None:
    if name in available_timezones():
        assert check_timezone(name) == name
        assert ZoneInfo(name).key == name
        return
    with pytest.raises(BadInput) as refused:
        check_timezone(name, field="input.timezone")
    assert refused.value.field == "input.timezone"
