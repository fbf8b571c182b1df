"""Bulk exports read the database in keyset batches while they stream, never all at once and never row by row."""

from __future__ import annotations

import csv
import gc
import io
import json
import tracemalloc
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest_asyncio

from api.domain.actor import Role
from api.domain.diary.models import DiaryEntry
from api.domain.export.service import ExportService
from tests.conftest import count_queries
from tests.export.support import bulk_entries
from tests.factories import Factory, PatientUser, Staff

ENTRIES = 2500


@pytest_asyncio.fixture
async def clinic(factory: Factory, now: datetime) -> tuple[Staff, PatientUser]:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    alice = await factory.patient(clinic)
    await DiaryEntry.bulk_create(bulk_entries(alice, ENTRIES, now), batch_size=500)
    return admin, alice


async def test_ndjson_reads_2500_entries_in_three_queries_while_it_streams(
    clinic: tuple[Staff, PatientUser], now: datetime
) -> None:
    admin, _ = clinic
    lines = await ExportService(batch_size=1000).clinic_ndjson(admin.actor, now=now)
    seen: list[tuple[dict[str, Any], int]] = []
    with count_queries() as counter:
        async for line in lines:
            assert line.endswith("\n")
            seen.append((json.loads(line), len(counter.statements)))
    observations = [(r, q) for r, q in seen if r["resourceType"] == "Observation"]
    # Two measures per entry (pain now, sleep hours).
    assert len(observations) == 2 * ENTRIES
    assert len({r["id"] for r, _ in observations}) == 2 * ENTRIES
    # The first diary line came after one diary query; the last after three (1,000 + 1,000 + 500 rows): the
    # other two were read while the stream was being consumed.
    assert observations[-1][1] - observations[0][1] == 2
    # patients, 3 diary batches, responses, sessions.
    assert counter.statements == ["SELECT"] * 6


async def test_csv_keyset_batches_lose_and_repeat_nothing_where_instants_tie(
    clinic: tuple[Staff, PatientUser], now: datetime
) -> None:
    admin, alice = clinic
    with count_queries() as counter:
        lines = await ExportService(batch_size=1000).diary_csv(admin.actor, alice.patient.id, now=now)
        text = "".join([line async for line in lines])
    rows = list(csv.reader(io.StringIO(text, newline="")))[1:]
    stored = await DiaryEntry.filter(patient_id=alice.patient.id).order_by("recorded_at", "id").values_list("id")
    # Three entries share each instant, so the batch ending at row 1,000 splits a run of ties.
    assert [r[0] for r in rows] == [str(row[0]) for row in stored]
    # reachable_patient and the 3 batches (the name of the one patient is known already: no lookup).
    assert counter.statements.count("SELECT") == 4


async def peak_bytes_while_consuming(lines: AsyncIterator[str]) -> tuple[int, int]:
    """Lines read and the most memory Python held at once while reading them (lines are dropped, as a socket
    would): what the stream itself keeps alive."""
    # Garbage from earlier work, not yet collected, would otherwise count towards whichever run collects it.
    gc.collect()
    tracemalloc.start()
    try:
        count = 0
        async for _ in lines:
            count += 1
        return count, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def test_memory_stays_flat_from_1000_to_10000_entries(factory: Factory, now: datetime) -> None:
    admins = {}
    for size in (1_000, 10_000):
        clinic = await factory.clinic()
        admins[size] = await factory.staff(clinic, Role.ADMIN)
        entries = bulk_entries(await factory.patient(clinic), size, now)
        for entry in entries:
            # One Observation per entry: tracing every allocation makes each line about ten times dearer.
            entry.sleep_hours = None
        await DiaryEntry.bulk_create(entries, batch_size=1000)
    service = ExportService(batch_size=1000)
    # One untraced run first: imports, caches and prepared statements are not the export's memory.
    async for _ in await service.clinic_ndjson(admins[1_000].actor, now=now):
        pass
    small = await peak_bytes_while_consuming(await service.clinic_ndjson(admins[1_000].actor, now=now))
    large = await peak_bytes_while_consuming(await service.clinic_ndjson(admins[10_000].actor, now=now))
    # The Patient and one Observation per entry.
    assert (small[0], large[0]) == (1 + 1_000, 1 + 10_000)
    # One batch of 1,000 rows either way: flat. Reading every row at once would be about ten times the small peak,
    # and holding the last batch while the next is read (as this export once did) about twice.
    assert large[1] < 1.5 * small[1], (small[1], large[1])
