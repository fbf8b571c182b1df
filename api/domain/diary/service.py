"""Writing and reading diary entries: idempotent on the phone's clientId, revisions kept, nothing partial stored."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor
from api.domain.alert.service import AlertService, Announced
from api.domain.clock import require_aware
from api.domain.diary.models import DiaryEntry, DiaryEntryRevision
from api.domain.diary.validation import (
    MEASURE_FIELDS,
    PATCHABLE,
    Content,
    DiaryInput,
    Window,
    build_content,
)
from api.domain.errors import BadInput, Conflict, DomainError, NotFound
from api.domain.paging import Page, decode_cursor, make_page, page_size, parse_instant
from api.domain.patient.access import (
    lock_own_patient,
    lock_patient,
    reachable_patient,
    require_patient,
    require_writable,
)
from api.domain.patient.models import Patient
from api.domain.prompt.service import ANSWERED_BY_DIARY, PromptService
from api.domain.sql import Where, insert_new, one_connection, select, select_values

MAX_SYNC = 200
# What a page of the diary is ordered and cut by: read whatever else a caller reads (`entries`).
_PAGE_KEY = frozenset({"id", "recorded_at"})
# An entry's idempotency key: a phone's clientId, unique per patient.
_CLIENT_KEY = ("patient_id", "client_id")


class SyncStatus(StrEnum):
    CREATED = "CREATED"
    UNCHANGED = "UNCHANGED"
    CONFLICT = "CONFLICT"
    INVALID = "INVALID"


@dataclass(frozen=True)
class SyncOutcome:
    client_id: UUID
    status: SyncStatus
    entry: DiaryEntry | None = None
    error: DomainError | None = None


class _Closed(Exception):
    """The diary closed (the patient erased, discharged) while a batch was being stored: the batch stops with the
    refusal any later call gets, rather than filing it under each item left."""

    def __init__(self, refusal: DomainError) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


@dataclass(frozen=True)
class DiaryPolicy:
    backfill: timedelta
    clock_skew: timedelta


class DiaryService:
    def __init__(self, policy: DiaryPolicy, prompts: PromptService, alerts: AlertService) -> None:
        self.policy = policy
        self.prompts = prompts
        self.alerts = alerts

    async def log(self, actor: Actor, data: DiaryInput, *, now: datetime) -> DiaryEntry:
        """One entry, in one transaction: the patient's row locked and checked first (`lock_own_patient`), then the
        entry stored, or judged against the one stored under its clientId. Nothing is read before the transaction,
        so nothing read there can be out of date in it."""
        require_patient(actor)  # staff are refused before a connection is taken
        async with in_transaction() as conn:
            patient = await lock_own_patient(actor, conn)
            content = build_content(data.values(), self._window(patient, now))
            outcome, raised = await self._insert(patient, data, content, now, conn)
        await self.alerts.publish(raised)
        if outcome.error is not None:
            raise outcome.error
        assert outcome.entry is not None  # noqa: S101 -- CREATED/UNCHANGED always carry the entry
        return outcome.entry

    async def sync(self, actor: Actor, items: list[DiaryInput], *, now: datetime) -> list[SyncOutcome]:
        """Each item stands alone: one bad item never blocks the others, and the batch is safe to resend. The items
        already stored are found first, in one statement, and answered without a transaction."""
        patient = await self._writer(actor)
        if len(items) > MAX_SYNC:
            raise BadInput("entries", f"at most {MAX_SYNC} entries per call")
        window = self._window(patient, now)
        resent = Where('"patient_id" = {}', patient.id)
        resent.add_in('"client_id"', [i.client_id for i in items])
        existing = {e.client_id: e for e in await select(DiaryEntry, resent)}
        outcomes = []
        for item in items:
            try:
                outcome = await self._store(patient, item, window, existing, now)
            except _Closed as closed:
                raise closed.refusal from None
            except DomainError as exc:
                status = SyncStatus.CONFLICT if isinstance(exc, Conflict) else SyncStatus.INVALID
                outcome = SyncOutcome(item.client_id, status, error=exc)
            outcomes.append(outcome)
        return outcomes

    async def _store(
        self, patient: Patient, item: DiaryInput, window: Window, existing: dict[UUID, DiaryEntry], now: datetime
    ) -> SyncOutcome:
        content = build_content(item.values(), window)
        if item.client_id in existing:
            return _resent(existing[item.client_id], content.digest())
        async with in_transaction() as conn:
            try:
                patient = require_writable(await lock_patient(patient.id, conn))
            except DomainError as refusal:
                raise _Closed(refusal) from refusal
            outcome, raised = await self._insert(patient, item, content, now, conn)
        if outcome.entry is not None:
            existing[item.client_id] = outcome.entry
        await self.alerts.publish(raised)
        return outcome

    async def _insert(
        self, patient: Patient, item: DiaryInput, content: Content, now: datetime, conn: BaseDBAsyncClient
    ) -> tuple[SyncOutcome, Announced]:
        """In the transaction that locked the patient: the entry stored, its prompt answered and its alert rules run
        (alerts to publish after the commit); or, if an entry with its clientId is stored already, the resend
        judged against it, with nothing written. Under the patient's lock, a concurrent write of the same entry
        has committed or not begun, so the insert never waits on it, and never fails for it."""
        digest = content.digest()
        row = {
            "clinic_id": patient.clinic_id,
            "patient_id": patient.id,
            "client_id": item.client_id,
            "client_hash": digest,
            "created_at": now,
            "updated_at": now,
            **content.values,
        }
        entry = await insert_new(DiaryEntry, row, unique=_CLIENT_KEY, using_db=conn)
        if entry is None:
            resent = Where('"patient_id" = {} AND "client_id" = {}', patient.id, item.client_id)
            stored = (await select(DiaryEntry, resent, using_db=conn))[0]
            return _resent(stored, digest), Announced()
        prompt_id: UUID | None = content.values["prompt_id"]
        if prompt_id is not None:
            await self.prompts.answer(patient.id, prompt_id, kind=ANSWERED_BY_DIARY, now=now, using_db=conn)
        raised = await self.alerts.on_entry(patient, entry, now=now, using_db=conn)
        return SyncOutcome(item.client_id, SyncStatus.CREATED, entry=entry), raised

    async def update(
        self, actor: Actor, entry_id: UUID, patch: Mapping[str, Any], *, expected_version: int | None, now: datetime
    ) -> DiaryEntry:
        unknown = set(patch) - PATCHABLE
        if unknown:
            raise BadInput(sorted(unknown)[0], "cannot be changed")
        patient = await self._writer(actor)
        async with in_transaction() as conn:
            patient = require_writable(await lock_patient(patient.id, conn))
            entry = await self._own_entry(patient, entry_id, conn)
            if entry.deleted_at is not None:
                raise Conflict("entry was deleted", field="id")
            if expected_version is not None and expected_version != entry.version:
                raise Conflict("entry was changed since you read it", field="expected_version")
            current = _content_of(entry)
            merged = {**current, **patch}
            content = build_content(merged, self._window(patient, now))
            changed = {k: v for k, v in content.values.items() if getattr(entry, k) != v}
            if not changed:
                return entry
            await _keep_revision(entry, "updated", actor, now, conn)
            for name, value in changed.items():
                setattr(entry, name, value)
            entry.version += 1
            entry.updated_at = now
            await entry.save(using_db=conn)
            # An edit may add a symptom or change the pain that a rule reads (the rules skip any other edit).
            raised = await self.alerts.on_entry(patient, entry, now=now, using_db=conn, changed=changed.keys())
        await self.alerts.publish(raised)
        return entry

    async def delete(self, actor: Actor, entry_id: UUID, *, now: datetime) -> DiaryEntry:
        patient = await self._writer(actor)
        async with in_transaction() as conn:
            patient = require_writable(await lock_patient(patient.id, conn))
            entry = await self._own_entry(patient, entry_id, conn)
            if entry.deleted_at is None:
                await _keep_revision(entry, "entered_in_error", actor, now, conn)
                entry.deleted_at = now
                entry.version += 1
                entry.updated_at = now
                await entry.save(using_db=conn, update_fields=["deleted_at", "version", "updated_at"])
        return entry

    async def entries(
        self,
        actor: Actor,
        patient_id: UUID,
        *,
        first: int | None,
        after: str | None,
        start: datetime | None,
        end: datetime | None,
        include_deleted: bool,
        now: datetime,
        known: Patient | None = None,
        fields: frozenset[str] | None = None,
    ) -> Page[Any]:
        """Entries as `DiaryEntry`'s values, not instances (`select_values`). `known`: the patient as this request
        already read it (see `reachable_patient`). `fields`: the only fields the caller will read of each entry
        (`None`: all); the others are None. The page's own key is always read."""
        size = page_size(first)
        cursor = decode_cursor(after, parse_instant) if after is not None else None
        # Values, not model instances: a page is only shown (`select_values`).
        if fields is not None:
            fields |= _PAGE_KEY
        # The patient, the page and the audit event on one connection, as a request's reads (`one_connection`).
        async with one_connection(DiaryEntry._meta.db) as conn:
            patient = await reachable_patient(actor, patient_id, known=known, using_db=conn)
            page = _page_of(patient.id, cursor, start=start, end=end, include_deleted=include_deleted)
            order = '"recorded_at" DESC, "id" DESC'
            rows = await select_values(DiaryEntry, page, order_by=order, limit=size + 1, fields=fields, using_db=conn)
            await audit.record(actor, "diary.read", [patient.id], now=now, using_db=conn)
        return make_page(rows, size, lambda e: (e.recorded_at, e.id))

    async def _writer(self, actor: Actor) -> Patient:
        """Checked again in each write's transaction, under the patient's lock (`lock_patient`): an erasure may
        commit between this check and the write."""
        return require_writable(await reachable_patient(actor, require_patient(actor)))

    async def _own_entry(self, patient: Patient, entry_id: UUID, conn: Any) -> DiaryEntry:
        entry = await DiaryEntry.filter(id=entry_id, patient_id=patient.id).select_for_update().using_db(conn).first()
        if entry is None:
            raise NotFound("diary entry", field="id")
        return entry

    def _window(self, patient: Patient, now: datetime) -> Window:
        opened = patient.activated_at or patient.created_at
        return Window(earliest=opened - self.policy.backfill, latest=now + self.policy.clock_skew)


def _page_of(
    patient_id: UUID,
    cursor: tuple[datetime | str, UUID] | None,
    *,
    start: datetime | None,
    end: datetime | None,
    include_deleted: bool,
) -> Where:
    """Written out (api/domain/sql.py): every diary screen runs it. Bounds go to the database in UTC: SQLite compares
    instants as text, so "-05:00" would sort wrongly."""
    page = Where('"patient_id" = {}', patient_id)
    if start is not None:
        page.add('"recorded_at" >= {}', require_aware(start, "from"))
    if end is not None:
        page.add('"recorded_at" < {}', require_aware(end, "to"))
    if not include_deleted:
        page.add('"deleted_at" IS NULL')
    if cursor is not None:
        key, row_id = cursor
        page.add('("recorded_at" < {} OR ("recorded_at" = {} AND "id" < {}))', key, key, row_id)
    return page


def _resent(stored: DiaryEntry, digest: str) -> SyncOutcome:
    if stored.client_hash == digest:
        return SyncOutcome(stored.client_id, SyncStatus.UNCHANGED, entry=stored)
    return SyncOutcome(
        stored.client_id,
        SyncStatus.CONFLICT,
        error=Conflict("an entry with this clientId exists with different content", field="client_id"),
    )


def _content_of(entry: DiaryEntry) -> dict[str, Any]:
    """The stored entry as build_content's input, in the zone it was recorded in."""
    zone = timezone(timedelta(minutes=entry.utc_offset_minutes))
    values = {name: getattr(entry, name) for name in (*MEASURE_FIELDS, "prompt_id")}
    return {**values, "recorded_at": entry.recorded_at.astimezone(zone)}


async def _keep_revision(entry: DiaryEntry, reason: str, actor: Actor, now: datetime, conn: Any) -> None:
    snapshot = Content({**_content_of(entry), "utc_offset_minutes": entry.utc_offset_minutes})
    await DiaryEntryRevision.create(
        entry_id=entry.id,
        version=entry.version,
        snapshot=snapshot.as_json(),
        reason=reason,
        changed_by_id=actor.account_id,
        changed_at=now,
        using_db=conn,
    )
