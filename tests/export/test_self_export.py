"""A patient's own export (GDPR Art. 20): `$everything` on their own id and `/export/me`, the same Bundle with their
contact and preferences, their check-ins as Tasks and alerts as Flags, valid R4 by all three validators, audited;
nobody else's record, no clinician's alert notes, and nothing once erased."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from api.domain.actor import Actor
from api.domain.alert.models import Alert
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.diary.models import DiaryEntry
from api.domain.patient.models import Patient
from api.domain.prompt.models import Prompt, PromptStatus
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.services import Services
from tests.export.support import Record, alert, prompt, rich_record, validate
from tests.factories import PASSWORD, Factory, PatientUser

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
    # Everything of the staff's export but the dose (MedicationAdministration): 24 resources (test_fhir_bundle), and
    # a Task for each check-in her plan scheduled on registering.
    planned = await Prompt.filter(patient_id=record.alice.patient.id).count()
    assert planned > 0
    assert bundle["total"] == len(bundle["entry"]) == 24 + planned
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


@dataclass
class Workflow:
    """Alice's check-ins (one in each status, two answered) and alerts (open, acknowledged, resolved), and Bob's."""

    prompts: dict[str, Prompt]
    alerts: dict[str, Alert]
    bob: PatientUser
    bob_prompt: Prompt
    bob_alert: Alert


ACK_NOTE = "Rang her: away on holiday, no diary with her."
RESOLVE_NOTE = "Vomiting settled after ondansetron."


@pytest_asyncio.fixture
async def workflow(factory: Factory, services: Services, record: Record, now: datetime) -> Workflow:
    alice, day = record.alice, now - timedelta(days=10)
    ordinary = [s for s in PromptStatus if s not in (PromptStatus.ANSWERED, PromptStatus.EXPIRED)]
    prompts = {s.value: await prompt(alice, s, day + timedelta(hours=n)) for n, s in enumerate(ordinary)}
    prompts["EXPIRED"] = await prompt(alice, PromptStatus.EXPIRED, day, expired_at=day + timedelta(hours=6))
    prompts["diary"] = await prompt(alice, PromptStatus.ANSWERED, day - timedelta(days=1))
    prompts["phq9"] = await prompt(alice, PromptStatus.ANSWERED, day - timedelta(days=2), instrument="phq9")
    await DiaryEntry.filter(id=record.full.id).update(prompt_id=prompts["diary"].id)
    await QuestionnaireResponse.filter(id=record.phq9.id).update(prompt_id=prompts["phq9"].id)
    clinician = record.clinician.actor
    alerts = {
        "open": await alert(alice, "phq9_severe", now - timedelta(days=3)),
        "acknowledged": await alert(alice, "missed_diary", now - timedelta(days=4)),
        "resolved": await alert(alice, "severe_vomiting", now - timedelta(days=5)),
    }
    await services.alerts.acknowledge(clinician, alerts["acknowledged"].id, ACK_NOTE, now=now - timedelta(days=2))
    await services.alerts.acknowledge(clinician, alerts["resolved"].id, None, now=now - timedelta(days=4))
    await services.alerts.resolve(clinician, alerts["resolved"].id, RESOLVE_NOTE, now=now - timedelta(days=1))
    for key, value in alerts.items():
        alerts[key] = await Alert.get(id=value.id)
    bob = await factory.patient(record.clinic)
    # Answered the way the app answers it: a diary entry naming the prompt.
    bob_prompt = await prompt(bob, PromptStatus.SENT, now - timedelta(hours=1))
    await factory.entry(bob, recorded_at=now, pain_now=3, prompt_id=bob_prompt.id)
    return Workflow(prompts, alerts, bob, bob_prompt, await alert(bob, "phq9_severe", now - timedelta(days=1)))


def of_type(bundle: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        e["resource"]["id"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    }


def instant(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


async def own_download(http: httpx.AsyncClient, services: Services, who: PatientUser, now: datetime) -> dict[str, Any]:
    response = await http.get("/export/me", headers=bearer(services, who.actor, now))
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    return bundle


# PromptStatus -> (Task.status, Task.businessStatus.text)
TASK_STATUS = {
    "SCHEDULED": ("requested", "scheduled"),
    "SENT": ("requested", "sent"),
    "DELIVERED": ("requested", "delivered"),
    "OPENED": ("in-progress", "opened"),
    "EXPIRED": ("failed", "expired"),
    "CANCELLED": ("cancelled", "cancelled"),
    "diary": ("completed", "answered"),
    "phq9": ("completed", "answered"),
}


async def test_the_download_holds_every_check_in_as_a_task_in_its_status(
    http: httpx.AsyncClient, services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    bundle = await own_download(http, services, record.alice, now)

    # Valid R4 by all three validators, the Tasks and Flags too (the other tests here read the same Bundle).
    validate(bundle)
    for entry in bundle["entry"]:
        validate(entry["resource"])
    tasks = of_type(bundle, "Task")
    # Every check-in of hers: the ones her plan scheduled, and the ones here.
    assert set(tasks) == {
        str(p) for p in await Prompt.filter(patient_id=record.alice.patient.id).values_list("id", flat=True)
    }
    assert {str(p.id) for p in workflow.prompts.values()} <= set(tasks)
    assert {key: (tasks[str(p.id)]["status"], tasks[str(p.id)]["businessStatus"]["text"]) for key, p in
            workflow.prompts.items()} == TASK_STATUS  # fmt: skip
    alice = {"reference": f"Patient/{record.alice.patient.id}"}
    for task in tasks.values():
        assert (task["intent"], task["for"], task["owner"]) == ("order", alice, alice)
    diary, phq9 = tasks[str(workflow.prompts["diary"].id)], tasks[str(workflow.prompts["phq9"].id)]
    assert (diary["description"], phq9["description"]) == ("Daily diary", "Patient Health Questionnaire (PHQ-9)")
    due = workflow.prompts["diary"].due_at
    assert diary["restriction"] == {"period": {"start": instant(due), "end": instant(due + timedelta(hours=6))}}
    assert diary["executionPeriod"] == {"start": instant(due), "end": instant(due + timedelta(hours=3))}
    expired = tasks[str(workflow.prompts["EXPIRED"].id)]
    assert expired["statusReason"] == {"text": "Not answered before the check-in closed"}
    assert expired["executionPeriod"]["end"] == expired["restriction"]["period"]["end"]
    assert "executionPeriod" not in tasks[str(workflow.prompts["SCHEDULED"].id)]


async def test_an_answered_check_in_points_at_its_answer_in_the_bundle(
    http: httpx.AsyncClient, services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    bundle = await own_download(http, services, record.alice, now)

    tasks = of_type(bundle, "Task")
    outputs = {key: [o["valueReference"]["reference"] for o in tasks[str(p.id)].get("output", [])] for key, p in
               workflow.prompts.items()}  # fmt: skip
    # The diary entry's Observations (one per measure it holds), and the PHQ-9 response itself.
    entry_observations = [
        f"Observation/{r['id']}"
        for r in of_type(bundle, "Observation").values()
        if r["effectiveDateTime"] == "2026-11-26T05:00:00-05:00"
    ]
    assert len(entry_observations) == 11
    assert sorted(outputs.pop("diary")) == sorted(entry_observations)
    assert outputs.pop("phq9") == [f"QuestionnaireResponse/{record.phq9.id}"]
    assert outputs == {key: [] for key in outputs}
    in_bundle = {e["fullUrl"] for e in bundle["entry"]}
    for reference in [*entry_observations, f"QuestionnaireResponse/{record.phq9.id}"]:
        assert f"http://interlude.test/fhir/{reference}" in in_bundle


async def test_the_download_holds_the_alerts_raised_on_their_data_as_flags(
    http: httpx.AsyncClient, services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    bundle = await own_download(http, services, record.alice, now)

    flags = of_type(bundle, "Flag")
    assert set(flags) == {str(a.id) for a in workflow.alerts.values()}
    clinical = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "clinical",
                    "display": "Clinical"}]
    }  # fmt: skip
    for key, status in {"open": "active", "acknowledged": "active", "resolved": "inactive"}.items():
        stored = workflow.alerts[key]
        flag = flags[str(stored.id)]
        assert flag["status"] == status
        assert flag["category"] == [clinical]
        assert flag["subject"] == {"reference": f"Patient/{record.alice.patient.id}"}
        end = {"end": instant(stored.resolved_at)} if stored.resolved_at else {}
        assert flag["period"] == {"start": instant(stored.raised_at), **end}
    assert flags[str(workflow.alerts["resolved"].id)]["period"]["end"] == instant(now - timedelta(days=1))
    assert flags[str(workflow.alerts["open"].id)]["code"]["text"] == "PHQ-9 total score in the severe range"
    assert flags[str(workflow.alerts["resolved"].id)]["code"]["coding"][0]["code"] == "severe_vomiting"


async def test_the_clinicians_notes_and_names_on_alerts_stay_out(
    http: httpx.AsyncClient, services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    response = await http.get("/export/me", headers=bearer(services, record.alice.actor, now))

    assert response.status_code == 200
    assert ACK_NOTE not in response.text
    assert RESOLVE_NOTE not in response.text
    assert str(record.clinician.account.id) not in response.text
    assert '"seen"' not in response.text  # the rule's details are the clinic's triage


async def test_the_download_holds_no_check_in_or_alert_of_another_patient(
    http: httpx.AsyncClient, services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    alices = await own_download(http, services, record.alice, now)
    bobs = await own_download(http, services, workflow.bob, now)

    assert str(workflow.bob.patient.id) not in str(alices)
    assert str(workflow.bob_prompt.id) not in str(alices)
    assert str(workflow.bob_alert.id) not in str(alices)
    bobs_prompts = await Prompt.filter(patient_id=workflow.bob.patient.id).values_list("id", flat=True)
    assert set(of_type(bobs, "Task")) == {str(p) for p in bobs_prompts}
    assert set(of_type(bobs, "Flag")) == {str(workflow.bob_alert.id)}
    assert str(record.alice.patient.id) not in str(bobs)
    bobs_task = of_type(bobs, "Task")[str(workflow.bob_prompt.id)]
    assert (bobs_task["status"], len(bobs_task["output"])) == ("completed", 1)


async def test_the_staff_export_holds_no_tasks_or_flags(
    services: Services, record: Record, workflow: Workflow, now: datetime
) -> None:
    # The clinic reads prompts and alerts in the app; its FHIR export is the clinical record, as before.
    bundle = await services.exports.patient_everything(
        record.clinician.actor, record.alice.patient.id, base_url="http://x.test/fhir", now=now
    )
    assert not of_type(bundle, "Task")
    assert not of_type(bundle, "Flag")
