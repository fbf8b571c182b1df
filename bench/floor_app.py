"""The floor: bare Starlette and an asyncpg pool running the SQL of bench/cases.py, answering as Interlude does.

    python -m bench.floor_app      (reads the same INTERLUDE_* settings as `interlude serve`)

No GraphQL, no ORM, no authentication, no validation beyond what the SQL needs: what the same operations cost with
nothing but HTTP, JSON and the database around them. It is served with the options `interlude serve` uses
(`api.cli.run_server`), so that both apps run under the same uvicorn loop, HTTP implementation and logging.

Each statement a handler sends is counted per case; GET /stats returns the counts, from which the runner reports
the floor's statements per request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import cache
from statistics import fmean
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.cli import run_server
from api.db import PooledConnection
from api.logging import configure_logging
from api.settings import Settings
from bench.cases import AuditSql, DiarySql, PatientsSql, SeriesSql, WriteSql

WRITABLE = ("ACTIVE", "PAUSED")
DEFAULT_POOL = 10


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()


class Counted:
    """A pooled connection whose statements count towards one case."""

    __slots__ = ("_case", "_conn", "_statements")

    def __init__(self, conn: Any, statements: Counter[str], case: str) -> None:
        self._conn = conn
        self._statements = statements
        self._case = case

    async def fetch(self, sql: str, *args: object) -> list[Any]:
        self._statements[self._case] += 1
        rows: list[Any] = await self._conn.fetch(sql, *args)
        return rows

    async def fetchrow(self, sql: str, *args: object) -> Any:
        self._statements[self._case] += 1
        return await self._conn.fetchrow(sql, *args)

    async def execute(self, sql: str, *args: object) -> None:
        self._statements[self._case] += 1
        await self._conn.execute(sql, *args)

    def transaction(self) -> Any:
        return self._conn.transaction()


class Floor:
    def __init__(self, database_url: str) -> None:
        self.dsn, self.pool_size = pool_settings(database_url)
        self.pool: Any = None
        self.stats = Stats()

    @asynccontextmanager
    async def connection(self, case: str) -> AsyncIterator[Counted]:
        self.stats.requests[case] += 1
        async with self.pool.acquire() as conn:
            yield Counted(conn, self.stats.statements, case)


def pool_settings(database_url: str) -> tuple[str, int]:
    """The DSN without Tortoise's pool options (asyncpg would send them to the server as settings), and the pool's
    size as Tortoise reads it from the same URL (`?maxsize=`)."""
    parts = urlsplit(database_url)
    options = parse_qs(parts.query)
    size = int(options.get("maxsize", [str(DEFAULT_POOL)])[0])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", "")), size


def build_app(database_url: str) -> Starlette:
    floor = Floor(database_url)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        # Connections given back as Interlude's are, without asyncpg's reset statement (api/db.py): the same SQL.
        floor.pool = await asyncpg.create_pool(
            floor.dsn, min_size=floor.pool_size, max_size=floor.pool_size, connection_class=PooledConnection
        )
        try:
            yield
        finally:
            await floor.pool.close()

    def route(path: str, handler: Callable[[Floor, Request], Any]) -> Route:
        async def endpoint(request: Request) -> JSONResponse:
            result: JSONResponse = await handler(floor, request)
            return result

        return Route(path, endpoint, methods=["POST"])

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse({"requests": floor.stats.requests, "statements": floor.stats.statements})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/stats", stats),
            route("/write", write),
            route("/diary", diary),
            route("/patient-diary", patient_diary),
            route("/series", patient_series),
            route("/patients", patients),
        ],
        lifespan=lifespan,
    )


# --- handlers --------------------------------------------------------------------------------------------------


class FastJSON(JSONResponse):
    """Encoded with orjson, as Interlude's responses are (api/graphql_http.py): the floor is no slower than that."""

    def render(self, content: object) -> bytes:
        return orjson.dumps(content)


def _data(field: str, value: object) -> JSONResponse:
    return FastJSON({"data": {field: value}})


def _error(message: str) -> JSONResponse:
    return FastJSON({"errors": [{"message": message}], "data": None})


async def write(floor: Floor, request: Request) -> JSONResponse:
    body = await request.json()
    clinic_id, patient_id, values = UUID(body["clinicId"]), UUID(body["patientId"]), body["input"]
    now = datetime.now(UTC)
    client_id = UUID(values["clientId"])
    recorded = datetime.fromisoformat(values["recordedAt"])
    offset = recorded.utcoffset() or timedelta(0)
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()
    sleep = values.get("sleepHours")
    entry_id = uuid4()
    async with floor.connection("write") as db, db.transaction():
        patient = await db.fetchrow(WriteSql.LOCK, patient_id, clinic_id)
        if patient is None or patient["status"] not in WRITABLE:
            return _error("patient not found")
        inserted = await db.fetchrow(
            WriteSql.INSERT,
            entry_id,
            clinic_id,
            patient_id,
            client_id,
            digest,
            recorded,
            int(offset.total_seconds() // 60),
            values.get("painNow"),
            values.get("painWorst"),
            values.get("painAverage"),
            None if sleep is None else Decimal(str(sleep)),
            values.get("sleepQuality"),
            values.get("mood"),
            values.get("rescueMedication"),
            values.get("note"),
            now,
        )
        if inserted is None:
            await db.fetchrow(WriteSql.EXISTING, patient_id, client_id)
            return _error("resent: the benchmark sends each clientId once")
        await db.fetchrow(WriteSql.ALERT_SETTINGS, clinic_id)
        await db.fetchrow(WriteSql.LATEST_SESSION, patient_id)
    entry = {
        "id": str(entry_id),
        "clientId": str(client_id),
        "recordedAt": recorded.isoformat(),
        "createdAt": now.isoformat(),
        "painNow": values.get("painNow"),
        "painAverage": values.get("painAverage"),
        "sleepHours": sleep,
        "mood": values.get("mood"),
        "note": values.get("note"),
    }
    return _data("logDiaryEntry", entry)


async def diary(floor: Floor, request: Request) -> JSONResponse:
    body = await request.json()
    clinic_id, patient_id, first = UUID(body["clinicId"]), UUID(body["patientId"]), int(body["first"])
    async with floor.connection("diary30") as db:
        patient = await db.fetchrow(DiarySql.PATIENT, patient_id, clinic_id)
        if patient is None:
            return _error("patient not found")
        rows = await db.fetch(DiarySql.PAGE, patient_id, first + 1)
    return _data("myDiary", _page(rows, first))


async def patient_diary(floor: Floor, request: Request) -> JSONResponse:
    body = await request.json()
    clinic_id, patient_id, first = UUID(body["clinicId"]), UUID(body["patientId"]), int(body["first"])
    async with floor.connection("patient100") as db:
        patient = await db.fetchrow(DiarySql.PATIENT, patient_id, clinic_id)
        if patient is None:
            return _error("patient not found")
        await _audit(db, request, body, action="patient.read", operation="PatientDiary", ids=[patient_id])
        rows = await db.fetch(DiarySql.PAGE, patient_id, first + 1)
    found = {"id": str(patient_id), "displayName": patient["display_name"], "diary": _page(rows, first)}
    return _data("patient", found)


async def patient_series(floor: Floor, request: Request) -> JSONResponse:
    body = await request.json()
    clinic_id, patient_id = UUID(body["clinicId"]), UUID(body["patientId"])
    start, end = date.fromisoformat(body["from"]), date.fromisoformat(body["to"])
    # A day's margin each side of the local days [start, end): UTC offsets run from −12 h to +14 h.
    lower = datetime.combine(start - timedelta(days=1), time(), UTC)
    upper = datetime.combine(end + timedelta(days=1), time(), UTC)
    async with floor.connection("series365") as db:
        patient = await db.fetchrow(DiarySql.PATIENT, patient_id, clinic_id)
        if patient is None:
            return _error("patient not found")
        await _audit(db, request, body, action="outcome.read", operation="PainSeries", ids=[patient_id])
        rows = await db.fetch(SeriesSql.ENTRIES, patient_id, lower, upper)
    return _data("patient", {"series": _daily_series(rows, start, end)})


async def patients(floor: Floor, request: Request) -> JSONResponse:
    body = await request.json()
    clinic_id, first = UUID(body["clinicId"]), int(body["first"])
    now = datetime.now(UTC)
    async with floor.connection("patients50") as db:
        rows = await db.fetch(PatientsSql.PAGE, clinic_id, first + 1)
        page = rows[:first]
        ids = [row["id"] for row in page]
        facts: dict[UUID, Any] = {}
        last: dict[UUID, Any] = {}
        if ids:
            await _audit(db, request, body, action="patient.list", operation="PatientList", ids=ids)
            facts = {f["id"]: f for f in await db.fetch(PatientsSql.FACTS, ids, now - timedelta(days=7), now)}
            wanted = [f["last_entry_id"] for f in facts.values() if f["last_entry_id"] is not None]
            last = {e["id"]: e for e in await db.fetch(PatientsSql.LAST_ENTRIES, wanted)}
    edges = [
        {"cursor": _cursor(row["search_name"], row["id"]), "node": _listed(row, facts.get(row["id"]), last)}
        for row in page
    ]
    end_cursor = edges[-1]["cursor"] if edges else None
    return _data("patients", {"edges": edges, "pageInfo": {"hasNextPage": len(rows) > first, "endCursor": end_cursor}})


# --- shaping, as the GraphQL types do ---------------------------------------------------------------------------


async def _audit(db: Counted, request: Request, body: Any, *, action: str, operation: str, ids: Sequence[Any]) -> None:
    event_id = uuid4()
    client = request.client
    await db.execute(
        AuditSql.EVENT,
        event_id,
        UUID(body["clinicId"]),
        UUID(body["actorId"]),
        action,
        ids[0] if len(ids) == 1 else None,
        operation,
        uuid4().hex,
        client.host if client else None,
        datetime.now(UTC),
    )
    await db.execute(AuditSql.SUBJECTS, event_id, [uuid4() for _ in ids], list(ids))


@cache
def _zone(offset_minutes: int) -> timezone:
    return timezone(timedelta(minutes=offset_minutes))


def _cursor(key: datetime | str, row_id: object) -> str:
    raw = key.isoformat() if isinstance(key, datetime) else key
    return base64.urlsafe_b64encode(json.dumps([raw, str(row_id)]).encode()).decode()


def _entry(row: Any) -> dict[str, Any]:
    sleep = row["sleep_hours"]
    return {
        "id": str(row["id"]),
        "clientId": str(row["client_id"]),
        "recordedAt": row["recorded_at"].astimezone(_zone(row["utc_offset_minutes"])).isoformat(),
        "createdAt": row["created_at"].isoformat(),
        "painNow": row["pain_now"],
        "painAverage": row["pain_average"],
        "sleepHours": None if sleep is None else float(sleep),
        "mood": row["mood"],
        "note": row["note"],
    }


def _page(rows: Sequence[Any], size: int) -> dict[str, Any]:
    edges = [{"cursor": _cursor(row["recorded_at"], row["id"]), "node": _entry(row)} for row in rows[:size]]
    end_cursor = edges[-1]["cursor"] if edges else None
    return {"edges": edges, "pageInfo": {"hasNextPage": len(rows) > size, "endCursor": end_cursor}}


def _daily_series(rows: Sequence[Any], start: date, end: date) -> dict[str, list[Any]]:
    """One value per local day in [start, end): the mean of that day's entries, each dated in its own offset."""
    per_day: dict[date, list[float]] = {}
    for row in rows:
        value = row["pain_average"]
        if value is not None:
            day = (row["recorded_at"] + timedelta(minutes=row["utc_offset_minutes"])).date()
            per_day.setdefault(day, []).append(float(value))
    days = [start + timedelta(days=i) for i in range((end - start).days)]
    means = [fmean(values) if (values := per_day.get(day)) else None for day in days]
    return {
        "dates": [day.isoformat() for day in days],
        "values": means,
        "counts": [0 if mean is None else 1 for mean in means],
    }


def _listed(row: Any, facts: Any, last: dict[UUID, Any]) -> dict[str, Any]:
    entry = last.get(facts["last_entry_id"]) if facts is not None else None
    last_entry = None
    if entry is not None:
        last_entry = {
            "id": str(entry["id"]),
            "recordedAt": entry["recorded_at"].astimezone(_zone(entry["utc_offset_minutes"])).isoformat(),
            "painNow": entry["pain_now"],
            "painAverage": entry["pain_average"],
        }
    return {
        "id": str(row["id"]),
        "displayName": row["display_name"],
        "lastEntry": last_entry,
        "overview": _overview(facts),
    }


def _overview(facts: Any) -> dict[str, Any] | None:
    if facts is None:
        return None
    answered, expired = facts["answered"], facts["expired"]
    mean = facts["pain_mean"]
    last_at = facts["last_entry_at"]
    return {
        "lastEntryAt": last_at.isoformat() if last_at is not None else None,
        "painMean7Days": None if mean is None else float(mean),
        "painEntries7Days": facts["pain_entries"],
        "adherence": {
            "answered": answered,
            "expired": expired,
            "rate": answered / (answered + expired) if answered + expired else None,
        },
        "openAlerts": facts["open_alerts"],
    }


# --- serving ---------------------------------------------------------------------------------------------------


def main() -> int:
    """Served as `interlude serve` serves Interlude (`run_server`: the same uvicorn options, loop, HTTP
    implementation, access log…), the same logging, and the same heap frozen at start."""
    settings = Settings()
    configure_logging(settings.log_level)
    run_server(build_app(settings.database_url), settings, host=settings.host, port=settings.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
