"""The operation name recorded in the request metadata (read by the request log line and audit events)."""

from __future__ import annotations

from datetime import datetime

import pytest

from api.domain.actor import RequestMeta
from api.domain.services import Services
from schema import build_schema
from schema.context import Context

SCHEMA = build_schema()


@pytest.mark.parametrize(
    ("document", "operation"),
    [
        ("query WhoAmI { me { id } }", "WhoAmI"),
        ("{ me { id } }", "me"),
        ("{ __typename me { id } }", "__typename"),
        ("fragment Ids on Account { id } query { me { ...Ids } }", "me"),
        ("fragment Ids on Account { id } query Mine { me { ...Ids } }", "Mine"),
        ("{ ... on Query { me { id } } }", None),
    ],
)
async def test_the_operation_is_named(services: Services, now: datetime, document: str, operation: str | None) -> None:
    meta = RequestMeta(request_id="req-op")
    # No actor: `me` is refused without touching the database, after the name is recorded.
    await SCHEMA.execute(document, context_value=Context(services=services, now=now, meta=meta))
    assert meta.operation == operation


async def test_the_chosen_operation_of_several_is_named(services: Services, now: datetime) -> None:
    meta = RequestMeta(request_id="req-op")
    document = "query A { me { id } } query B { __typename }"
    await SCHEMA.execute(document, context_value=Context(services=services, now=now, meta=meta), operation_name="B")
    assert meta.operation == "B"


async def test_a_refused_document_names_nothing(services: Services, now: datetime) -> None:
    meta = RequestMeta(request_id="req-op")
    await SCHEMA.execute("{ nope }", context_value=Context(services=services, now=now, meta=meta))
    assert meta.operation is None
