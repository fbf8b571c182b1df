"""A request leaves no reference cycles behind: when it ends, its context, DataLoaders, executor and HTTP objects
are freed at once by reference counting, not left for the garbage collector. Every cycle a request made was work
for the collector's next pass, and its objects survived into older generations whose full collections stall the
event loop (bench/README.md: about 130 such objects per request before, none now)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from uuid import uuid4

import httpx
import pytest

from api.domain.account.models import Account
from api.domain.actor import Actor
from api.domain.services import Services
from schema.context import Context
from schema.execution import _weakly
from schema.loaders import Loaders
from tests.api.support import data, post_graphql
from tests.factories import Factory

WRITE = """
mutation Log($input: DiaryEntryInput!) {
  logDiaryEntry(input: $input) { id clientId recordedAt painNow note }
}
"""
MY_DIARY = "query Diary { myDiary(first: 10) { edges { cursor node { id painNow } } pageInfo { endCursor } } }"
PATIENT_DIARY = "query Chart($id: ID!) { patient(id: $id) { displayName diary(first: 10) { edges { node { id } } } } }"
# lastEntry and overview go through the request's DataLoaders.
# Refused: NOT_FOUND from the domain, at a path; and a document that does not validate.
REFUSED = 'query Nothing { patient(id: "00000000-0000-0000-0000-000000000000") { id } }'
INVALID = "query Wrong { myDiary(first: 10) { noSuchField } }"
PATIENTS = "query List { patients(first: 10) { edges { node { id lastEntry { id } overview { openAlerts } } } } }"


@contextmanager
def cycles_collected() -> Iterator[list[object]]:
    """The objects that only the garbage collector could free, among those made within the block."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    found: list[object] = []
    try:
        yield found
        gc.collect()
        found.extend(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def _token(services: Services, account: Account, actor: Actor, now: datetime) -> str:
    token, _ = services.accounts.tokens.issue(
        account_id=account.id, role=actor.role, clinic_id=actor.clinic_id, patient_id=actor.patient_id, now=now
    )
    return token


def _ours(objects: list[object]) -> list[str]:
    """Interlude's, Strawberry's, graphql-core's and Starlette's objects among them (the test client's are not the
    app's concern)."""
    prefixes = ("api.", "schema.", "strawberry.", "graphql.", "starlette.")
    return sorted(
        {f"{type(o).__module__}.{type(o).__qualname__}" for o in objects if type(o).__module__.startswith(prefixes)}
    )


@pytest.mark.parametrize(
    ("who", "document"),
    [
        ("patient", WRITE),
        ("patient", MY_DIARY),
        ("staff", PATIENT_DIARY),
        ("staff", PATIENTS),
        ("staff", REFUSED),
        ("patient", INVALID),
    ],
)
async def test_a_request_leaves_no_reference_cycle(
    http: httpx.AsyncClient, factory: Factory, services: Services, *, now: datetime, who: str, document: str
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    patient = await factory.patient(clinic)
    await factory.entry(patient)
    caller = patient if who == "patient" else staff
    token = _token(services, caller.account, caller.actor, now)
    variables: dict[str, object] = {"id": str(patient.patient.id)}
    if document == WRITE:
        written_at = (now - timedelta(minutes=5)).isoformat()
        variables = {"input": {"clientId": str(uuid4()), "recordedAt": written_at, "painNow": 4, "note": "a note"}}
    # The first request of a document fills the process's caches (parsed documents, compiled plans): not per request.
    await post_graphql(http, document, variables, token=token)

    with cycles_collected() as garbage:
        response = await post_graphql(http, document, variables, token=token)
        del response

    assert _ours(garbage) == []


async def test_the_check_sees_a_cycle_where_there_is_one(
    http: httpx.AsyncClient, factory: Factory, services: Services, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same request, with the cycle between a context and its DataLoaders put back: it is found."""
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await factory.entry(await factory.patient(clinic))
    token = _token(services, staff.account, staff.actor, now)
    original = Loaders.__init__

    def holding(self: Loaders, context: object) -> None:
        original(self, context)  # type: ignore[arg-type]
        self.context = context  # type: ignore[attr-defined]  # the context holds its loaders, and now back

    monkeypatch.setattr(Loaders, "__init__", holding)
    await post_graphql(http, PATIENTS, token=token)
    with cycles_collected() as garbage:
        data(await post_graphql(http, PATIENTS, token=token))

    assert "schema.context.Context" in _ours(garbage)


async def test_a_dataloader_whose_request_has_ended_refuses_to_load(services: Services, now: datetime) -> None:
    """The DataLoaders hold their context weakly: a batch run after it is gone fails loudly, never with another's."""
    context = Context(services=services, now=now)
    loader = context.loaders.account
    del context
    gc.collect()
    with pytest.raises(RuntimeError, match="has ended"):
        await loader.load(uuid4())


def test_an_executor_helper_refuses_once_its_execution_has_ended() -> None:
    class Execution:
        def gather(self, values: list[int]) -> int:
            return sum(values)

    execution = Execution()
    gather = _weakly(execution.gather)
    assert gather([1, 2]) == 3
    del execution
    gc.collect()
    with pytest.raises(RuntimeError, match="has ended"):
        gather([1, 2])
