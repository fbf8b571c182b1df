"""Text every backend can store (api/domain/text.py).

Property: text is storable exactly when it holds no NUL (PostgreSQL's text refuses it) and encodes as UTF-8 (a
lone surrogate does not), which is what both databases' drivers do with it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.domain.text import storable
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
