"""Export benchmark: the clinic's bulk NDJSON for N diary entries, wall time and peak memory.

    .venv/bin/python -m bench.export --entries 10000 100000

For each entry count: a fresh PostgreSQL database (created, migrated, dropped at the end; `--backend sqlite` uses a
file in a temporary folder instead), seeded with bulk inserts: one clinic, N / 100 ACTIVE patients with 100 diary
entries each (pain now, average pain, sleep hours: three Observations per entry). Then the export runs twice, its
lines consumed and counted as a response body would be:

- timed:  wall time, with nothing else measuring;
- traced: the same export under `tracemalloc`, which reports the peak of Python memory allocated during the export
          (tracing slows it down, so its time is not a result).

The goal is memory flat as N grows: the 100,000-entry export should peak near the 10,000-entry one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import tracemalloc
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from time import perf_counter
from uuid import UUID, uuid4

from tortoise.context import TortoiseContext

from api import migrations
from api.db import tortoise_config
from api.domain.account.models import Clinic
from api.domain.actor import Actor, Role
from api.domain.diary.models import DiaryEntry
from api.domain.export.service import BATCH_SIZE, ExportService
from api.domain.patient.models import Patient, PatientStatus
from bench.postgres import analyze, scratch_database

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
ENTRIES_PER_PATIENT = 100
INSERT_BATCH = 1000


@dataclass
class Result:
    entries: int
    lines: int
    megabytes: float
    seconds: float
    peak_kib: float


async def seed(entries: int) -> Actor:
    clinic = await Clinic.create(name="Bench clinic", created_at=NOW - timedelta(days=400))
    patients = [_patient(clinic.id, i) for i in range(-(-entries // ENTRIES_PER_PATIENT))]
    for start in range(0, len(patients), INSERT_BATCH):
        await Patient.bulk_create(patients[start : start + INSERT_BATCH])
    for start in range(0, entries, INSERT_BATCH):
        rows = [_entry(patients[i // ENTRIES_PER_PATIENT], i) for i in range(start, min(start + INSERT_BATCH, entries))]
        await DiaryEntry.bulk_create(rows)
    # An admin needs no account row to export: the actor is what the service checks.
    return Actor(account_id=uuid4(), role=Role.ADMIN, clinic_id=clinic.id)


def _patient(clinic_id: UUID, i: int) -> Patient:
    return Patient(
        id=uuid4(),
        clinic_id=clinic_id,
        display_name=f"Bench Patient {i}",
        search_name=f"bench patient {i}",
        timezone="America/New_York",
        status=PatientStatus.ACTIVE,
        created_at=NOW - timedelta(days=200),
        activated_at=NOW - timedelta(days=200),
    )


def _entry(patient: Patient, i: int) -> DiaryEntry:
    recorded = NOW - timedelta(days=i % ENTRIES_PER_PATIENT, hours=2)
    return DiaryEntry(
        clinic_id=patient.clinic_id,
        patient_id=patient.id,
        client_id=uuid4(),
        client_hash="0" * 64,
        recorded_at=recorded,
        utc_offset_minutes=-300,
        pain_now=i % 11,
        pain_average=(i * 7) % 11,
        sleep_hours=Decimal("6.50") + Decimal(i % 4) / 2,
        created_at=recorded,
        updated_at=recorded,
    )


async def consume(lines: AsyncIterator[str]) -> tuple[int, int]:
    count = size = 0
    async for line in lines:
        count += 1
        size += len(line.encode())
    return count, size


async def export_once(exports: ExportService, admin: Actor, *, traced: bool) -> tuple[int, int, float, float]:
    if traced:
        tracemalloc.start()
        tracemalloc.reset_peak()
    started = perf_counter()
    lines, size = await consume(await exports.clinic_ndjson(admin, now=NOW))
    seconds = perf_counter() - started
    peak = 0.0
    if traced:
        peak = tracemalloc.get_traced_memory()[1] / 1024
        tracemalloc.stop()
    return lines, size, seconds, peak


async def bench(entries: int, backend: str, batch: int) -> Result:
    async with database(backend) as url:
        await migrations.apply(url)
        async with TortoiseContext() as ctx:
            await ctx.init(config=tortoise_config(url))
            started = perf_counter()
            admin = await seed(entries)
            print(f"  {entries:>7} entries seeded in {perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            if backend == "postgres":
                await analyze(url)
            exports = ExportService(batch_size=batch)
            lines, size, seconds, _ = await export_once(exports, admin, traced=False)
            _, _, _, peak = await export_once(exports, admin, traced=True)
    return Result(entries, lines, size / 1e6, seconds, peak)


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """A fresh database of the backend, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite://{Path(folder) / 'bench.db'}"
        return
    async with scratch_database() as (_, url):
        yield url


def report(results: Sequence[Result]) -> None:
    print("| entries | lines | MB | seconds | lines/s | peak traced memory |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        rate = r.lines / r.seconds
        print(
            f"| {r.entries:,} | {r.lines:,} | {r.megabytes:.1f} | {r.seconds:.2f} | {rate:,.0f} "
            f"| {r.peak_kib / 1024:.2f} MiB |"
        )
    if len(results) >= 2:
        small, large = results[0], results[-1]
        print(
            f"\n{large.entries:,} vs {small.entries:,} entries ({large.entries / small.entries:g}x): "
            f"time {large.seconds / small.seconds:.2f}x, peak memory {large.peak_kib / small.peak_kib:.2f}x"
        )


async def _main(args: argparse.Namespace) -> None:
    print(
        f"Interlude export benchmark: backend {args.backend}, batch {args.batch}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    results = [await bench(n, args.backend, args.batch) for n in args.entries]
    report(results)
    print(f"(load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())})")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.export", description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, nargs="+", default=[10_000, 100_000], help="one run per count")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--batch", type=int, default=BATCH_SIZE, help="rows per keyset query")
    asyncio.run(_main(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
