"""Baselines in raw asyncpg: writing the rows a phase wrote, with nothing else around it.

Each floor replays the very rows the measured phase left in the database into a scratch copy of the table
(`LIKE … INCLUDING ALL`: same columns, indexes and unique keys; no foreign keys), so the ratio compares like
with like. The scratch tables are dropped before returning.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from time import perf_counter
from typing import Any

import asyncpg

PROMPT_FLOOR = "bench_floor_prompt"
MESSAGE_FLOOR = "bench_floor_push_message"
FILL_PROMPTS = "INSERT INTO bench_floor_prompt SELECT * FROM prompt"
MARK_SENT = (
    "UPDATE bench_floor_prompt SET status = 'SENT', sent_at = $2, updated_at = $2, next_reminder_at = $3 WHERE id = $1"
)
MARK_ACCEPTED = (
    "UPDATE bench_floor_push_message SET status = 'ACCEPTED', attempts = attempts + 1, sent_at = $2, "
    "updated_at = $2, provider_message_id = $3 WHERE id = $1"
)


async def plan_floor(url: str) -> dict[str, float]:
    """Seconds to insert the planned prompts: one COPY; one executemany; one executemany per patient, each
    in its own transaction (the last isolates what a commit per patient costs)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT * FROM prompt")
        if not rows:
            return {}
        columns = list(rows[0].keys())
        records = [tuple(r) for r in rows]
        insert = _insert_sql(PROMPT_FLOOR, columns)
        by_patient: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
        for record in records:
            by_patient[record[columns.index("patient_id")]].append(record)
        await conn.execute(f"CREATE TABLE {PROMPT_FLOOR} (LIKE prompt INCLUDING ALL)")
        try:
            copy = await _timed_copy(conn, PROMPT_FLOOR, records, columns)
            await conn.execute(f"TRUNCATE {PROMPT_FLOOR}")
            start = perf_counter()
            async with conn.transaction():
                await conn.executemany(insert, records)
            many = perf_counter() - start
            await conn.execute(f"TRUNCATE {PROMPT_FLOOR}")
            start = perf_counter()
            for group in by_patient.values():
                async with conn.transaction():
                    await conn.executemany(insert, group)
            per_patient = perf_counter() - start
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {PROMPT_FLOOR}")
        return {"rows": len(records), "copy": copy, "executemany": many, "commit_per_patient": per_patient}
    finally:
        await conn.close()


async def dispatch_floor(url: str) -> dict[str, float]:
    """Seconds for the writes a dispatch must make, in one transaction: insert the outbox rows, mark the
    released prompts sent, mark every message accepted."""
    conn = await asyncpg.connect(url)
    try:
        messages = await conn.fetch("SELECT * FROM push_message")
        sent = await conn.fetch("SELECT id, sent_at, next_reminder_at FROM prompt WHERE sent_at IS NOT NULL")
        if not messages:
            return {}
        columns = list(messages[0].keys())
        records = [tuple(m) for m in messages]
        await conn.execute(f"CREATE TABLE {MESSAGE_FLOOR} (LIKE push_message INCLUDING ALL)")
        await conn.execute(f"CREATE TABLE {PROMPT_FLOOR} (LIKE prompt INCLUDING ALL)")
        try:
            await conn.execute(FILL_PROMPTS)
            start = perf_counter()
            async with conn.transaction():
                await conn.copy_records_to_table(MESSAGE_FLOOR, records=records, columns=columns)
                await conn.executemany(
                    MARK_SENT,
                    [(p["id"], p["sent_at"], p["next_reminder_at"]) for p in sent],
                )
                await conn.executemany(
                    MARK_ACCEPTED,
                    [(m["id"], m["sent_at"], m["provider_message_id"]) for m in messages],
                )
            seconds = perf_counter() - start
        finally:
            await conn.execute(f"DROP TABLE IF EXISTS {MESSAGE_FLOOR}")
            await conn.execute(f"DROP TABLE IF EXISTS {PROMPT_FLOOR}")
        return {"messages": len(records), "prompts": len(sent), "one_transaction": seconds}
    finally:
        await conn.close()


async def _timed_copy(conn: Any, table: str, records: Sequence[tuple[Any, ...]], columns: list[str]) -> float:
    start = perf_counter()
    async with conn.transaction():
        await conn.copy_records_to_table(table, records=records, columns=columns)
    return perf_counter() - start


def _insert_sql(table: str, columns: list[str]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({names}) VALUES ({params})"  # noqa: S608 -- names come from the table itself
