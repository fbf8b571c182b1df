"""The API benchmark's cases: what each one sends to Interlude and to the floor, and the SQL the floor runs for it.

Interlude gets GraphQL over HTTP with a fixed document and variables, as the apps send them. The floor gets a JSON
body with the same parameters at a path of its own, and answers with the same JSON shape. Reads pick a random
patient for each request (a seeded generator); each write sends a payload of its own (a new clientId, random
values, a note with a counter).

Only the standard library is imported here: the load generator (bench/load.py) builds its requests from this
module, and the floor app (bench/floor_app.py) reads its SQL from it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import count
from typing import Any
from uuid import uuid4

ENTRY = "id clientId recordedAt createdAt painNow painAverage sleepHours mood note"
PAGE = f"edges {{ cursor node {{ {ENTRY} }} }} pageInfo {{ hasNextPage endCursor }}"

WRITE_DOCUMENT = f"mutation LogEntry($input: DiaryEntryInput!) {{ logDiaryEntry(input: $input) {{ {ENTRY} }} }}"
DIARY_DOCUMENT = f"query MyDiary($first: Int!) {{ myDiary(first: $first) {{ {PAGE} }} }}"
PATIENT_DIARY_DOCUMENT = (
    f"query PatientDiary($id: ID!, $first: Int!) {{ patient(id: $id) {{ id displayName diary(first: $first) "
    f"{{ {PAGE} }} }} }}"
)
SERIES_DOCUMENT = (
    "query PainSeries($id: ID!, $from: Date!, $to: Date!) { patient(id: $id) { "
    "series(metric: PAIN_AVERAGE, from: $from, to: $to) { dates values counts } } }"
)
PATIENTS_DOCUMENT = (
    "query PatientList($first: Int!) { patients(first: $first) { edges { cursor node { id displayName "
    "lastEntry { id recordedAt painNow painAverage } overview { lastEntryAt painMean7Days painEntries7Days "
    "adherence { answered expired rate } openAlerts } } } pageInfo { hasNextPage endCursor } } }"
)

DIARY_PAGE = 30
PATIENT_DIARY_PAGE = 100
SERIES_DAYS = 365
PATIENTS_PAGE = 50


# --- The floor's SQL, case by case: what Interlude sends for the same operation, as few columns as it needs. -----
# Align these with Interlude's statements (the runner prints Interlude's per case) when either side changes.
# BEGIN and COMMIT are not counted on either side: Tortoise does not log them.


class WriteSql:
    """logDiaryEntry, in one transaction: the patient's row, locked against a concurrent erasure; the insert, which
    stores nothing if the clientId is stored already (a resend, judged against the stored entry); what the alert
    rules read (the clinic's thresholds and the latest completed infusion)."""

    LOCK = (
        "SELECT id, clinic_id, status, activated_at, created_at FROM patient WHERE id = $1 AND clinic_id = $2 "
        "FOR NO KEY UPDATE"
    )
    INSERT = (
        "INSERT INTO diary_entry (id, clinic_id, patient_id, client_id, client_hash, recorded_at, utc_offset_minutes, "
        "pain_now, pain_worst, pain_average, pain_locations, sleep_hours, sleep_quality, mood, side_effects, "
        "rescue_medication, note, prompt_id, version, deleted_at, created_at, updated_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, '[]', $11, $12, $13, '[]', $14, $15, NULL, 1, NULL, $16, $16)"
        " ON CONFLICT (patient_id, client_id) DO NOTHING RETURNING id"
    )
    EXISTING = "SELECT id, client_hash FROM diary_entry WHERE patient_id = $1 AND client_id = $2"
    ALERT_SETTINGS = "SELECT thresholds, version FROM clinic_alert_settings WHERE clinic_id = $1"
    LATEST_SESSION = (
        "SELECT id, starts_at, ended_at, planned_duration_minutes FROM infusion_session "
        "WHERE patient_id = $1 AND status = 'COMPLETED' ORDER BY starts_at DESC LIMIT 1"
    )


class DiarySql:
    """myDiary(first: 30) and the clinician's patient(id) { diary(first: 100) }: the patient, then the page plus one
    row (is there a next page?), newest first, entries in error left out (DiaryService.entries)."""

    PATIENT = "SELECT id, display_name, status FROM patient WHERE id = $1 AND clinic_id = $2"
    PAGE = (
        "SELECT id, client_id, recorded_at, utc_offset_minutes, created_at, pain_now, pain_average, sleep_hours, mood, "
        "note FROM diary_entry WHERE patient_id = $1 AND deleted_at IS NULL "
        "ORDER BY recorded_at DESC, id DESC LIMIT $2"
    )


class AuditSql:
    """Every staff read of a patient's data leaves one event, naming its patients (api/domain/audit)."""

    EVENT = (
        "INSERT INTO audit_event (id, clinic_id, actor_id, actor_role, action, patient_id, object_id, operation, "
        "request_id, ip, created_at) VALUES ($1, $2, $3, 'CLINICIAN', $4, $5, NULL, $6, $7, $8, $9)"
    )
    SUBJECTS = (
        "INSERT INTO audit_subject (id, event_id, patient_id) "
        "SELECT s.id, $1, s.patient_id FROM unnest($2::uuid[], $3::uuid[]) AS s(id, patient_id)"
    )


class SeriesSql:
    """patient(id) { series(metric: PAIN_AVERAGE, from, to) }: the columns api/domain/outcome/service.py reads,
    between a day before the first local day and two days after the last (UTC offsets span −12 h to +14 h)."""

    ENTRIES = (
        "SELECT recorded_at, utc_offset_minutes, pain_average FROM diary_entry "
        "WHERE patient_id = $1 AND deleted_at IS NULL AND recorded_at >= $2 AND recorded_at < $3"
    )


class PatientsSql:
    """patients(first: 50) with each patient's facts: the page plus one row by name, one audit event naming the
    page, ONE statement for every patient's facts (correlated scalar subqueries), and the last entries by id.
    Provisional: align FACTS with api/domain/patient/overview.py once it lands."""

    PAGE = (
        "SELECT id, display_name, search_name FROM patient WHERE clinic_id = $1 AND status <> 'ERASED' "
        "ORDER BY search_name, id LIMIT $2"
    )
    FACTS = """
        SELECT p.id,
            (SELECT e.id FROM diary_entry e WHERE e.patient_id = p.id AND e.deleted_at IS NULL
             ORDER BY e.recorded_at DESC, e.id DESC LIMIT 1) AS last_entry_id,
            (SELECT max(e.recorded_at) FROM diary_entry e
             WHERE e.patient_id = p.id AND e.deleted_at IS NULL) AS last_entry_at,
            (SELECT avg(e.pain_average) FROM diary_entry e WHERE e.patient_id = p.id AND e.deleted_at IS NULL
             AND e.recorded_at >= $2 AND e.recorded_at < $3) AS pain_mean,
            (SELECT count(e.pain_average) FROM diary_entry e WHERE e.patient_id = p.id AND e.deleted_at IS NULL
             AND e.recorded_at >= $2 AND e.recorded_at < $3) AS pain_entries,
            (SELECT count(*) FROM prompt q WHERE q.patient_id = p.id AND q.status = 'ANSWERED') AS answered,
            (SELECT count(*) FROM prompt q WHERE q.patient_id = p.id AND q.status = 'EXPIRED') AS expired,
            (SELECT count(*) FROM alert a WHERE a.patient_id = p.id
             AND a.status IN ('OPEN', 'ACKNOWLEDGED')) AS open_alerts
        FROM patient p WHERE p.id = ANY($1::uuid[])
    """
    LAST_ENTRIES = (
        "SELECT id, recorded_at, utc_offset_minutes, pain_now, pain_average FROM diary_entry WHERE id = ANY($1::uuid[])"
    )


# --- What the two apps are sent. --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientRef:
    id: str
    token: str
    # The patient's UTC offset now: writes are dated in their own zone, as a phone dates them.
    offset_minutes: int


@dataclass(frozen=True)
class Fixture:
    """Everything the requests need: ids and access tokens. Sent to the load generator on its stdin, never on
    its command line (tokens would show in `ps`)."""

    clinic_id: str
    clinician_id: str
    clinician_token: str
    patients: tuple[PatientRef, ...]
    series_from: str
    series_to: str

    def to_json(self) -> dict[str, Any]:
        return {
            "clinic_id": self.clinic_id,
            "clinician_id": self.clinician_id,
            "clinician_token": self.clinician_token,
            "patients": [[p.id, p.token, p.offset_minutes] for p in self.patients],
            "series_from": self.series_from,
            "series_to": self.series_to,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fixture:
        return cls(
            clinic_id=data["clinic_id"],
            clinician_id=data["clinician_id"],
            clinician_token=data["clinician_token"],
            patients=tuple(PatientRef(i, t, o) for i, t, o in data["patients"]),
            series_from=data["series_from"],
            series_to=data["series_to"],
        )


@dataclass(frozen=True)
class Request:
    path: str
    token: str
    body: bytes


@dataclass(frozen=True)
class Requests:
    """Reads: one prepared request per patient (`variants`), one picked at random for each send. Writes: `make`
    builds a new one for each send."""

    variants: tuple[Request, ...] = ()
    make: Callable[[], Request] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    document: str
    variables: Callable[[Fixture, PatientRef], dict[str, Any]]
    interlude: Callable[[Fixture, random.Random], Requests]
    floor: Callable[[Fixture, random.Random], Requests]
    # The number of items in a response's `data` (edges, dates, the entry written): both apps must agree.
    items: Callable[[Mapping[str, Any]], int]
    writes: bool = False
    counted_variants: Sequence[tuple[str, int]] = field(default_factory=tuple)


GRAPHQL = "/graphql"


def _body(value: Mapping[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _graphql(document: str, variables: Mapping[str, Any]) -> bytes:
    return _body({"query": document, "variables": variables})


# write --------------------------------------------------------------------------------------------------------


def _entry_input(patient: PatientRef, rng: random.Random, n: int) -> dict[str, Any]:
    zone = timezone(timedelta(minutes=patient.offset_minutes))
    recorded = datetime.now(zone) - timedelta(seconds=rng.randint(60, 3600))
    average = rng.randint(1, 8)
    return {
        "clientId": str(uuid4()),  # from the OS, not the seeded generator: never the same twice across runs
        "recordedAt": recorded.isoformat(timespec="seconds"),
        "painNow": min(10, average + rng.randint(-1, 2)),
        "painAverage": average,
        "sleepHours": rng.randint(16, 36) / 4,
        "mood": rng.randint(1, 9),
        "note": f"bench write {n} {rng.getrandbits(32):08x}",
    }


def _writes(path: str, body: Callable[[Fixture, PatientRef, dict[str, Any]], bytes]) -> Callable[..., Requests]:
    def requests(fixture: Fixture, rng: random.Random) -> Requests:
        counter = count(1)
        patients = fixture.patients

        def make() -> Request:
            patient = patients[rng.randrange(len(patients))]
            values = _entry_input(patient, rng, next(counter))
            return Request(path, patient.token, body(fixture, patient, values))

        return Requests(make=make)

    return requests


def _write_items(data: Mapping[str, Any]) -> int:
    return 1 if (data.get("logDiaryEntry") or {}).get("id") else 0


WRITE = Case(
    name="write",
    description="logDiaryEntry as the patient, a unique payload each",
    document=WRITE_DOCUMENT,
    variables=lambda _, p: {"input": _entry_input(p, random.Random(), 0)},
    interlude=_writes(GRAPHQL, lambda _, __, values: _graphql(WRITE_DOCUMENT, {"input": values})),
    floor=_writes("/write", lambda f, p, values: _body({"clinicId": f.clinic_id, "patientId": p.id, "input": values})),
    items=_write_items,
    writes=True,
)


# reads --------------------------------------------------------------------------------------------------------


def _per_patient(
    path: str, token: Callable[[Fixture, PatientRef], str], body: Callable[[Fixture, PatientRef], bytes]
) -> Callable[[Fixture, random.Random], Requests]:
    def requests(fixture: Fixture, _: random.Random) -> Requests:
        return Requests(variants=tuple(Request(path, token(fixture, p), body(fixture, p)) for p in fixture.patients))

    return requests


def _as_patient(_: Fixture, patient: PatientRef) -> str:
    return patient.token


def _as_clinician(fixture: Fixture, _: PatientRef) -> str:
    return fixture.clinician_token


def _staff_body(fixture: Fixture, patient: PatientRef, **extra: Any) -> bytes:
    return _body({"clinicId": fixture.clinic_id, "actorId": fixture.clinician_id, "patientId": patient.id, **extra})


def _diary_variables(_: Fixture, __: PatientRef, first: int = DIARY_PAGE) -> dict[str, Any]:
    return {"first": first}


def _patient_diary_variables(_: Fixture, patient: PatientRef, first: int = PATIENT_DIARY_PAGE) -> dict[str, Any]:
    return {"id": patient.id, "first": first}


def _series_variables(fixture: Fixture, patient: PatientRef) -> dict[str, Any]:
    return {"id": patient.id, "from": fixture.series_from, "to": fixture.series_to}


def _patients_variables(_: Fixture, __: PatientRef, first: int = PATIENTS_PAGE) -> dict[str, Any]:
    return {"first": first}


def _dig(data: Mapping[str, Any], *path: str) -> Any:
    value: Any = data
    for key in path:
        value = (value or {}).get(key)
    return value


DIARY30 = Case(
    name="diary30",
    description=f"myDiary(first: {DIARY_PAGE}) as the patient",
    document=DIARY_DOCUMENT,
    variables=_diary_variables,
    interlude=_per_patient(GRAPHQL, _as_patient, lambda f, p: _graphql(DIARY_DOCUMENT, _diary_variables(f, p))),
    floor=_per_patient(
        "/diary", _as_patient, lambda f, p: _body({"clinicId": f.clinic_id, "patientId": p.id, "first": DIARY_PAGE})
    ),
    items=lambda d: len(_dig(d, "myDiary", "edges") or []),
    counted_variants=(("first", 10), ("first", 100)),
)

PATIENT100 = Case(
    name="patient100",
    description=f"patient(id) {{ diary(first: {PATIENT_DIARY_PAGE}) }} as the clinician",
    document=PATIENT_DIARY_DOCUMENT,
    variables=_patient_diary_variables,
    interlude=_per_patient(
        GRAPHQL, _as_clinician, lambda f, p: _graphql(PATIENT_DIARY_DOCUMENT, _patient_diary_variables(f, p))
    ),
    floor=_per_patient("/patient-diary", _as_clinician, lambda f, p: _staff_body(f, p, first=PATIENT_DIARY_PAGE)),
    items=lambda d: len(_dig(d, "patient", "diary", "edges") or []),
)

SERIES365 = Case(
    name="series365",
    description=f"patient(id) {{ series(PAIN_AVERAGE) }} over {SERIES_DAYS} days as the clinician",
    document=SERIES_DOCUMENT,
    variables=_series_variables,
    interlude=_per_patient(GRAPHQL, _as_clinician, lambda f, p: _graphql(SERIES_DOCUMENT, _series_variables(f, p))),
    floor=_per_patient(
        "/series", _as_clinician, lambda f, p: _staff_body(f, p, **{"from": f.series_from, "to": f.series_to})
    ),
    items=lambda d: len(_dig(d, "patient", "series", "dates") or []),
)


def _patients_list(path: str, body: Callable[[Fixture], bytes]) -> Callable[[Fixture, random.Random], Requests]:
    def requests(fixture: Fixture, _: random.Random) -> Requests:
        return Requests(variants=(Request(path, fixture.clinician_token, body(fixture)),))

    return requests


PATIENTS50 = Case(
    name="patients50",
    description=f"patients(first: {PATIENTS_PAGE}) with last entry and overview, as the clinician",
    document=PATIENTS_DOCUMENT,
    variables=_patients_variables,
    interlude=_patients_list(GRAPHQL, lambda _: _graphql(PATIENTS_DOCUMENT, {"first": PATIENTS_PAGE})),
    floor=_patients_list(
        "/patients", lambda f: _body({"clinicId": f.clinic_id, "actorId": f.clinician_id, "first": PATIENTS_PAGE})
    ),
    items=lambda d: len(_dig(d, "patients", "edges") or []),
    counted_variants=(("first", 10), ("first", 50)),
)

CASES: dict[str, Case] = {c.name: c for c in (WRITE, DIARY30, PATIENT100, SERIES365, PATIENTS50)}
APPS = ("interlude", "floor")


def requests_for(case: str, app: str, fixture: Fixture, rng: random.Random) -> Requests:
    chosen = CASES[case]
    return chosen.interlude(fixture, rng) if app == "interlude" else chosen.floor(fixture, rng)
