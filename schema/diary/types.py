"""Diary entries as the API shows and accepts them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from uuid import UUID

import strawberry

from api.domain.diary import vocabulary
from api.domain.diary.models import DiaryEntry as DiaryEntryModel
from api.domain.diary.service import SyncOutcome
from api.domain.diary.service import SyncStatus as DomainSyncStatus
from api.domain.diary.validation import WHOLE_ENTRY, DiaryInput
from api.domain.diary.validation import SideEffectReport as DomainSideEffectReport
from schema.errors import domain_extensions
from schema.ids import to_id

BodyRegion = strawberry.enum(vocabulary.BodyRegion, description="Where the pain is.")
SideEffect = strawberry.enum(vocabulary.SideEffect, description="An effect reported after an infusion.")
SyncStatus = strawberry.enum(DomainSyncStatus)


@strawberry.type
class SideEffectReport:
    code: SideEffect  # type: ignore[valid-type]
    severity: int


@strawberry.type
class DiaryEntry:
    id: strawberry.ID
    client_id: UUID
    recorded_at: datetime = strawberry.field(description="When the report applies, in the offset it was sent with.")
    created_at: datetime
    updated_at: datetime
    deleted: bool = strawberry.field(description="Entered in error: kept, but no longer counted.")
    version: int
    pain_now: int | None
    pain_worst: int | None
    pain_average: int | None
    pain_locations: list[BodyRegion]  # type: ignore[valid-type]
    sleep_hours: float | None
    sleep_quality: int | None = strawberry.field(description="0–10, 10 = best.")
    mood: int | None = strawberry.field(description="0–10, 10 = best.")
    side_effects: list[SideEffectReport]
    rescue_medication: bool | None
    note: str | None
    prompt_id: strawberry.ID | None

    @classmethod
    def from_model(cls, e: DiaryEntryModel) -> DiaryEntry:
        # Each attribute read once. An empty list is made without a comprehension: in Python 3.11 each one is a
        # function call even over nothing, twice per entry of a page that shows neither list (bench/README.md).
        locations, effects, sleep, prompt = e.pain_locations, e.side_effects, e.sleep_hours, e.prompt_id
        return cls(
            id=to_id(e.id),
            client_id=e.client_id,
            recorded_at=e.recorded_at.astimezone(_offset(e.utc_offset_minutes)),
            created_at=e.created_at,
            updated_at=e.updated_at,
            deleted=e.deleted_at is not None,
            version=e.version,
            pain_now=e.pain_now,
            pain_worst=e.pain_worst,
            pain_average=e.pain_average,
            pain_locations=[_REGIONS[v] for v in locations] if locations else [],
            sleep_hours=float(sleep) if sleep is not None else None,
            sleep_quality=e.sleep_quality,
            mood=e.mood,
            side_effects=[SideEffectReport(code=_EFFECTS[s["code"]], severity=s["severity"]) for s in effects]
            if effects
            else [],
            rescue_medication=e.rescue_medication,
            note=e.note,
            prompt_id=to_id(prompt) if prompt else None,
        )

    @staticmethod
    def reads(selected: frozenset[str] | None) -> frozenset[str] | None:
        """The stored fields that `from_model` needs for the GraphQL fields `selected` (`None`: all of them). The
        others may come unread, as None: the lists are then empty and the instants absent, but nobody sees them."""
        if selected is None:
            return None
        fields = set(_ALWAYS_READ)
        for name in selected:
            reads = _READS.get(name)
            if reads is None:  # a field added to the type but not here: read everything, as before
                return None
            fields.update(reads)
        return frozenset(fields)


# What each GraphQL field of DiaryEntry shows of the stored entry (`DiaryEntry.reads`); `recorded_at` and its offset
# are always read, as `from_model` converts the one into the other.
_ALWAYS_READ = ("id", "recorded_at", "utc_offset_minutes")
_READS: dict[str, tuple[str, ...]] = {
    "__typename": (),
    "id": (),
    "clientId": ("client_id",),
    "recordedAt": (),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
    "deleted": ("deleted_at",),
    "version": ("version",),
    "painNow": ("pain_now",),
    "painWorst": ("pain_worst",),
    "painAverage": ("pain_average",),
    "painLocations": ("pain_locations",),
    "sleepHours": ("sleep_hours",),
    "sleepQuality": ("sleep_quality",),
    "mood": ("mood",),
    "sideEffects": ("side_effects",),
    "rescueMedication": ("rescue_medication",),
    "note": ("note",),
    "promptId": ("prompt_id",),
}


# Stored codes to their members: a lookup instead of the enum's call (a Python-level `__call__` and `__new__`) for
# each code of each entry of a page. A code that is not a member fails as the call would, if with a KeyError.
_REGIONS = {m.value: m for m in vocabulary.BodyRegion}
_EFFECTS = {m.value: m for m in vocabulary.SideEffect}


@cache
def _offset(minutes: int) -> timezone:
    """The fixed offset an entry was sent with; a few dozen exist, and a page of the diary needs one per entry."""
    return timezone(timedelta(minutes=minutes))


@strawberry.input
class SideEffectInput:
    code: SideEffect  # type: ignore[valid-type]
    severity: int = strawberry.field(description="0 none, 1 mild, 2 moderate, 3 severe.")


@strawberry.input
class DiaryEntryInput:
    client_id: UUID = strawberry.field(description="Generated on the phone; the idempotency key.")
    recorded_at: datetime = strawberry.field(description="When the report applies, with offset.")
    pain_now: int | None = None
    pain_worst: int | None = None
    pain_average: int | None = None
    pain_locations: list[BodyRegion] | None = None  # type: ignore[valid-type]
    sleep_hours: float | None = None
    sleep_quality: int | None = None
    mood: int | None = None
    side_effects: list[SideEffectInput] | None = None
    rescue_medication: bool | None = None
    note: str | None = None
    prompt_id: strawberry.ID | None = None

    def to_domain(self) -> DiaryInput:
        return DiaryInput(
            client_id=self.client_id,
            recorded_at=self.recorded_at,
            pain_now=self.pain_now,
            pain_worst=self.pain_worst,
            pain_average=self.pain_average,
            pain_locations=self.pain_locations,
            sleep_hours=self.sleep_hours,
            sleep_quality=self.sleep_quality,
            mood=self.mood,
            side_effects=[DomainSideEffectReport(s.code, s.severity) for s in self.side_effects or []],
            rescue_medication=self.rescue_medication,
            note=self.note,
            prompt_id=self.prompt_id,
        )


@strawberry.input(description="Only the fields given change; an explicit null clears a field.")
class DiaryEntryPatch:
    recorded_at: datetime | None = strawberry.UNSET
    pain_now: int | None = strawberry.UNSET
    pain_worst: int | None = strawberry.UNSET
    pain_average: int | None = strawberry.UNSET
    pain_locations: list[BodyRegion] | None = strawberry.UNSET  # type: ignore[valid-type]
    sleep_hours: float | None = strawberry.UNSET
    sleep_quality: int | None = strawberry.UNSET
    mood: int | None = strawberry.UNSET
    side_effects: list[SideEffectInput] | None = strawberry.UNSET
    rescue_medication: bool | None = strawberry.UNSET
    note: str | None = strawberry.UNSET
    expected_version: int | None = strawberry.field(
        default=strawberry.UNSET, description="Refuse with CONFLICT if the entry has changed since this version."
    )

    def changes(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "expected_version" or value is strawberry.UNSET:
                continue
            if name == "side_effects" and value is not None:
                value = [DomainSideEffectReport(s.code, s.severity) for s in value]
            out[name] = value
        return out


@strawberry.type
class FieldError:
    code: str
    field: str | None
    message: str


@strawberry.type
class SyncResult:
    client_id: UUID
    status: SyncStatus  # type: ignore[valid-type]
    entry: DiaryEntry | None
    error: FieldError | None

    @classmethod
    def from_outcome(cls, outcome: SyncOutcome, index: int) -> SyncResult:
        error = None
        if outcome.error is not None:
            ext = domain_extensions(outcome.error)
            field = ext.get("field")
            # A refusal of the entry as a whole names the item itself: there is no `input` inside `entries`.
            inner = f".{field}" if field and field != WHOLE_ENTRY else ""
            error = FieldError(code=str(ext["code"]), field=f"entries[{index}]{inner}", message=outcome.error.message)
        entry = DiaryEntry.from_model(outcome.entry) if outcome.entry is not None else None
        return cls(client_id=outcome.client_id, status=outcome.status, entry=entry, error=error)
