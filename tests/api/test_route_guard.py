"""Every HTTP route is in this table with who may call it, and a caller without credentials is refused wherever
credentials are needed. A route added without a row fails here, as an operation without a row fails the GraphQL
authorization matrix (tests/schema/test_authorization_matrix.py, which covers what `/graphql` serves)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from uuid import uuid4

import pytest
from starlette.routing import BaseRoute, Route, WebSocketRoute

from api.app import create_app
from api.settings import Settings
from tests.api.support import client_for
from tests.conftest import Database


class Access(Enum):
    PUBLIC = "anyone: says nothing about patients"
    BEARER = "an access token; which patients it reaches is the domain's check (tests/export, authorization matrix)"
    METRICS_TOKEN = "the metrics token when one is set (required in production)"
    GRAPHQL = "per operation: the authorization matrix"


PATIENT = str(uuid4())
ROUTES: dict[tuple[str, str], tuple[Access, str]] = {
    # (kind, path template) -> (who may call it, a concrete path to call)
    ("http", "/graphql"): (Access.GRAPHQL, "/graphql"),
    ("websocket", "/graphql"): (Access.GRAPHQL, "/graphql"),
    ("http", "/healthz"): (Access.PUBLIC, "/healthz"),
    ("http", "/readyz"): (Access.PUBLIC, "/readyz"),
    ("http", "/metrics"): (Access.METRICS_TOKEN, "/metrics"),
    ("http", "/fhir/Patient/{patient_id}/$everything"): (Access.BEARER, f"/fhir/Patient/{PATIENT}/$everything"),
    ("http", "/export/clinic.ndjson"): (Access.BEARER, "/export/clinic.ndjson"),
    ("http", "/export/diary.csv"): (Access.BEARER, f"/export/diary.csv?patientId={PATIENT}"),
    ("http", "/export/me"): (Access.BEARER, "/export/me"),
}


def _key(route: BaseRoute) -> tuple[str, str]:
    if isinstance(route, WebSocketRoute):
        return ("websocket", route.path)
    assert isinstance(route, Route), route
    return ("http", route.path)


def test_every_route_has_a_row(settings: Settings) -> None:
    served = {_key(route) for route in create_app(settings, manage_orm=False).routes}
    assert served - ROUTES.keys() == set(), "routes without a row: say who may call them"
    assert ROUTES.keys() - served == set(), "rows for routes that are gone"


@pytest.mark.parametrize(
    "key",
    [key for key, (access, _) in ROUTES.items() if access in (Access.BEARER, Access.METRICS_TOKEN)],
    ids=lambda key: key[1],
)
async def test_a_caller_without_credentials_is_refused(
    key: tuple[str, str], db: Database, settings: Settings, now: datetime
) -> None:
    access, path = ROUTES[key]
    guarded = settings.model_copy(update={"metrics_token": "scrape-token-0123456789"})
    async with client_for(create_app(guarded, manage_orm=False, clock=lambda: now)) as client:
        anonymous = await client.get(path)
        forged = await client.get(path, headers={"authorization": "Bearer not-a-token"})
    assert (anonymous.status_code, forged.status_code) == (401, 401), access
    assert PATIENT not in anonymous.text + forged.text


@pytest.mark.parametrize("key", [key for key, (access, _) in ROUTES.items() if access is Access.PUBLIC], ids=str)
async def test_public_routes_say_nothing_about_patients(
    key: tuple[str, str], db: Database, settings: Settings, now: datetime
) -> None:
    _, path = ROUTES[key]
    async with client_for(create_app(settings, manage_orm=False, clock=lambda: now)) as client:
        response = await client.get(path)
    assert response.status_code == 200
    assert set(response.json()) <= {"status", "database"}
