"""Text every backend can store (api/domain/text.py).

Property: text is storable exactly when it holds no NUL (PostgreSQL's text refuses it) and encodes as UTF-8 (a
lone surrogate does not), which is what both databases' drivers do with it.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.text import storable
from schema import storable as storable_module
from schema.storable import _walk_unstorable, any_unstorable
from tests.property.strategies import ANY_CHARACTER, checked


def encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@checked(300)
@given(st.text(ANY_CHARACTER) | st.text(st.sampled_from(["a", "\x00", "\ud800", "\udbff", "\udc00", "\udfff", "😀"])))
def test_text_is_storable_exactly_when_it_has_no_nul_and_encodes(text: str) -> None:
    assert storable(text) is ("\x00" not in text and encodes(text))


TRICKY = st.lists(
    st.sampled_from(["a", "\x00", "\ud800", "\udfff", "\\", "u0000", "\\u0000", "😀", '"']), max_size=4
).map("".join)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | TRICKY,
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(TRICKY, inner, max_size=3),
    max_leaves=10,
)


@checked(400)
@given(st.dictionaries(TRICKY, VALUES, max_size=4))
def test_variables_hold_unstorable_text_exactly_when_a_walk_of_them_finds_it(variables: dict[str, object]) -> None:
    """The quick look through orjson (`any_unstorable`) decides as the walk of every key and string does."""
    assert any_unstorable(variables) is _walk_unstorable(variables)


def test_variables_of_storable_text_are_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[object] = []

    def walk(variables: dict[str, object]) -> bool:
        walked.append(variables)
        return _walk_unstorable(variables)

    monkeypatch.setattr(storable_module, "_walk_unstorable", walk)
    entry = {"input": {"note": 'a "quoted" \\ note 😀', "painNow": 4, "sideEffects": [{"code": "NAUSEA"}]}}
    assert any_unstorable(entry) is False
    assert walked == []
    # Text that only looks like an escaped NUL is walked, and found storable.
    assert any_unstorable({"note": "\\u0000"}) is False
    assert any_unstorable({"note": "nul \x00"}) is True
    assert any_unstorable({"note": "\ud800"}) is True
    assert len(walked) == 3
