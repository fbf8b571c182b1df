"""A patient's own export (GDPR Art. 20): `$everything` on their own id and `/export/me`, the same Bundle with their
contact and preferences, valid R4 by all three validators, audited; nobody else's record, and nothing once erased."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.domain.actor import Actor
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.patient.models import Patient
from api.domain.services import Services
from tests.export.support import Record, rich_record, validate
from tests.factories import PASSWORD, Factory

PREFERENCES = "https://interlude.invalid/fhir/StructureDefinition/patient-preferences"
TIMEZONE = "http://hl7.org/fhir/StructureDefinition/timezone"


@pytest_asyncio.fixture
async def record(factory: Factory, now: datetime) -> Record:
    record = await rich_record(factory, now)
    await Patient.filter(id=record.alice.patient.id).update(diary_time="19:15", notifications_enabled=False)
    return record


def bearer(services: Services, actor: Actor, now: datetime) -> dict[str, str]:
    assert actor.account_id is not None
    token, _ = services.accounts.tokens.issue(
        account_id=actor.account_id, role=actor.role, clinic_id=actor.clinic_id, patient_id=actor.patient_id, now=now
    )
    return {"Authorization": f"Bearer {token}"}


def patient_of(bundle: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "Patient"
    return first


async def test_the_patients_own_download_is_their_whole_record_with_contact_and_preferences(
    http: httpx.AsyncClient, services: Services, record: Record, now: datetime
) -> None:
    response = await http.get("/export/me", headers=bearer(services, record.alice.actor, now))

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["content-disposition"] == 'attachment; filename="interlude-record-2026-11-26.json"'
    assert response.headers["cache-control"] == "no-store"
    bundle = response.json()
    validate(bundle)
    for entry in bundle["entry"]:
        validate(entry["resource"])
    # Everything of the staff's export but the dose (MedicationAdministration): 24 resources (test_fhir_bundle).
    assert bundle["total"] == len(bundle["entry"]) == 24
    patient = patient_of(bundle)
    assert patient["name"] == [{"text": "Alice Example"}]
    assert patient["telecom"] == [{"system": "email", "value": record.alice.email}]
    assert patient["extension"] == [
        {"url": TIMEZONE, "valueCode": "America/New_York"},
        {
            "url": PREFERENCES,
            "extension": [
                {"url": "diaryTime", "valueTime": "19:15:00"},
                {"url": "quietHoursStart", "valueTime": "21:30:00"},
                {"url": "quietHoursEnd", "valueTime": "08:00:00"},
                {"url": "notificationsEnabled", "valueBoolean": False},
            ],
        },
    ]
    assert "Tolerated well." not in response.text  # clinician notes are clinic-side


async def test_the_download_and_everything_on_their_own_id_hold_the_same_record(
    http: httpx.AsyncClient, services: Services, record: Record, now: datetime
) -> None:
    headers = bearer(services, record.alice.actor, now)
    download = (await http.get("/export/me", headers=headers)).json()
    everything = (await http.get(f"/fhir/Patient/{record.alice.patient.id}/$everything", headers=headers)).json()

    assert download["entry"] == everything["entry"]
    assert download["link"] == everything["link"]


async def test_the_staff_export_keeps_the_email_and_preferences_out(
    services: Services, record: Record, now: datetime
) -> None:
    bundle = await services.exports.patient_everything(
        record.clinician.actor, record.alice.patient.id, base_url="http://x.test/fhir", now=now
    )
    assert set(patient_of(bundle)) == {"resourceType", "id", "active", "name"}


async def test_each_self_export_is_audited_as_the_patients_own(
    http: httpx.AsyncClient, services: Services, record: Record, now: datetime
) -> None:
    await AuditEvent.all().delete()
    response = await http.get("/export/me", headers=bearer(services, record.alice.actor, now))
    assert response.status_code == 200

    [event] = await AuditEvent.all()
    assert (event.action, event.actor_id, event.actor_role, event.patient_id, event.operation) == (
        "export.fhir", record.alice.account.id, "PATIENT", record.alice.patient.id, "export.me"
    )  # fmt: skip
    assert event.request_id == response.headers["x-request-id"]
    assert await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True) == [
        record.alice.patient.id
    ]


async def test_another_patients_id_is_404_exactly_as_a_missing_one(
    http: httpx.AsyncClient, services: Services, factory: Factory, record: Record, now: datetime
) -> None:
    bob = await factory.patient(record.clinic)
    headers = bearer(services, bob.actor, now)
    theirs = await http.get(f"/fhir/Patient/{record.alice.patient.id}/$everything", headers=headers)
    missing = await http.get("/fhir/Patient/00000000-0000-0000-0000-000000000000/$everything", headers=headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()
    # Bob's own download is his, not Alice's.
    own = (await http.get("/export/me", headers=headers)).json()
    assert patient_of(own)["id"] == str(bob.patient.id)
    assert str(record.alice.patient.id) not in str(own)


REFUSED = {"anonymous": (401, "login"), "clinician": (403, "forbidden")}


@pytest.mark.parametrize("who", list(REFUSED))
async def test_the_download_is_for_a_signed_in_patient_only(
    http: httpx.AsyncClient, services: Services, record: Record, now: datetime, who: str
) -> None:
    status, issue = REFUSED[who]
    headers = {} if who == "anonymous" else bearer(services, record.clinician.actor, now)
    await AuditEvent.all().delete()

    response = await http.get("/export/me", headers=headers)

    assert response.status_code == status
    outcome = response.json()
    validate(outcome)
    assert outcome["issue"][0]["code"] == issue
    assert await AuditEvent.all().count() == 0


async def test_once_erased_the_patients_token_exports_nothing(
    http: httpx.AsyncClient, services: Services, record: Record, now: datetime
) -> None:
    headers = bearer(services, record.alice.actor, now)
    await services.erasure.erase_own(record.alice.actor, PASSWORD, now=now)

    response = await http.get("/export/me", headers=headers)

    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"
    # The clinic's staff still export the held record, under the pseudonym and without any contact.
    bundle = await services.exports.patient_everything(
        record.clinician.actor, record.alice.patient.id, base_url="http://x.test/fhir", now=now
    )
    assert patient_of(bundle)["name"] == [{"text": f"Erased patient {record.alice.patient.id.hex[:8]}"}]
    assert patient_of(bundle)["active"] is False
    assert "Alice" not in str(bundle)
    assert record.alice.email not in str(bundle)
