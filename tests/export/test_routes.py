"""The export routes over HTTP: bearer auth, who may export what, response headers, content and the audit trail."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import httpx
import pytest
import pytest_asyncio

from api.app import create_app
from api.domain.actor import Actor
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.export.service import ExportService
from api.domain.patient.models import Patient, PatientStatus
from api.domain.prompt.models import Prompt
from api.domain.services import Services
from api.settings import Settings
from tests.conftest import Database
from tests.export.support import Record, rich_record, validate
from tests.factories import Factory, PatientUser
from tests.graphql import GraphQLClient

CSV_HEADER = [
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
]


@pytest_asyncio.fixture
async def record(factory: Factory, now: datetime) -> Record:
    return await rich_record(factory, now)


Auth = Callable[[Actor], dict[str, str]]


@pytest.fixture
def auth(services: Services, now: datetime) -> Auth:
    """The Authorization header of a fresh access token for the actor."""

    def bearer(actor: Actor) -> dict[str, str]:
        assert actor.account_id is not None
        token, _ = services.accounts.tokens.issue(
            account_id=actor.account_id,
            role=actor.role,
            clinic_id=actor.clinic_id,
            patient_id=actor.patient_id,
            now=now,
        )
        return {"Authorization": f"Bearer {token}"}

    return bearer


@pytest_asyncio.fixture
async def strangers(factory: Factory, record: Record) -> dict[str, Actor]:
    """Everyone who must not reach Alice's record."""
    elsewhere = await factory.clinic()
    return {
        "clinician of another clinic": (await factory.staff(elsewhere)).actor,
        "patient of another clinic": (await factory.patient(elsewhere)).actor,
        "another patient of the clinic": (await factory.patient(record.clinic)).actor,
    }


def everything_url(record: Record) -> str:
    return f"/fhir/Patient/{record.alice.patient.id}/$everything"


# --- FHIR $everything ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no token", "bad token", "not bearer"],
)
async def test_everything_without_a_valid_token_is_401_as_an_operation_outcome(
    http: httpx.AsyncClient, record: Record, headers: dict[str, str]
) -> None:
    response = await http.get(everything_url(record), headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"
    outcome = response.json()
    validate(outcome)
    assert outcome["issue"][0]["code"] == "login"


async def test_everything_for_someone_else_is_404_exactly_as_a_missing_patient(
    http: httpx.AsyncClient, auth: Auth, record: Record, strangers: dict[str, Actor]
) -> None:
    missing = await http.get(
        "/fhir/Patient/00000000-0000-0000-0000-000000000000/$everything",
        headers=auth(record.clinician.actor),
    )
    assert missing.status_code == 404
    for who, actor in strangers.items():
        response = await http.get(everything_url(record), headers=auth(actor))
        assert response.status_code == 404, who
        assert response.json() == missing.json(), who


async def test_everything_with_an_id_that_is_no_uuid_is_404_not_500(
    http: httpx.AsyncClient, auth: Auth, record: Record
) -> None:
    response = await http.get("/fhir/Patient/1;DROP/$everything", headers=auth(record.clinician.actor))
    assert response.status_code == 404
    validate(response.json())
    assert response.json()["issue"][0]["code"] == "not-found"


@pytest.mark.parametrize("who", ["alice", "clinician", "admin"])
async def test_everything_for_the_patient_and_the_clinics_staff(
    http: httpx.AsyncClient, auth: Auth, record: Record, who: str
) -> None:
    actor: Actor = getattr(record, who).actor
    response = await http.get(everything_url(record), headers=auth(actor))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fhir+json"
    assert response.headers["cache-control"] == "no-store"
    bundle = response.json()
    validate(bundle)
    assert bundle["entry"][0]["fullUrl"] == f"http://interlude.test/fhir/Patient/{record.alice.patient.id}"
    # The patient's own export leaves out the MedicationAdministration (dose is clinic-side data) and adds a Task for
    # each of her check-ins (test_self_export).
    tasks = await Prompt.filter(patient_id=record.alice.patient.id).count()
    assert bundle["total"] == (24 + tasks if who == "alice" else 25)
    event = await AuditEvent.get(action="export.fhir", actor_id=actor.account_id)
    assert (event.patient_id, event.operation, event.ip) == (record.alice.patient.id, "fhir.everything", "203.0.113.7")
    assert event.request_id == response.headers["x-request-id"]


async def everything_links(client: httpx.AsyncClient, auth: Auth, record: Record) -> set[str]:
    response = await client.get(everything_url(record), headers={**auth(record.clinician.actor), "Host": "evil.test"})
    bundle = response.json()
    assert response.status_code == 200, bundle
    return {link["url"] for link in bundle["link"]} | {e["fullUrl"] for e in bundle["entry"]}


async def test_without_a_public_base_url_links_follow_the_request_as_in_development(
    http: httpx.AsyncClient, auth: Auth, record: Record
) -> None:
    links = await everything_links(http, auth, record)
    assert len(links) == 26
    assert {link.partition("/fhir/")[0] for link in links} == {"http://evil.test"}


async def test_with_a_public_base_url_links_ignore_the_host_header(
    db: Database, settings: Settings, auth: Auth, record: Record, now: datetime
) -> None:
    configured = settings.model_copy(update={"public_base_url": "https://api.clinic.example/"})
    app = create_app(configured, manage_orm=False, clock=lambda: now)
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://interlude.test") as client:
        links = await everything_links(client, auth, record)
    patient_id = record.alice.patient.id
    assert f"https://api.clinic.example/fhir/Patient/{patient_id}/$everything" in links
    assert f"https://api.clinic.example/fhir/Patient/{patient_id}" in links
    assert len(links) == 26
    assert {link.partition("/fhir/")[0] for link in links} == {"https://api.clinic.example"}


# --- clinic NDJSON ------------------------------------------------------------------------------------------


async def test_bulk_export_without_a_token_is_401(http: httpx.AsyncClient, record: Record) -> None:
    response = await http.get("/export/clinic.ndjson")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("who", ["alice", "clinician"])
async def test_bulk_export_is_for_admins_only(http: httpx.AsyncClient, auth: Auth, record: Record, who: str) -> None:
    response = await http.get("/export/clinic.ndjson", headers=auth(getattr(record, who).actor))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"
    assert await AuditEvent.filter(action="export.bulk").count() == 0


async def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["cache-control"] == "no-store"
    assert response.text.endswith("\n")
    return [json.loads(line) for line in response.text.splitlines()]


async def test_bulk_export_streams_the_clinics_records_one_valid_resource_per_line(
    http: httpx.AsyncClient, auth: Auth, factory: Factory, record: Record
) -> None:
    bob = await factory.patient(record.clinic, name="Bob Example")
    await factory.entry(bob, pain_now=2)
    elsewhere = await factory.patient(await factory.clinic(), name="Carol Elsewhere")
    await factory.entry(elsewhere, pain_now=6)
    response = await http.get("/export/clinic.ndjson", headers=auth(record.admin.actor))
    resources = await ndjson(response)
    for resource in resources:
        validate(resource)
    patients = {r["id"]: r["name"][0]["text"] for r in resources if r["resourceType"] == "Patient"}
    assert patients == {str(record.alice.patient.id): "Alice Example", str(bob.patient.id): "Bob Example"}
    subjects = {r.get("subject", {}).get("reference") for r in resources if r["resourceType"] != "Patient"}
    assert subjects == {f"Patient/{record.alice.patient.id}", f"Patient/{bob.patient.id}", None}
    # Alice's 25-resource bundle less the Patient and the Appointments (no subject), Bob's Patient and entry.
    assert len(resources) == 25 + 2
    assert len({(r["resourceType"], r["id"]) for r in resources}) == len(resources)


AUDIT_OF = """
query Trail($patientId: ID!) {
  auditEvents(patientId: $patientId, first: 50) { edges { node { id action patientId } } }
}
"""


async def trail(gql: GraphQLClient, admin: Actor, patient: PatientUser) -> list[tuple[str, str, str | None]]:
    result = await gql(AUDIT_OF, {"patientId": str(patient.patient.id)}, actor=admin)
    return [(e["node"]["id"], e["node"]["action"], e["node"]["patientId"]) for e in result.ok()["auditEvents"]["edges"]]


@dataclass
class ClinicWide:
    admin: Actor
    patients: dict[str, PatientUser]


@pytest_asyncio.fixture
async def clinic_wide(factory: Factory, record: Record, now: datetime) -> ClinicWide:
    """Alice's clinic with Bob beside her, and three patients a clinic-wide export of it must not cover."""
    bob = await factory.patient(record.clinic, name="Bob Example")
    await factory.entry(bob, pain_now=2)
    erased = await factory.patient(record.clinic, name="Eve Erased")
    await factory.entry(erased, pain_now=3)
    await Patient.filter(id=erased.patient.id).update(status=PatientStatus.ERASED)
    # Registered after the export's `now`: not in the stream, so not in its event.
    later = await factory.patient(record.clinic, name="Frank Later", joined=now + timedelta(minutes=1))
    await factory.entry(later, pain_now=4, recorded_at=now + timedelta(minutes=2))
    elsewhere = await factory.patient(await factory.clinic(), name="Carol Elsewhere")
    await factory.entry(elsewhere, pain_now=6)
    patients = {"alice": record.alice, "bob": bob, "erased": erased, "later": later, "elsewhere": elsewhere}
    return ClinicWide(record.admin.actor, patients)


CLINIC_WIDE = {"/export/clinic.ndjson": "export.bulk", "/export/diary.csv": "export.csv"}


@pytest.mark.parametrize("url", CLINIC_WIDE)
async def test_a_clinic_wide_export_shows_in_the_trail_of_every_patient_it_covers(
    http: httpx.AsyncClient, auth: Auth, gql: GraphQLClient, clinic_wide: ClinicWide, url: str
) -> None:
    action = CLINIC_WIDE[url]
    admin, patients = clinic_wide.admin, clinic_wide.patients
    alice, bob = patients["alice"], patients["bob"]
    response = await http.get(url, headers=auth(admin))
    if action == "export.csv":
        exported = {r["patient_id"] for r in parse_csv(response)}
    else:
        exported = {r["id"] for r in await ndjson(response) if r["resourceType"] == "Patient"}
    covered = {str(alice.patient.id), str(bob.patient.id)}
    assert exported == covered
    event = await AuditEvent.get(action=action)
    assert (event.actor_id, event.actor_role, event.clinic_id) == (admin.account_id, "ADMIN", admin.clinic_id)
    # Many patients: none of them is "the" patient of the event, each is a subject.
    assert (event.patient_id, event.object_id) == (None, None)
    subjects = await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True)
    assert sorted(str(s) for s in subjects) == sorted(covered)
    for who in ("alice", "bob"):
        assert (str(event.id), action, None) in await trail(gql, admin, patients[who]), who
    for who in ("erased", "later"):
        assert action not in {a for _, a, _ in await trail(gql, admin, patients[who])}, who


async def test_the_bulk_event_lists_every_patient_before_the_first_line_is_read(
    clinic_wide: ClinicWide, now: datetime
) -> None:
    """Subjects go in with the event, before streaming: a client that drops the connection after one line (or
    none) still leaves a complete trail. One patient per batch, so the subjects are written in several inserts."""
    lines = await ExportService(batch_size=1).clinic_ndjson(clinic_wide.admin, now=now)
    event = await AuditEvent.get(action="export.bulk")
    subjects = await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True)
    assert set(subjects) == {clinic_wide.patients["alice"].patient.id, clinic_wide.patients["bob"].patient.id}
    assert len(subjects) == 2
    first = await anext(aiter(lines))
    assert json.loads(first)["resourceType"] == "Patient"


async def test_an_admin_of_another_clinic_exports_only_their_own(
    http: httpx.AsyncClient, auth: Auth, factory: Factory, record: Record, now: datetime
) -> None:
    elsewhere = await factory.clinic()
    admin = await factory.staff(elsewhere, record.admin.actor.role)
    dan = await factory.patient(elsewhere, name="Dan Elsewhere")
    dans = await factory.entry(dan, pain_now=3)
    resources = await ndjson(await http.get("/export/clinic.ndjson", headers=auth(admin.actor)))
    assert [(r["resourceType"], r["id"]) for r in resources] == [
        ("Patient", str(dan.patient.id)),
        ("Observation", str(uuid5(dans.id, "pain-now"))),
    ]


# --- diary CSV ----------------------------------------------------------------------------------------------


def parse_csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == CSV_HEADER
    return [dict(zip(CSV_HEADER, row, strict=True)) for row in rows[1:]]


def csv_url(patient: PatientUser | None = None) -> str:
    return "/export/diary.csv" + ("" if patient is None else f"?patientId={patient.patient.id}")


async def test_csv_without_a_token_is_401(http: httpx.AsyncClient, record: Record) -> None:
    response = await http.get(csv_url(record.alice))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_csv_of_someone_else_is_404(
    http: httpx.AsyncClient, auth: Auth, record: Record, strangers: dict[str, Actor]
) -> None:
    for who, actor in strangers.items():
        response = await http.get(csv_url(record.alice), headers=auth(actor))
        assert response.status_code == 404, who
        assert response.json() == {"error": {"code": "NOT_FOUND", "message": "patient not found"}}, who
    assert await AuditEvent.filter(action="export.csv").count() == 0


async def test_csv_with_a_malformed_patient_id_is_404_naming_the_parameter(
    http: httpx.AsyncClient, auth: Auth, record: Record
) -> None:
    response = await http.get("/export/diary.csv?patientId=zzz", headers=auth(record.clinician.actor))
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "NOT_FOUND", "message": "patient not found", "field": "patientId"}


async def test_the_clinic_wide_csv_is_for_admins_only(http: httpx.AsyncClient, auth: Auth, record: Record) -> None:
    response = await http.get(csv_url(), headers=auth(record.clinician.actor))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(("who", "named"), [("alice", False), ("alice", True), ("clinician", True), ("admin", True)])
async def test_a_patients_csv_for_them_and_the_clinics_staff(
    http: httpx.AsyncClient, auth: Auth, record: Record, who: str, named: bool
) -> None:
    actor: Actor = getattr(record, who).actor
    response = await http.get(csv_url(record.alice if named else None), headers=auth(actor))
    rows = parse_csv(response)
    filename = f"diary-{record.alice.patient.id}.csv" if named else "diary.csv"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    # Live entries only, oldest first: the edited one (yesterday), then the full one (today 10:00Z).
    assert [r["entry_id"] for r in rows] == [str(record.edited.id), str(record.full.id)]
    assert rows[1] == {
        "entry_id": str(record.full.id),
        "patient_id": str(record.alice.patient.id),
        "patient": "Alice Example",
        "recorded_at": "2026-11-26T05:00:00-05:00",
        "pain_now": "4",
        "pain_worst": "7",
        "pain_average": "5",
        "pain_locations": "LOWER_BACK;LEG_LEFT",
        "sleep_hours": "7.50",
        "sleep_quality": "6",
        "mood": "8",
        "side_effects": "NAUSEA:1;HALLUCINATIONS:2",
        "rescue_medication": "false",
        "note": "Better after the walk.",
        "created_at": "2026-11-26T12:00:00+00:00",
        "updated_at": "2026-11-26T12:00:00+00:00",
    }
    assert (rows[0]["pain_now"], rows[0]["mood"], rows[0]["pain_worst"]) == ("5", "4", "")
    event = await AuditEvent.get(action="export.csv")
    assert (event.actor_id, event.patient_id) == (actor.account_id, record.alice.patient.id)


async def test_the_clinic_wide_csv_lists_every_patient_of_the_clinic_only(
    http: httpx.AsyncClient, auth: Auth, factory: Factory, record: Record, now: datetime
) -> None:
    bob = await factory.patient(record.clinic, name="Bob Example")
    bobs = await factory.entry(bob, recorded_at=now - timedelta(days=3), pain_now=2)
    elsewhere = await factory.patient(await factory.clinic())
    await factory.entry(elsewhere, pain_now=6)
    rows = parse_csv(await http.get(csv_url(), headers=auth(record.admin.actor)))
    assert [(r["entry_id"], r["patient"]) for r in rows] == [
        (str(bobs.id), "Bob Example"),
        (str(record.edited.id), "Alice Example"),
        (str(record.full.id), "Alice Example"),
    ]
    event = await AuditEvent.get(action="export.csv")
    assert event.patient_id is None


@pytest.mark.parametrize(
    ("note", "cell"),
    [
        ('=HYPERLINK("http://evil.test","x")', '\'=HYPERLINK("http://evil.test","x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ('fine, with a comma and "quotes"\nand a second line', 'fine, with a comma and "quotes"\nand a second line'),
        ("1 = 1", "1 = 1"),
    ],
)
async def test_free_text_that_a_spreadsheet_would_run_is_neutralised(
    http: httpx.AsyncClient, auth: Auth, factory: Factory, note: str, cell: str
) -> None:
    clinic = await factory.clinic()
    mallory = await factory.patient(clinic, name="=cmd|' /C calc'!A0")
    await factory.entry(mallory, note=note)
    rows = parse_csv(await http.get(csv_url(), headers=auth(mallory.actor)))
    assert [(r["note"], r["patient"]) for r in rows] == [(cell, "'=cmd|' /C calc'!A0")]
    # The numbers keep their sign: only free text is touched.
    assert rows[0]["pain_now"] == "5"


async def test_a_patient_entry_id_in_the_csv_matches_the_stored_entry(
    http: httpx.AsyncClient, auth: Auth, record: Record
) -> None:
    rows = parse_csv(await http.get(csv_url(), headers=auth(record.alice.actor)))
    assert {UUID(r["entry_id"]) for r in rows} == {record.edited.id, record.full.id}


async def test_erased_patients_are_left_out_of_clinic_wide_exports(
    http: httpx.AsyncClient, auth: Auth, factory: Factory, record: Record
) -> None:
    bob = await factory.patient(record.clinic, name="Bob Example")
    await factory.entry(bob, pain_now=2)
    await Patient.filter(id=bob.patient.id).update(status=PatientStatus.ERASED)
    resources = await ndjson(await http.get("/export/clinic.ndjson", headers=auth(record.admin.actor)))
    assert str(bob.patient.id) not in json.dumps(resources)
    assert [r["id"] for r in resources if r["resourceType"] == "Patient"] == [str(record.alice.patient.id)]
    rows = parse_csv(await http.get(csv_url(), headers=auth(record.admin.actor)))
    assert {r["patient_id"] for r in rows} == {str(record.alice.patient.id)}
