"""The error mapping on its own: variable paths, and the HTTP view's net for errors that escaped the schema."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, cast

import pytest
from graphql import GraphQLError
from starlette.requests import Request
from strawberry.types import ExecutionResult

from api.container import build_services
from api.graphql import InterludeGraphQL
from api.settings import Settings
from schema import build_schema
from schema.errors import camel, input_error_field


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ("Variable '$input' has invalid value at .clientId: Value cannot represent a UUID", "input.clientId"),
        (
            "Variable '$input' has invalid value at .sideEffects[2].severity: Int cannot represent",
            "input.sideEffects[2].severity",
        ),
        ("Variable '$ids' has invalid value at [3]: ID cannot represent", "ids[3]"),
        ("Variable '$first' has invalid value: Int cannot represent non-integer value: 1.5", "first"),
        ("Variable '$email' of required type 'String!' was not provided.", "email"),
        ("Variable '$email' of non-null type 'String!' must not be null.", "email"),
        (
            "Variable '$input' has invalid value: Expected value of type 'DiaryEntryInput!' to include required "
            "field 'clientId', found: {'painNow': 3}.",
            "input.clientId",
        ),
        (
            "Variable '$input' has invalid value at .sideEffects[0]: Expected value of type 'SideEffectInput!' "
            "not to include unknown field 'colour', found: {}.",
            "input.sideEffects[0].colour",
        ),
        ("Cannot query field 'nope' on type 'Query'.", None),
        ("Syntax Error: Expected Name, found <EOF>.", None),
    ],
)
def test_input_error_field(message: str, field: str | None) -> None:
    assert input_error_field(message) == field


def test_camel_spells_paths_as_the_api_does() -> None:
    assert camel("side_effects[0].severity") == "sideEffects[0].severity"
    assert camel("pain_now") == "painNow"
    assert camel("email") == "email"
    # Brackets quote what the client sent (an item id), not a field name.
    assert camel("answers[phq9_difficulty]") == "answers[phq9_difficulty]"


def _view(settings: Settings, now: datetime) -> InterludeGraphQL:
    return InterludeGraphQL(build_schema(), services=build_services(settings), clock=lambda: now)


def _request(request_id: str) -> Request:
    return Request(
        {"type": "http", "method": "POST", "path": "/graphql", "headers": [], "state": {"request_id": request_id}}
    )


async def test_errors_that_escaped_the_schema_still_get_a_code(
    settings: Settings, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    crashed = GraphQLError("extension crashed: secret detail", original_error=RuntimeError("secret detail"))
    refused = GraphQLError("Syntax Error: Unexpected '}'.")
    public = GraphQLError("invalid email or password", extensions={"code": "UNAUTHENTICATED"})
    result = ExecutionResult(data=None, errors=[crashed, refused, public])

    with caplog.at_level(logging.ERROR, logger="interlude.graphql"):
        body = await _view(settings, now).process_result(_request("req-77"), result)

    errors = cast("list[dict[str, Any]]", body["errors"])
    assert errors[0]["message"] == "Internal error"
    assert errors[0]["extensions"] == {"code": "INTERNAL", "requestId": "req-77"}
    assert errors[1]["extensions"] == {"code": "BAD_USER_INPUT"}
    assert errors[2] == {"message": "invalid email or password", "extensions": {"code": "UNAUTHENTICATED"}}
    assert "secret detail" not in str(errors)
    [logged] = caplog.records
    assert logged.__dict__["request_id"] == "req-77"
    assert logged.exc_info is not None
    assert logged.exc_info[0] is RuntimeError
