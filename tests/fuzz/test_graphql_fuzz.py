"""Every Query and Mutation field, fuzzed through the running app as a patient, a clinician and a clinic admin.

Per operation and caller: documents schemathesis generates (valid and invalid), the same documents with their ID
arguments aimed at the caller's own objects, then at real objects of another patient and of the other clinic
(what worked on the caller's own is tried on theirs first); and, separately, documents with one string argument
at a time replaced by a string no column can hold. Every response must be free of server errors, carry only
stable error codes, never INTERNAL, never Python's voice, and nothing of anyone else's; nothing anyone else owns
may change.
"""

from __future__ import annotations

import pytest
from schemathesis.generation import GenerationMode

from tests.fuzz import support
from tests.fuzz.conftest import Fuzz
from tests.fuzz.support import Request
from tests.fuzz.world import fingerprint
from tests.graphql import SCHEMA

# Documents drawn per operation: valid ones, then ones the schema must refuse.
VALID_EXAMPLES = 10
INVALID_EXAMPLES = 3
# Generated documents whose string arguments are made hostile, per operation.
HOSTILE_TEMPLATES = 2
CALLERS = ("patient", "clinician", "admin")
LABELS = support.operation_labels(SCHEMA._schema)

_drawn: dict[str, list[str]] = {}


def documents(label: str, fuzz: Fuzz) -> list[str]:
    """The same on every run and backend, so drawn once per process."""
    if label not in _drawn:
        operation = support.operations(fuzz.schema)[label]
        valid = support.generate(operation, GenerationMode.POSITIVE, VALID_EXAMPLES)
        invalid = support.generate(operation, GenerationMode.NEGATIVE, INVALID_EXAMPLES)
        _drawn[label] = [*valid, *invalid]
    return _drawn[label]


async def test_every_operation_the_app_serves_is_fuzzed(fuzz: Fuzz) -> None:
    assert sorted(support.operations(fuzz.schema)) == sorted(LABELS)


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("label", LABELS)
async def test_fuzzed_operation_answers_safely(label: str, caller: str, fuzz: Fuzz) -> None:
    who = fuzz.world.callers[caller]
    schema = fuzz.schema.client_schema
    generated = documents(label, fuzz)
    before = await fingerprint(who.strangers)

    run = support.Run(fuzz.client, who, schema)
    own = support.aimed_variants(generated, schema, who.own)
    worked = await run.send_all([Request(d) for d in [*generated, *own]])
    foreign = support.aimed_variants([*worked, *generated], schema, who.hidden.pool)
    await run.send_all([Request(d) for d in foreign])

    if run.found:
        pytest.fail(f"{label}: {run.report()}", pytrace=False)
    assert await fingerprint(who.strangers) == before, f"{label} as {caller} changed someone else's rows"


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("label", LABELS)
async def test_fuzzed_operation_refuses_hostile_strings(label: str, caller: str, fuzz: Fuzz) -> None:
    who = fuzz.world.callers[caller]
    schema = fuzz.schema.client_schema
    templates = [d for d in documents(label, fuzz) if support.hostile_variants(d, schema)][:HOSTILE_TEMPLATES]

    run = support.Run(fuzz.client, who, schema)
    await run.send_all([r for d in templates for r in support.hostile_variants(d, schema)])

    if run.found:
        pytest.fail(f"{label}: {run.report()}", pytrace=False)
