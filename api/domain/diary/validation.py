"""Turning what a phone sent into the content of a diary entry, or a refusal naming the field."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from api.domain.clock import require_aware
from api.domain.diary.vocabulary import BodyRegion, SideEffect
from api.domain.errors import BadInput, NotFound
from api.domain.text import storable

MAX_NOTE = 2000
SCORE_FIELDS = ("pain_now", "pain_worst", "pain_average", "sleep_quality", "mood")
MEASURE_FIELDS = (*SCORE_FIELDS, "pain_locations", "sleep_hours", "side_effects", "rescue_medication", "note")
PATCHABLE = frozenset({"recorded_at", *MEASURE_FIELDS})
# The field named when the entry as a whole is refused (the `input` argument of logDiaryEntry).
WHOLE_ENTRY = "input"


@dataclass(frozen=True)
class SideEffectReport:
    code: SideEffect
    severity: int


@dataclass(frozen=True)
class DiaryInput:
    client_id: UUID
    recorded_at: datetime
    pain_now: int | None = None
    pain_worst: int | None = None
    pain_average: int | None = None
    pain_locations: list[BodyRegion] | None = None
    sleep_hours: float | None = None
    sleep_quality: int | None = None
    mood: int | None = None
    side_effects: list[SideEffectReport] | None = None
    rescue_medication: bool | None = None
    note: str | None = None
    prompt_id: str | None = None

    def values(self) -> dict[str, Any]:
        """What `build_content` reads: the instant, the measures (MEASURE_FIELDS) and the prompt."""
        return {
            "recorded_at": self.recorded_at,
            "pain_now": self.pain_now,
            "pain_worst": self.pain_worst,
            "pain_average": self.pain_average,
            "sleep_quality": self.sleep_quality,
            "mood": self.mood,
            "pain_locations": self.pain_locations,
            "sleep_hours": self.sleep_hours,
            "side_effects": self.side_effects,
            "rescue_medication": self.rescue_medication,
            "note": self.note,
            "prompt_id": self.prompt_id,
        }


@dataclass(frozen=True)
class Window:
    """The instants an entry may be dated at: not in the future, not long before the account existed."""

    earliest: datetime
    latest: datetime


@dataclass
class Content:
    values: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {k: _canonical(v) for k, v in self.values.items()}

    def digest(self) -> str:
        return hashlib.sha256(_CANONICAL_JSON.encode(self.as_json()).encode()).hexdigest()


# What `json.dumps(…, sort_keys=True)` writes, the encoder made once: `dumps` makes one for every call given options.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True)


def build_content(values: Mapping[str, Any], window: Window) -> Content:
    out: dict[str, Any] = {}
    recorded_at = values.get("recorded_at")
    if recorded_at is None:
        raise BadInput("recorded_at", "is required")
    utc = require_aware(recorded_at, "recorded_at")
    if utc > window.latest:
        raise BadInput("recorded_at", "is in the future")
    if utc < window.earliest:
        raise BadInput("recorded_at", "is before the diary could have been kept")
    out["recorded_at"] = utc
    offset = recorded_at.utcoffset() or timedelta(0)
    out["utc_offset_minutes"] = int(offset.total_seconds() // 60)
    for name in SCORE_FIELDS:
        out[name] = _score(values.get(name), name)
    out["pain_locations"] = _locations(values.get("pain_locations"))
    out["sleep_hours"] = _sleep_hours(values.get("sleep_hours"))
    out["side_effects"] = _side_effects(values.get("side_effects"))
    out["rescue_medication"] = values.get("rescue_medication")
    out["note"] = _note(values.get("note"))
    out["prompt_id"] = _prompt_id(values.get("prompt_id"))
    if all(_is_empty(out[name]) for name in MEASURE_FIELDS):
        raise BadInput(WHOLE_ENTRY, "an entry must report at least one measure or a note")
    return Content(out)


def _is_empty(value: object) -> bool:
    # 0 and False are answers; a blank note is not.
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def _score(value: int | None, name: str) -> int | None:
    if value is not None and not 0 <= value <= 10:
        raise BadInput(name, "must be between 0 and 10")
    return value


def _locations(value: list[BodyRegion] | list[str] | None) -> list[str]:
    try:
        names = [BodyRegion(v).value for v in value or []]
    except ValueError as exc:
        raise BadInput("pain_locations", "names an unknown body region") from exc
    if len(set(names)) != len(names):
        raise BadInput("pain_locations", "lists a region twice")
    return names


def _sleep_hours(value: float | Decimal | None) -> Decimal | None:
    if value is None:
        return None
    try:
        # repr() is the shortest string that round-trips: 7.6 stays 7.6, never 7.5999…
        hours = value if isinstance(value, Decimal) else Decimal(repr(value))
    except InvalidOperation as exc:
        raise BadInput("sleep_hours", "is not a number") from exc
    if not hours.is_finite() or not 0 <= hours <= 24:
        raise BadInput("sleep_hours", "must be between 0 and 24")
    if hours != hours.quantize(Decimal("0.01")):
        raise BadInput("sleep_hours", "may have at most two decimal places")
    return hours.quantize(Decimal("0.01"))


def _side_effects(value: Sequence[SideEffectReport | Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value or []):
        report = item if isinstance(item, SideEffectReport) else SideEffectReport(item["code"], item["severity"])
        try:
            code = SideEffect(report.code).value
        except ValueError as exc:
            raise BadInput(f"side_effects[{i}].code", "is not a known side effect") from exc
        if not 0 <= report.severity <= 3:
            raise BadInput(f"side_effects[{i}].severity", "must be between 0 and 3")
        out.append({"code": code, "severity": report.severity})
    codes = [e["code"] for e in out]
    if len(set(codes)) != len(codes):
        raise BadInput("side_effects", "lists an effect twice")
    return out


def _note(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_NOTE:
        raise BadInput("note", f"must be at most {MAX_NOTE} characters")
    # PostgreSQL text cannot hold NUL and no backend can encode a lone surrogate: refuse them here rather than
    # fail the insert (which would surface as an internal error and stop the rest of a sync batch).
    if not storable(value):
        raise BadInput("note", "contains characters that cannot be stored")
    return value


def _prompt_id(value: str | UUID | None) -> UUID | None:
    if value is None or isinstance(value, UUID):
        return value
    try:
        return UUID(value)
    except ValueError as exc:
        raise NotFound("prompt", field="prompt_id") from exc


# Values `_canonical` gives back as they are, by exact type: most of an entry's.
_AS_IS = frozenset({int, str, bool, list})


def _canonical(value: Any) -> Any:
    if value is None or type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    return value
