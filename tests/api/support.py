"""Helpers for HTTP-level tests: an httpx client over an app, and GraphQL posts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from tortoise.context import TortoiseContext

from api.db import tortoise_config

CLIENT_IP = "203.0.113.7"


def unreachable_database(backend: str, tmp_path: Path) -> str:
    """A database URL nothing answers at: nothing listens on port 1 (refused at once); SQLite cannot open a
    directory as its file, after which Tortoise's SQLite client never answers again (timeouts must answer instead)."""
    return "postgres://postgres@127.0.0.1:1/interlude_nowhere" if backend == "postgres" else f"sqlite://{tmp_path}"


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[None]:
    """`url` as the current Tortoise context for this task; the session's global context is left as it was."""
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        yield


@asynccontextmanager
async def client_for(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=(CLIENT_IP, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://interlude.test") as client:
        yield client


async def post_graphql(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=sent)


def codes(response: httpx.Response) -> list[str]:
    return [e.get("extensions", {}).get("code", "") for e in response.json().get("errors", [])]


def data(response: httpx.Response) -> dict[str, Any]:
    """The `data` of a successful GraphQL response; fails the test with the errors otherwise."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body["errors"]
    result: dict[str, Any] = body["data"]
    return result
