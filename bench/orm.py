"""What the ORM costs on a hot read, against the same statement written out (api/domain/sql.py), on PostgreSQL.

    .venv/bin/python -m bench.orm [--rows 31] [--repeat 2000]

Each variant runs `--repeat` times after a warm-up, sequentially on one connection of the pool; the figure is this
process's CPU time per call (the database's own time is not in it). One patient with a year of entries, in a scratch
database dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from tortoise import Tortoise

from api import migrations
from api.db import tortoise_config
from api.domain.account.models import Clinic
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient, PatientStatus
from api.domain.sql import Where, select, select_values
from bench.postgres import scratch_database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
# What the API benchmark's pages select (bench/cases.py ENTRY), as `DiaryEntry.reads` makes it fields to read.
SHOWN = frozenset(
    {"id", "client_id", "recorded_at", "utc_offset_minutes", "created_at", "pain_now", "pain_average", "sleep_hours"}
    | {"mood", "note"}
)
WARMUP = 50
NEWEST_FIRST = '"recorded_at" DESC, "id" DESC'


async def cpu_per_call(call: Callable[[], Awaitable[Any]], repeat: int) -> float:
    """Microseconds of this process's CPU per call."""
    for _ in range(WARMUP):
        await call()
    start = time.process_time()
    for _ in range(repeat):
        await call()
    return (time.process_time() - start) / repeat * 1e6


async def measure(rows: int, repeat: int) -> list[tuple[str, float]]:
    clinic = await Clinic.create(name="Bench clinic", created_at=NOW)
    patient = await Patient.create(
        clinic_id=clinic.id,
        display_name="Bench patient",
        search_name="bench patient",
        timezone="Europe/London",
        status=PatientStatus.ACTIVE,
        created_at=NOW,
    )
    await DiaryEntry.bulk_create(
        [
            DiaryEntry(
                patient_id=patient.id,
                clinic_id=clinic.id,
                client_id=uuid4(),
                client_hash="0" * 64,
                recorded_at=NOW - timedelta(days=day),
                utc_offset_minutes=0,
                pain_now=day % 11,
                pain_average=5,
                sleep_hours=6.5,
                mood=5,
                note="a day",
                created_at=NOW,
                updated_at=NOW,
            )
            for day in range(365)
        ]
    )
    page = DiaryEntry.filter(patient_id=patient.id, deleted_at=None).order_by("-recorded_at", "-id")

    def newest() -> Where:
        return Where('"patient_id" = {} AND "deleted_at" IS NULL', patient.id)

    variants: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "patient by id and clinic, ORM (get_or_none)",
            lambda: Patient.get_or_none(id=patient.id, clinic_id=clinic.id),
        ),
        (
            "patient by id and clinic, written out",
            lambda: select(Patient, Where('"id" = {} AND "clinic_id" = {}', patient.id, clinic.id)),
        ),
        (f"{rows} entries, ORM (model instances)", lambda: page.limit(rows)),
        (f"{rows} entries, ORM (values_list)", lambda: page.limit(rows).values_list("id", "recorded_at", "note")),
        (
            f"{rows} entries, written out (model instances)",
            lambda: select(DiaryEntry, newest(), order_by=NEWEST_FIRST, limit=rows),
        ),
        (
            f"{rows} entries, written out (values)",
            lambda: select_values(DiaryEntry, newest(), order_by=NEWEST_FIRST, limit=rows),
        ),
        (
            f"{rows} entries, written out (values, {len(SHOWN)} fields)",
            lambda: select_values(DiaryEntry, newest(), order_by=NEWEST_FIRST, limit=rows, fields=SHOWN),
        ),
    ]
    return [(label, await cpu_per_call(call, repeat)) for label, call in variants]


async def run(rows: int, repeat: int) -> list[tuple[str, float]]:
    async with scratch_database() as (_, url):
        await migrations.apply(url)
        await Tortoise.init(config=tortoise_config(url + "?minsize=1&maxsize=1"))
        try:
            return await measure(rows, repeat)
        finally:
            await Tortoise.close_connections()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.orm", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=31, help="entries per page read (default 31: 30 and one more)")
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args(argv)
    for label, micros in asyncio.run(run(args.rows, args.repeat)):
        print(f"{label:<48} {micros:8.1f} µs CPU per call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
