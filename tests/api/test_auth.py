"""Reading the bearer token: one parser for /graphql, the websocket and the export routes."""

from __future__ import annotations

import pytest

from api.auth import bearer_token
from api.domain.errors import Unauthenticated


@pytest.mark.parametrize("value", ["Bearer abc.def", "bearer abc.def", "BEARER  abc.def ", "Bearer abc.def\t"])
def test_the_token_of_a_bearer_header_is_read_whatever_the_case_and_spacing(value: str) -> None:
    assert bearer_token(value) == "abc.def"


@pytest.mark.parametrize("value", ["", "abc.def", "Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer    ", "Token abc"])
def test_anything_else_is_unauthenticated(value: str) -> None:
    with pytest.raises(Unauthenticated, match="use an Authorization: Bearer <access token> header"):
        bearer_token(value)
