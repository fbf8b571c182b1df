"""Validators that are not ours (HL7's R4 JSON schema, SMART fhirclient's R4 models, the fhir.resources R4B models)
and a rich patient record."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirelementfactory import FHIRElementFactory
from jsonschema import Draft6Validator

from api.domain.account.models import Clinic
from api.domain.actor import Role
from api.domain.alert.models import Alert, Severity
from api.domain.diary.models import DiaryEntry
from api.domain.diary.validation import SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.treatment.models import InfusionSession, SessionStatus
from api.domain.treatment.service import SessionChange
from tests.factories import Factory, PatientUser, Staff

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "fhir.schema.json.gz"
EST = timezone(timedelta(hours=-5))


@cache
def _definitions() -> dict[str, Any]:
    with gzip.open(SCHEMA_FILE, "rt", encoding="utf-8") as f:
        schema: dict[str, Any] = json.load(f)
    definitions: dict[str, Any] = schema["definitions"]
    return definitions


@cache
def _schema_validator(resource_type: str) -> Draft6Validator:
    # The resource's own definition: the top-level oneOf over 146 types reports any failure as "not valid under any".
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": _definitions()})


def schema_errors(resource: dict[str, Any]) -> list[str]:
    """What HL7's FHIR R4 JSON schema says is wrong with the resource (empty when valid)."""
    validator = _schema_validator(resource["resourceType"])
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(resource)]


def validate_r4_model(resource: dict[str, Any]) -> None:
    """Parses as fhirclient's R4 (4.0.1) model of its type, which refuses unknown keys, wrong types and missing
    required elements, down into the resources a Bundle holds; raises FHIRValidationError otherwise."""
    model = FHIRElementFactory.instantiate(resource["resourceType"], resource)
    # A type R4 does not have comes back as a bare Element (which then refuses every key but `id`).
    assert type(model).__name__ == resource["resourceType"], resource["resourceType"]


def validate(resource: dict[str, Any]) -> None:
    """Valid by the R4 JSON schema, the fhirclient R4 model and the fhir.resources R4B model of its type; raises
    otherwise."""
    errors = schema_errors(resource)
    assert not errors, (resource["resourceType"], errors)
    validate_r4_model(resource)
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@dataclass
class Record:
    clinic: Clinic
    clinician: Staff
    admin: Staff
    alice: PatientUser
    full: DiaryEntry
    deleted: DiaryEntry
    edited: DiaryEntry
    phq9: QuestionnaireResponse
    gad7: QuestionnaireResponse
    pgic: QuestionnaireResponse
    completed: InfusionSession
    scheduled: InfusionSession
    cancelled: InfusionSession


async def rich_record(factory: Factory, now: datetime) -> Record:
    """One patient with every kind of record an export maps."""
    clinic = await factory.clinic()
    clinician = await factory.staff(clinic)
    admin = await factory.staff(clinic, Role.ADMIN)
    alice = await factory.patient(clinic, name="Alice Example")
    full = await factory.entry(
        alice,
        recorded_at=datetime(2026, 11, 26, 5, 0, tzinfo=EST),
        pain_now=4,
        pain_worst=7,
        pain_average=5,
        pain_locations=["LOWER_BACK", "LEG_LEFT"],
        sleep_hours=7.5,
        sleep_quality=6,
        mood=8,
        side_effects=[SideEffectReport(SideEffect.NAUSEA, 1), SideEffectReport(SideEffect.HALLUCINATIONS, 2)],
        rescue_medication=False,
        note="Better after the walk.",
    )
    deleted = await factory.entry(alice, recorded_at=now - timedelta(days=2), pain_now=9)
    deleted = await factory.services.diary.delete(alice.actor, deleted.id, now=now)
    edited = await factory.entry(alice, recorded_at=now - timedelta(days=1), mood=3)
    edited = await factory.services.diary.update(alice.actor, edited.id, {"mood": 4}, expected_version=None, now=now)
    phq9 = await response(alice, "phq9", {f"phq9_{n}": v for n, v in enumerate([1, 2, 0, 3, 1, 0, 2, 1, 1], 1)}, now)
    gad7 = await response(alice, "gad7", {f"gad7_{n}": v for n, v in enumerate([0, 1, 1, 2, 0, 0, 1], 1)}, now)
    pgic = await response(alice, "pgic", {"pgic": 2}, now)
    treatment = factory.services.treatment
    completed = await treatment.schedule(
        clinician.actor, alice.patient.id, starts_at=now - timedelta(days=3), planned_duration_minutes=240,
        course_id=None, now=now - timedelta(days=4),
    )  # fmt: skip
    change = SessionChange(
        status=SessionStatus.COMPLETED,
        started_at=now - timedelta(days=3),
        ended_at=now - timedelta(days=3) + timedelta(hours=4),
        dose_mg=35.5,
        notes="Tolerated well.",
    )
    completed = await treatment.update(clinician.actor, completed.id, change, now=now)
    scheduled = await treatment.schedule(
        clinician.actor, alice.patient.id, starts_at=now + timedelta(days=4), planned_duration_minutes=240,
        course_id=None, now=now,
    )  # fmt: skip
    cancelled = await treatment.schedule(
        clinician.actor, alice.patient.id, starts_at=now + timedelta(days=8), planned_duration_minutes=120,
        course_id=None, now=now,
    )  # fmt: skip
    cancelled = await treatment.update(
        clinician.actor, cancelled.id, SessionChange(status=SessionStatus.CANCELLED), now=now
    )
    return Record(
        clinic, clinician, admin, alice, full, deleted, edited, phq9, gad7, pgic, completed, scheduled, cancelled
    )


# Scores and bands as the instruments define them, computed here by hand from the answers above.
SCORES = {"phq9": (11, "moderate"), "gad7": (5, "mild"), "pgic": (2, "much improved")}


async def response(who: PatientUser, instrument: str, answers: dict[str, int], now: datetime) -> QuestionnaireResponse:
    """Stored directly: these tests are about the export of a response, not about submitting one."""
    score, band = SCORES[instrument]
    return await QuestionnaireResponse.create(
        clinic_id=who.patient.clinic_id,
        patient_id=who.patient.id,
        client_id=uuid4(),
        client_hash="0" * 64,
        instrument=instrument,
        instrument_version="1",
        answers=answers,
        score=score,
        band=band,
        authored_at=now - timedelta(hours=3),
        utc_offset_minutes=-300,
        created_at=now - timedelta(hours=3),
    )


def promis_definition(clinic: UUID, **extra: object) -> dict[str, Any]:
    """A licensed short form whose raw sum (4 items coded 1-5: 4..20) converts by a table, 4 → 40.0 up by 2.25 a
    point to 20 → 76.0. Made up for the tests, as are the LOINC codes in them (valid check digits only)."""
    options = [{"code": n, "label": str(n)} for n in range(1, 6)]
    return {
        "id": "promis_pi_4a",
        "version": "1",
        "title": "PROMIS Pain Interference 4a",
        "licence": {"free": False, "note": "Used with permission.", "clinics": [str(clinic)]},
        "items": [{"id": f"pi_{n}", "text": f"Item {n}", "options": options} for n in range(1, 5)],
        "scoring": {"method": "sum", "table": {str(raw): 40.0 + (raw - 4) * 2.25 for raw in range(4, 21)}},
        "bands": [[0, "within normal limits"], [55, "mild"], [60, "moderate"], [70, "severe"]],
        **extra,
    }


def bulk_entries(who: PatientUser, count: int, now: datetime) -> list[DiaryEntry]:
    """`count` two-measure entries for bulk_create (the diary service would take minutes). Three entries share each
    instant, so batch boundaries fall inside runs of equal `recorded_at`."""
    return [
        DiaryEntry(
            clinic_id=who.patient.clinic_id,
            patient_id=who.patient.id,
            client_id=uuid4(),
            client_hash="0" * 64,
            recorded_at=now - timedelta(minutes=n // 3 + 1),
            utc_offset_minutes=0,
            pain_now=n % 11,
            sleep_hours=Decimal("7.25"),
            created_at=now,
            updated_at=now,
        )
        for n in range(count)
    ]


# The timestamp a prompt in each status has, besides `sent_at` (every status past SCHEDULED).
_REACHED = {
    PromptStatus.DELIVERED: ("delivered_at",),
    PromptStatus.OPENED: ("delivered_at", "opened_at"),
    PromptStatus.ANSWERED: ("delivered_at", "opened_at", "answered_at"),
    PromptStatus.EXPIRED: ("expired_at",),
    PromptStatus.CANCELLED: ("cancelled_at",),
}


async def prompt(
    who: PatientUser, status: PromptStatus, due_at: datetime, instrument: str = "daily_diary", **overrides: Any
) -> Prompt:
    """A check-in in `status`, due at `due_at` and open for six hours, with the timestamps that status implies (one
    hour apart from the due time on) unless overridden."""
    steps = ("sent_at", *_REACHED.get(status, ())) if status is not PromptStatus.SCHEDULED else ()
    values = {step: due_at + timedelta(hours=n) for n, step in enumerate(steps)} | overrides
    return await Prompt.create(
        clinic_id=who.patient.clinic_id, patient_id=who.patient.id, plan_id=uuid4(), rule_id=f"{instrument}-rule",
        anchor=f"date:{due_at.date().isoformat()}:{status.value}", instrument=instrument, due_at=due_at,
        deliver_at=due_at, expires_at=due_at + timedelta(hours=6), status=status,
        created_at=due_at - timedelta(days=1), updated_at=due_at + timedelta(hours=len(steps)),
        **values,
    )  # fmt: skip


async def alert(who: PatientUser, rule_id: str, raised_at: datetime) -> Alert:
    """An open alert of `rule_id` on the patient; the alert service acknowledges and resolves it."""
    return await Alert.create(
        clinic_id=who.patient.clinic_id, patient_id=who.patient.id, rule_id=rule_id, rule_version=1,
        severity=Severity.HIGH, episode="patient", open_key=f"export:{uuid4()}", raised_at=raised_at,
        updated_at=raised_at, details={"seen": 23},
    )  # fmt: skip
