"""`$everything` in the domain: every resource of a rich record valid by HL7's R4 JSON schema, by SMART fhirclient's
R4 models and by fhir.resources (R4B models), and the mapping of each measure checked against values worked out by
hand."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import pytest
import pytest_asyncio
from fhir.resources.R4B import get_fhir_model_class
from fhirclient.models.fhirabstractbase import FHIRValidationError

from api.domain.actor import Actor
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.diary.validation import SideEffectReport
from api.domain.diary.vocabulary import SideEffect
from api.domain.errors import NotFound
from api.domain.prompt.models import Prompt
from api.domain.questionnaire import instruments
from api.domain.questionnaire.instruments import Registry
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.services import Services
from tests.export.support import (
    SCHEMA_FILE,
    SCORES,
    Record,
    promis_definition,
    rich_record,
    schema_errors,
    validate,
    validate_r4_model,
)
from tests.factories import Factory

BASE = "http://interlude.test/fhir"
LOCAL = "https://interlude.invalid/fhir/CodeSystem/diary"
LOINC = "http://loinc.org"


@pytest_asyncio.fixture
async def record(factory: Factory, now: datetime) -> Record:
    return await rich_record(factory, now)


async def everything(services: Services, actor: Actor, record: Record, now: datetime) -> dict[str, Any]:
    return await services.exports.patient_everything(actor, record.alice.patient.id, base_url=BASE, now=now)


@pytest_asyncio.fixture
async def bundle(services: Services, record: Record, now: datetime) -> dict[str, Any]:
    """The clinician's export of the rich record."""
    return await everything(services, record.clinician.actor, record, now)


def by_id(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}


def observation(bundle: dict[str, Any], entry_id: UUID, kind: str) -> dict[str, Any]:
    return by_id(bundle)[str(uuid5(entry_id, kind))]


async def test_every_resource_of_a_rich_bundle_is_valid_r4(bundle: dict[str, Any], record: Record) -> None:
    validate(bundle)
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    for entry in bundle["entry"]:
        validate(entry["resource"])
    # 1 patient; diary: 11 observations for the full entry, 1 for the deleted one, 2 for the edited one (pain now
    # and mood); 3 responses each with a score
    # observation; sessions: a Procedure and a MedicationAdministration for the completed one, 2 Appointments.
    sessions = ["Procedure", "MedicationAdministration", "Appointment", "Appointment"]
    assert kinds == sorted(["Patient", *(["Observation"] * 17), *(["QuestionnaireResponse"] * 3), *sessions])
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"]) == 25


async def test_the_bundle_points_at_each_resource_by_a_restful_full_url(bundle: dict[str, Any], record: Record) -> None:
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{BASE}/{resource['resourceType']}/{resource['id']}"
        assert entry["search"]["mode"] == ("match" if resource["resourceType"] == "Patient" else "include")
    patient_id = record.alice.patient.id
    assert bundle["link"] == [{"relation": "self", "url": f"{BASE}/Patient/{patient_id}/$everything"}]
    assert bundle["timestamp"] == "2026-11-26T12:00:00+00:00"


def test_the_vendored_schema_is_the_file_its_readme_names() -> None:
    digest = hashlib.sha256(gzip.decompress(SCHEMA_FILE.read_bytes())).hexdigest()
    assert digest == "15b9548af6412c44faaa411456e0652542de286fd1c58ef882b09bdc8947909d"
    assert digest in (SCHEMA_FILE.parent / "README.md").read_text()


async def test_the_schema_refuses_what_the_model_library_lets_through() -> None:
    # Why both validators: fhir.resources accepts any string as a status.
    nonsense = {"resourceType": "Observation", "id": "x", "status": "nonsense", "code": {"text": "pain"}}
    get_fhir_model_class("Observation").model_validate(nonsense)
    assert schema_errors(nonsense) == [
        "status: 'nonsense' is not one of "
        "['registered', 'preliminary', 'final', 'amended', 'corrected', 'cancelled', 'entered-in-error', 'unknown']"
    ]
    assert schema_errors({**nonsense, "status": "final"}) == []
    assert schema_errors({**nonsense, "status": "final", "email": "a@b.test"}) == [
        ": Additional properties are not allowed ('email' was unexpected)"
    ]


def test_the_r4_models_refuse_what_r4b_has_and_r4_does_not() -> None:
    # SubscriptionStatus is new in R4B: the R4B models take it, the R4 ones must not.
    r4b_only = {"resourceType": "SubscriptionStatus", "type": "heartbeat", "subscription": {"reference": "S/1"}}
    get_fhir_model_class("SubscriptionStatus").model_validate(r4b_only)
    with pytest.raises(FHIRValidationError):
        validate_r4_model(r4b_only)
    observation = {"resourceType": "Observation", "id": "x", "status": "final", "code": {"text": "pain"}}
    validate_r4_model(observation)
    # Inside a Bundle too: an unknown key and a wrong type in an entry's resource.
    for bad in ({**observation, "email": "a@b.test"}, {**observation, "valueInteger": "3"}):
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bad}]}
        with pytest.raises(FHIRValidationError):
            validate_r4_model(bundle)


async def test_the_patient_carries_the_display_name_and_no_email(bundle: dict[str, Any], record: Record) -> None:
    patient = by_id(bundle)[str(record.alice.patient.id)]
    assert patient == {
        "resourceType": "Patient",
        "id": str(record.alice.patient.id),
        "active": True,
        "name": [{"text": "Alice Example"}],
    }
    assert record.alice.email not in str(bundle)


async def test_pain_ratings_share_the_loinc_code_and_differ_by_the_local_one(
    bundle: dict[str, Any], record: Record
) -> None:
    expected = {"pain-now": 4, "pain-worst-24h": 7, "pain-average-24h": 5}
    for kind, value in expected.items():
        obs = observation(bundle, record.full.id, kind)
        assert [c["code"] for c in obs["code"]["coding"]] == ["72514-3", kind]
        assert [c["system"] for c in obs["code"]["coding"]] == [LOINC, LOCAL]
        assert obs["valueQuantity"] == {
            "value": value,
            "unit": "{score}",
            "system": "http://unitsofmeasure.org",
            "code": "{score}",
        }
        # 10:00Z as the patient lived it, at UTC-5.
        assert obs["effectiveDateTime"] == "2026-11-26T05:00:00-05:00"
        assert obs["status"] == "final"
        assert obs["category"][0]["coding"][0]["code"] == "survey"
        assert obs["subject"] == {"reference": f"Patient/{record.alice.patient.id}"}


async def test_sleep_mood_and_the_rest_of_a_full_entry(bundle: dict[str, Any], record: Record) -> None:
    sleep = observation(bundle, record.full.id, "sleep-hours")
    assert sleep["code"]["coding"][0] == {"system": LOINC, "code": "93832-4", "display": "Sleep duration"}
    assert sleep["valueQuantity"] == {"value": 7.5, "unit": "h", "system": "http://unitsofmeasure.org", "code": "h"}
    assert observation(bundle, record.full.id, "sleep-quality")["valueQuantity"]["value"] == 6
    assert observation(bundle, record.full.id, "mood")["code"]["coding"] == [
        {"system": LOCAL, "code": "mood", "display": "Mood (0-10, 10 = best)"}
    ]
    assert observation(bundle, record.full.id, "rescue-medication")["valueBoolean"] is False
    assert observation(bundle, record.full.id, "note")["valueString"] == "Better after the walk."
    regions = observation(bundle, record.full.id, "pain-locations")["component"]
    assert [c["valueCodeableConcept"]["coding"][0]["code"] for c in regions] == ["LOWER_BACK", "LEG_LEFT"]


async def test_side_effects_use_snomed_where_known_and_carry_their_severity(
    bundle: dict[str, Any], record: Record
) -> None:
    nausea = observation(bundle, record.full.id, "side-effect-NAUSEA")
    assert [(c["system"], c["code"]) for c in nausea["code"]["coding"]] == [
        ("http://snomed.info/sct", "422587007"),
        ("https://interlude.invalid/fhir/CodeSystem/side-effect", "NAUSEA"),
    ]
    assert nausea["component"][0]["valueInteger"] == 1
    # No confirmed SNOMED code for hallucinations (research/domain.md §5.1): the local code alone.
    hallucinations = observation(bundle, record.full.id, "side-effect-HALLUCINATIONS")
    assert [c["code"] for c in hallucinations["code"]["coding"]] == ["HALLUCINATIONS"]
    assert hallucinations["component"][0]["valueInteger"] == 2


async def test_a_side_effect_at_severity_0_is_not_present_and_not_exported(
    services: Services, factory: Factory, record: Record, now: datetime
) -> None:
    reported = [SideEffectReport(SideEffect.NAUSEA, 0), SideEffectReport(SideEffect.HEADACHE, 2)]
    entry = await factory.entry(record.alice, pain_now=3, side_effects=reported)
    bundle = await everything(services, record.clinician.actor, record, now)
    kinds = {str(uuid5(entry.id, kind)): kind for kind in ("pain-now", "side-effect-NAUSEA", "side-effect-HEADACHE")}
    exported = [kinds[r["id"]] for r in by_id(bundle).values() if r["id"] in kinds]
    assert sorted(exported) == ["pain-now", "side-effect-HEADACHE"]
    # The rich record's 25 resources and this entry's two.
    assert bundle["total"] == 27


async def test_a_deleted_entry_is_entered_in_error_and_an_edited_one_amended(
    bundle: dict[str, Any], record: Record
) -> None:
    deleted = observation(bundle, record.deleted.id, "pain-now")
    assert deleted["status"] == "entered-in-error"
    assert deleted["valueQuantity"]["value"] == 9
    edited = observation(bundle, record.edited.id, "mood")
    assert edited["status"] == "amended"
    assert edited["valueQuantity"]["value"] == 4
    assert edited["meta"] == {"lastUpdated": "2026-11-26T12:00:00+00:00"}


async def test_questionnaire_responses_pin_the_instrument_version_and_code_their_answers(
    bundle: dict[str, Any], record: Record
) -> None:
    phq9 = by_id(bundle)[str(record.phq9.id)]
    assert phq9["questionnaire"] == "https://interlude.invalid/fhir/Questionnaire/phq9|1"
    assert phq9["status"] == "completed"
    assert phq9["authored"] == "2026-11-26T04:00:00-05:00"
    assert [i["linkId"] for i in phq9["item"]] == [f"phq9_{n}" for n in range(1, 10)]
    # Item 4 was answered 3, "Nearly every day"; item 3 was 0, "Not at all".
    assert phq9["item"][3] == {
        "linkId": "phq9_4",
        "text": "Feeling tired or having little energy",
        "answer": [
            {
                "valueCoding": {
                    "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 3}],
                    "system": LOINC,
                    "code": "LA6571-9",
                    "display": "Nearly every day",
                }
            }
        ],
    }
    assert phq9["item"][2]["answer"][0]["valueCoding"]["code"] == "LA6568-5"
    # PGIC has no LOINC answer list: the published integer code.
    pgic = by_id(bundle)[str(record.pgic.id)]
    assert pgic["item"] == [
        {
            "linkId": "pgic",
            "text": "Since the start of treatment, my overall status is:",
            "answer": [{"valueInteger": 2}],
        }
    ]


async def test_a_response_to_an_instrument_no_longer_installed_still_exports(
    services: Services, record: Record, now: datetime
) -> None:
    await QuestionnaireResponse.filter(id=record.gad7.id).update(instrument_version="99")
    bundle = await everything(services, record.clinician.actor, record, now)
    validate(bundle)
    gad7 = by_id(bundle)[str(record.gad7.id)]
    assert gad7["questionnaire"].endswith("/gad7|99")
    assert gad7["item"][1] == {"linkId": "gad7_2", "answer": [{"valueInteger": 1}]}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("phq9", (LOINC, "44261-6", 11)),
        ("gad7", (LOINC, "70274-6", 5)),
        ("pgic", ("https://interlude.invalid/fhir/CodeSystem/instrument", "pgic-score", 2)),
    ],
)
async def test_each_score_is_an_observation_derived_from_its_response(
    bundle: dict[str, Any], record: Record, name: str, expected: tuple[str, str, int]
) -> None:
    system, code, score = expected
    response = getattr(record, name)
    obs = observation(bundle, response.id, "score")
    assert (obs["code"]["coding"][0]["system"], obs["code"]["coding"][0]["code"]) == (system, code)
    assert obs["valueQuantity"]["value"] == score
    assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response.id}"}]
    assert obs["effectiveDateTime"] == "2026-11-26T04:00:00-05:00"
    assert obs["interpretation"] == [{"text": SCORES[name][1]}]


INSTRUMENT = "https://interlude.invalid/fhir/CodeSystem/instrument"
InstallPromis = Callable[..., None]


@pytest.fixture
def install_promis(tmp_path: Path) -> Iterator[InstallPromis]:
    """Installs the made-up PROMIS form (with `extra` top-level keys) for the test; the previous registry after."""
    before = instruments.installed()

    def install(clinic: UUID, **extra: object) -> None:
        (tmp_path / "promis.json").write_text(json.dumps(promis_definition(clinic, **extra)), encoding="utf-8")
        instruments.install(Registry.load(tmp_path))

    yield install
    instruments.install(before)


async def promis_response(record: Record, now: datetime) -> QuestionnaireResponse:
    # Raw 3 + 4 + 2 + 4 = 13 → 40 + 9 × 2.25 = 60.25, stored as 60, moderate (≥ 60): as scoring stores it.
    return await QuestionnaireResponse.create(
        clinic_id=record.clinic.id,
        patient_id=record.alice.patient.id,
        client_id=uuid4(),
        client_hash="0" * 64,
        instrument="promis_pi_4a",
        instrument_version="1",
        answers={"pi_1": 3, "pi_2": 4, "pi_3": 2, "pi_4": 4},
        score=60,
        band="moderate",
        derived={"raw_score": 13, "score_exact": 60.25},
        authored_at=now - timedelta(hours=3),
        utc_offset_minutes=-300,
        created_at=now - timedelta(hours=3),
    )


@pytest.mark.parametrize(
    ("extra", "raw_coding", "converted_coding"),
    [
        (
            {"loinc_total": "99001-0", "loinc_converted": "99002-8"},
            {"system": LOINC, "code": "99001-0", "display": "PROMIS Pain Interference 4a total score"},
            {"system": LOINC, "code": "99002-8", "display": "PROMIS Pain Interference 4a converted score"},
        ),
        (
            {},
            {
                "system": INSTRUMENT,
                "code": "promis_pi_4a-raw-score",
                "display": "PROMIS Pain Interference 4a raw score",
            },
            {
                "system": INSTRUMENT,
                "code": "promis_pi_4a-converted",
                "display": "PROMIS Pain Interference 4a converted score",
            },
        ),
    ],
    ids=["loinc", "local"],
)
async def test_a_table_converted_score_exports_beside_its_raw_sum(
    services: Services,
    record: Record,
    now: datetime,
    *,
    install_promis: InstallPromis,
    extra: dict[str, str],
    raw_coding: dict[str, str],
    converted_coding: dict[str, str],
) -> None:
    install_promis(record.clinic.id, **extra)
    response = await promis_response(record, now)
    bundle = await everything(services, record.clinician.actor, record, now)
    validate(bundle)
    for entry in bundle["entry"]:
        validate(entry["resource"])
    # The rich record's 25, and this response with two Observations.
    assert bundle["total"] == 28
    raw = observation(bundle, response.id, "score")
    converted = observation(bundle, response.id, "converted")
    assert raw["code"] == {"coding": [raw_coding], "text": raw_coding["display"]}
    assert raw["valueQuantity"]["value"] == 13
    # The band reads the converted score: the raw sum carries none.
    assert "interpretation" not in raw
    assert converted["code"] == {"coding": [converted_coding], "text": converted_coding["display"]}
    assert converted["valueQuantity"] == {
        "value": 60.25,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert converted["interpretation"] == [{"text": "moderate"}]
    for obs in (raw, converted):
        assert obs["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response.id}"}]
        assert obs["status"] == "final"
        assert obs["effectiveDateTime"] == "2026-11-26T04:00:00-05:00"


async def test_a_converted_score_still_exports_beside_its_raw_sum_once_the_definition_is_gone(
    services: Services, record: Record, now: datetime
) -> None:
    # Not installed: the response's own raw_score says the score was converted; local codes only.
    response = await promis_response(record, now)
    bundle = await everything(services, record.clinician.actor, record, now)
    validate(bundle)
    raw = observation(bundle, response.id, "score")
    converted = observation(bundle, response.id, "converted")
    assert (raw["code"]["coding"][0]["code"], raw["valueQuantity"]["value"]) == ("promis_pi_4a-raw-score", 13)
    assert (converted["code"]["coding"][0]["code"], converted["valueQuantity"]["value"]) == (
        "promis_pi_4a-converted",
        60.25,
    )


async def test_sessions_for_staff_carry_the_dose_and_notes(bundle: dict[str, Any], record: Record) -> None:
    resources = by_id(bundle)
    procedure = resources[str(record.completed.id)]
    assert procedure["status"] == "completed"
    assert procedure["performedPeriod"] == {"start": "2026-11-23T12:00:00+00:00", "end": "2026-11-23T16:00:00+00:00"}
    assert procedure["note"] == [{"text": "Tolerated well."}]
    given = resources[str(uuid5(record.completed.id, "ketamine"))]
    assert given["dosage"]["dose"] == {"value": 35.5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert given["partOf"] == [{"reference": f"Procedure/{record.completed.id}"}]
    booked = resources[str(record.scheduled.id)]
    assert (booked["resourceType"], booked["status"]) == ("Appointment", "booked")
    assert (booked["start"], booked["end"]) == ("2026-11-30T12:00:00+00:00", "2026-11-30T16:00:00+00:00")
    assert resources[str(record.cancelled.id)]["status"] == "cancelled"


async def test_the_patients_own_export_leaves_out_dose_and_clinician_notes(
    services: Services, record: Record, now: datetime
) -> None:
    bundle = await everything(services, record.alice.actor, record, now)
    for entry in bundle["entry"]:
        validate(entry["resource"])
    types = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "MedicationAdministration" not in types
    # The 24 of the clinical record, and a Task for each of her check-ins (test_self_export).
    assert len(types) == 24 + await Prompt.filter(patient_id=record.alice.patient.id).count()
    procedure = by_id(bundle)[str(record.completed.id)]
    assert "note" not in procedure
    assert "Tolerated well." not in str(bundle)


async def test_exports_are_audited_for_staff_and_for_the_patient_themself(
    services: Services, record: Record, now: datetime
) -> None:
    await AuditEvent.all().delete()
    await everything(services, record.clinician.actor, record, now)
    await everything(services, record.alice.actor, record, now)
    events = await AuditEvent.filter(action="export.fhir").order_by("actor_role")
    assert [(e.actor_role, e.actor_id, e.patient_id) for e in events] == [
        ("CLINICIAN", record.clinician.account.id, record.alice.patient.id),
        ("PATIENT", record.alice.account.id, record.alice.patient.id),
    ]
    for event in events:
        assert await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True) == [
            record.alice.patient.id
        ]


async def test_no_one_else_reaches_the_record_and_a_refusal_is_not_audited(
    services: Services, factory: Factory, record: Record, now: datetime
) -> None:
    other_clinic = await factory.clinic()
    outsiders = [
        (await factory.staff(other_clinic)).actor,
        (await factory.patient(other_clinic)).actor,
        (await factory.patient(record.clinic)).actor,
    ]
    await AuditEvent.all().delete()
    for actor in outsiders:
        with pytest.raises(NotFound):
            await everything(services, actor, record, now)
    assert await AuditEvent.filter(action="export.fhir").count() == 0
