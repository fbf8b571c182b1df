"""The fuzzer's own parts: the checks catch what they are for, ID arguments are aimed at the right kind of object,
hostile strings go in one argument at a time, and generation is the same on every run. Without these, a fuzzer
that never fails would prove nothing."""

from __future__ import annotations

import json
import re
from typing import Any

import graphql
import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.generation import GenerationMode

from tests.fuzz import support
from tests.fuzz.support import Exchange, Request
from tests.fuzz.world import Secrets
from tests.graphql import SCHEMA

SECRET_ID = "6f1c2a3e-0000-4000-8000-000000000001"
HIDDEN = Secrets(("MARKER-B",), frozenset({SECRET_ID}))
TYPES = frozenset({"FieldError", "Patient"})
SCHEMA_AST = SCHEMA._schema


def exchange(body: Any, *, status: int = 200, document: str = "{ me { id } }") -> Exchange:
    return Exchange("patient", Request(document), status, body if isinstance(body, str) else json.dumps(body))


def found(ex: Exchange) -> list[str]:
    return list(support.problems(ex, HIDDEN, TYPES))


def error(code: str, message: str = "refused") -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "path": ["me"], "extensions": {"code": code}}]}


def test_a_clean_answer_and_an_expected_refusal_pass() -> None:
    assert found(exchange({"data": {"me": {"id": "x"}}})) == []
    assert found(exchange(error("NOT_FOUND", "patient not found"))) == []


BROKEN = {
    "server error": exchange({"data": None}, status=500),
    "not JSON": exchange("Internal Server Error", status=500),
    "no code": exchange({"data": None, "errors": [{"message": "boom"}]}),
    "unknown code": exchange(error("INTERNAL_SERVER_ERROR")),
    "internal": exchange(error("INTERNAL", "Internal error")),
    "unmasked internal": exchange(error("INTERNAL", "division by zero")),
    "traceback": exchange(error("BAD_USER_INPUT", 'Traceback (most recent call last):\n File "x.py", line 1')),
    "exception class": exchange(error("BAD_USER_INPUT", "IntegrityError: duplicate key")),
    "driver": exchange(error("BAD_USER_INPUT", "asyncpg refused the value")),
    "marker": exchange({"data": {"patient": {"displayName": "marker-b-12 Doe"}}}),
    "id": exchange({"data": {"alerts": [{"patientId": SECRET_ID.upper()}]}}),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_kind_of_problem_is_caught(case: str) -> None:
    assert found(BROKEN[case])


def test_what_the_request_sent_may_come_back() -> None:
    echoed = f'{{ patient(id: "{SECRET_ID}") {{ id }} }}'
    body = {"data": {"patient": None}, "errors": [{"message": SECRET_ID, "extensions": {"code": "NOT_FOUND"}}]}

    assert found(exchange(body, document=echoed)) == []


def test_a_schema_type_named_in_a_message_is_not_python_speaking() -> None:
    assert found(exchange(error("BAD_USER_INPUT", "Cannot query field 'x' on type 'FieldError'."))) == []


def kinds_asked(document: str) -> list[str | None]:
    asked: list[str | None] = []

    def pick(kind: str | None) -> str:
        asked.append(kind)
        return f"id-of-{kind}"

    support.aim_ids(document, SCHEMA_AST, pick)
    return asked


@pytest.mark.parametrize(
    ("document", "kinds"),
    [
        ('{ patient(id: "x") { id } }', ["patient"]),
        ('mutation { deleteDiaryEntry(id: "x") { id } }', ["entry"]),
        ('mutation { acknowledgeAlert(id: "x") { id } }', ["alert"]),
        ('mutation { updateInfusion(id: "x", input: {notes: "n"}) { id } }', ["session"]),
        ('mutation { acknowledgePrompt(id: "x", event: OPENED) { id } }', ["prompt"]),
        (
            'mutation { scheduleInfusion(input: {patientId: "a", startsAt: "2026-11-27T10:00:00Z", '
            'plannedDurationMinutes: 60, courseId: "b"}) { id } }',
            ["patient", "course"],
        ),
    ],
    ids=["patient", "entry", "alert", "session", "prompt", "nested"],
)
def test_an_id_argument_is_aimed_at_its_kind(document: str, kinds: list[str]) -> None:
    assert kinds_asked(document) == kinds


def test_a_document_without_ids_is_not_aimed() -> None:
    assert support.aim_ids("{ me { id } }", SCHEMA_AST, lambda _: "z") is None


def test_every_pooled_id_is_used() -> None:
    pool = {"patient": ["p1", "p2", "p3"], "entry": ["e1"]}

    aimed = support.aimed_variants(['{ patient(id: "x") { id } }'], SCHEMA_AST, pool)

    assert {re.findall(r'id: "(\w+)"', d)[0] for d in aimed} == {"p1", "p2", "p3"}


def test_hostile_strings_go_in_one_string_argument_at_a_time_as_variables() -> None:
    document = 'mutation { invitePatient(input: {displayName: "a", timezone: "b"}) { code } }'

    variants = support.hostile_variants(document, SCHEMA_AST)

    assert len(variants) == 2 * len(support.HOSTILE_STRINGS)
    assert [v.variables["hostile"] for v in variants[:3]] == list(support.HOSTILE_STRINGS)
    assert 'displayName: $hostile, timezone: "b"' in variants[0].document
    assert 'displayName: "a", timezone: $hostile' in variants[-1].document
    assert all("$hostile: String!" in v.document for v in variants)
    assert b"\\ud800" in variants[1].payload()


def test_generation_is_the_same_on_every_run() -> None:
    introspected = graphql.graphql_sync(SCHEMA_AST, graphql.get_introspection_query()).data
    schema = schemathesis.graphql.from_dict(introspected or {}, config=SchemathesisConfig())
    operation = support.operations(schema)["Mutation.logDiaryEntry"]

    first = support.generate(operation, GenerationMode.POSITIVE, 5)

    assert first == support.generate(operation, GenerationMode.POSITIVE, 5)
    assert len(first) == 5
