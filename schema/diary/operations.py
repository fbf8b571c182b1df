"""Diary queries and mutations: unpack, call the service, map the result."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from api.domain.patient.access import require_patient
from api.domain.patient.models import Patient as PatientModel
from schema.context import Info
from schema.diary.types import DiaryEntry, DiaryEntryInput, DiaryEntryPatch, SyncResult
from schema.ids import parse_id
from schema.pagination import Connection
from schema.selection import selected_below

DiaryEntryConnection = Connection[DiaryEntry]
_NODE = ("edges", "node")


async def diary_page(
    info: Info,
    patient_id: strawberry.ID | str,
    first: int | None,
    after: str | None,
    start: datetime | None,
    end: datetime | None,
    include_deleted: bool,
    known: PatientModel | None = None,
) -> Connection[DiaryEntry]:
    """`known`: the patient the parent field already reached in this request (`Patient.diary`). Reads only the
    columns the selection of `edges { node { … } }` shows."""
    ctx = info.context
    page = await ctx.services.diary.entries(
        ctx.require_actor(),
        parse_id(patient_id, "patient"),
        first=first,
        after=after,
        start=start,
        end=end,
        include_deleted=include_deleted,
        now=ctx.now,
        known=known,
        fields=DiaryEntry.reads(selected_below(info, _NODE)),
    )
    return Connection[DiaryEntry].from_page(page, DiaryEntry.from_model)


@strawberry.type
class DiaryQuery:
    @strawberry.field(description="The signed-in patient's own diary, newest first.")
    async def my_diary(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
        include_deleted: bool = False,
    ) -> Connection[DiaryEntry]:
        # Staff have no diary of their own: FORBIDDEN, not the NOT_FOUND of looking up patient "None".
        patient_id = require_patient(info.context.require_actor())
        return await diary_page(info, str(patient_id), first, after, from_, to, include_deleted)


@strawberry.type
class DiaryMutation:
    @strawberry.mutation(description="Idempotent on input.clientId: a resend returns the stored entry.")
    async def log_diary_entry(self, info: Info, input: DiaryEntryInput) -> DiaryEntry:
        ctx = info.context
        entry = await ctx.services.diary.log(ctx.require_actor(), input.to_domain(), now=ctx.now)
        return DiaryEntry.from_model(entry)

    @strawberry.mutation(description="An offline queue, at most 200 entries; one result per entry, in order.")
    async def sync_diary_entries(self, info: Info, entries: list[DiaryEntryInput]) -> list[SyncResult]:
        ctx = info.context
        outcomes = await ctx.services.diary.sync(ctx.require_actor(), [e.to_domain() for e in entries], now=ctx.now)
        return [SyncResult.from_outcome(o, i) for i, o in enumerate(outcomes)]

    @strawberry.mutation(description="Changes an entry; the previous version is kept as a revision.")
    async def update_diary_entry(
        self,
        info: Info,
        id: strawberry.ID,
        input: DiaryEntryPatch,
    ) -> DiaryEntry:
        ctx = info.context
        entry = await ctx.services.diary.update(
            ctx.require_actor(),
            parse_id(id, "diary entry"),
            input.changes(),
            # Not `or None`: 0 is a version the caller expects (and a stale one), not "no expectation".
            expected_version=None if input.expected_version is strawberry.UNSET else input.expected_version,
            now=ctx.now,
        )
        return DiaryEntry.from_model(entry)

    @strawberry.mutation(description="Marks an entry as entered in error. Nothing is erased.")
    async def delete_diary_entry(self, info: Info, id: strawberry.ID) -> DiaryEntry:
        ctx = info.context
        entry = await ctx.services.diary.delete(ctx.require_actor(), parse_id(id, "diary entry"), now=ctx.now)
        return DiaryEntry.from_model(entry)
