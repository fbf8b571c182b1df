"""Diary entries as CSV rows for spreadsheets.

Deleted entries are left out: a spreadsheet has no status column anyone filters on, so a withdrawn report would be
summed with the rest (the FHIR export keeps them, marked entered-in-error). Free text that a spreadsheet would run as
a formula is neutralised (OWASP "CSV injection"): a leading = + - @ tab or carriage return gets a `'` in front.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import timedelta, timezone

from api.domain.diary.models import DiaryEntry

HEADER = (
    "entry_id",
    "patient_id",
    "patient",
    "recorded_at",
    "pain_now",
    "pain_worst",
    "pain_average",
    "pain_locations",
    "sleep_hours",
    "sleep_quality",
    "mood",
    "side_effects",
    "rescue_medication",
    "note",
    "created_at",
    "updated_at",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def entry_row(entry: DiaryEntry, patient_name: str) -> list[str]:
    zone = timezone(timedelta(minutes=entry.utc_offset_minutes))
    effects = ";".join(f"{e['code']}:{e['severity']}" for e in entry.side_effects)
    rescue = "" if entry.rescue_medication is None else str(entry.rescue_medication).lower()
    return [
        str(entry.id),
        str(entry.patient_id),
        neutralise(patient_name),
        entry.recorded_at.astimezone(zone).isoformat(),
        _cell(entry.pain_now),
        _cell(entry.pain_worst),
        _cell(entry.pain_average),
        ";".join(entry.pain_locations),
        _cell(entry.sleep_hours),
        _cell(entry.sleep_quality),
        _cell(entry.mood),
        effects,
        rescue,
        neutralise(entry.note or ""),
        entry.created_at.isoformat(),
        entry.updated_at.isoformat(),
    ]


def to_lines(rows: Sequence[Sequence[str]]) -> str:
    """Rows as CSV text (RFC 4180: CRLF line ends, fields with quotes, commas or line breaks quoted)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


def _cell(value: object) -> str:
    return "" if value is None else str(value)
