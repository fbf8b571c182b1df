"""Shared by the diary tests (no tests here): GraphQL documents, an input builder, and a snapshot of stored rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from api.domain.diary.models import DiaryEntry, DiaryEntryRevision

ENTRY_FIELDS = """
fragment EntryFields on DiaryEntry {
  id clientId recordedAt createdAt updatedAt deleted version
  painNow painWorst painAverage painLocations sleepHours sleepQuality mood
  sideEffects { code severity } rescueMedication note promptId
}
"""

LOG = (
    """
mutation Log($input: DiaryEntryInput!) { logDiaryEntry(input: $input) { ...EntryFields } }
"""
    + ENTRY_FIELDS
)

SYNC = (
    """
mutation Sync($entries: [DiaryEntryInput!]!) {
  syncDiaryEntries(entries: $entries) {
    clientId status entry { ...EntryFields } error { code field message }
  }
}
"""
    + ENTRY_FIELDS
)

UPDATE = (
    """
mutation Update($id: ID!, $input: DiaryEntryPatch!) { updateDiaryEntry(id: $id, input: $input) { ...EntryFields } }
"""
    + ENTRY_FIELDS
)

DELETE = (
    """
mutation Delete($id: ID!) { deleteDiaryEntry(id: $id) { ...EntryFields } }
"""
    + ENTRY_FIELDS
)

_PAGE = """
  edges { cursor node { ...EntryFields } }
  pageInfo { hasNextPage endCursor }
"""

MY_DIARY = (
    """
query MyDiary($first: Int, $after: String, $from: DateTime, $to: DateTime, $includeDeleted: Boolean! = false) {
  myDiary(first: $first, after: $after, from: $from, to: $to, includeDeleted: $includeDeleted) {"""
    + _PAGE
    + "} }"
    + ENTRY_FIELDS
)

PATIENT_DIARY = (
    """
query PatientDiary($id: ID!, $first: Int, $after: String, $from: DateTime, $to: DateTime,
                   $includeDeleted: Boolean! = false) {
  patient(id: $id) {
    id
    diary(first: $first, after: $after, from: $from, to: $to, includeDeleted: $includeDeleted) {"""
    + _PAGE
    + "} } }"
    + ENTRY_FIELDS
)


def entry_input(recorded_at: datetime, **fields: Any) -> dict[str, Any]:
    """A DiaryEntryInput as a phone sends it: a fresh clientId, pain 5 unless the fields say otherwise."""
    values: dict[str, Any] = {"clientId": str(uuid4()), "recordedAt": recorded_at.isoformat(), "painNow": 5}
    values.update(fields)
    return values


def hours_before(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)


@dataclass(frozen=True)
class Stored:
    """Every diary row in the database, column by column: equal snapshots mean nothing was written."""

    entries: list[dict[str, Any]]
    revisions: list[dict[str, Any]]


async def stored() -> Stored:
    entries = await DiaryEntry.all().order_by("id").values()
    revisions = await DiaryEntryRevision.all().order_by("id").values()
    return Stored(entries=list(entries), revisions=list(revisions))
