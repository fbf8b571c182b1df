"""Erasure in the domain: identifying and contact data go at once, in one transaction; the clinical record stays,
read-only for the clinic's staff under a pseudonym, until the legal-retention hold ends (or goes at once without a
hold); the patient's own actor reaches nothing afterwards; a second erasure answers the first.

`now` is 2026-11-26 12:00 UTC; Alice's latest clinical date is her diary entry of 24 November, 12:00 UTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from uuid import UUID

import pyotp
import pytest
import pytest_asyncio

from api.domain.account.models import Account, RefreshToken, ThrottleBucket
from api.domain.actor import Role
from api.domain.alert.models import Alert, AlertEvent, AlertStatus
from api.domain.audit.models import AuditEvent, AuditSubject
from api.domain.diary.models import DiaryEntry, DiaryEntryRevision
from api.domain.diary.validation import DiaryInput
from api.domain.errors import BadInput, Conflict, NotFound, RateLimited
from api.domain.patient.erasure import Erasure
from api.domain.patient.models import Invite, Patient, PatientStatus
from api.domain.prompt.models import Prompt, PromptPlan, PromptStatus
from api.domain.prompt.service import PreferenceChange, PromptEvent
from api.domain.push import devices
from api.domain.push.models import Device, ProviderName, PushMessage
from api.domain.questionnaire.models import QuestionnaireResponse
from api.domain.questionnaire.service import QuestionnaireInput
from api.domain.services import Services
from api.domain.treatment.models import InfusionSession, TreatmentCourse
from api.domain.treatment.service import SessionChange
from tests.erasure_support import (
    ALICE_EMAIL,
    ALICE_TOKEN,
    RETENTION,
    World,
    erasure_service,
    resolve_alerts,
    stored_text,
    table_dump,
    world,
)
from tests.factories import PASSWORD, Factory

REASON = "Asked by registered letter; she moved away after her depression got better"


@pytest_asyncio.fixture
async def w(factory: Factory, services: Services, now: datetime) -> World:
    return await world(factory, services, now)


async def clinical_counts(patient_id: UUID) -> dict[str, int]:
    entries = DiaryEntry.filter(patient_id=patient_id).values_list("id", flat=True)
    alerts = Alert.filter(patient_id=patient_id).values_list("id", flat=True)
    return {
        "diary": await DiaryEntry.filter(patient_id=patient_id).count(),
        "revisions": await DiaryEntryRevision.filter(entry_id__in=await entries).count(),
        "responses": await QuestionnaireResponse.filter(patient_id=patient_id).count(),
        "sessions": await InfusionSession.filter(patient_id=patient_id).count(),
        "courses": await TreatmentCourse.filter(patient_id=patient_id).count(),
        "alerts": await Alert.filter(patient_id=patient_id).count(),
        "alert events": await AlertEvent.filter(alert_id__in=await alerts).count(),
        "prompts": await Prompt.filter(patient_id=patient_id).count(),
    }


async def not_refused(calls: list[Callable[[], Awaitable[object]]], error: type[Exception]) -> list[int]:
    """The positions of the calls that did not raise `error`; any other error fails the test as it is."""
    missed = []
    for n, call in enumerate(calls):
        try:
            await call()
        except error:
            continue
        missed.append(n)
    return missed


async def test_identity_and_contact_go_at_once_and_the_record_is_held(
    w: World, services: Services, now: datetime
) -> None:
    before = await clinical_counts(w.alice.patient.id)
    bob_before = (await table_dump())["patient"]
    stored = await stored_text()
    for value in w.identifying:
        assert value in stored, value  # the search below can find what it looks for

    erasure = await erasure_service(services).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    latest = w.latest_entry.recorded_at
    assert erasure == Erasure(w.alice.patient.id, PatientStatus.ERASED, now, latest + RETENTION, None)
    patient = await Patient.get(id=w.alice.patient.id)
    short = w.alice.patient.id.hex[:8]
    assert (patient.display_name, patient.search_name) == (f"Erased patient {short}", f"erased patient {short}")
    assert (patient.status, patient.erasure_requested_at, patient.retained_until) == (
        PatientStatus.ERASED, now, latest + RETENTION
    )  # fmt: skip
    assert (patient.diary_time, patient.quiet_hours_start, patient.notifications_enabled) == ("20:00", "21:30", False)
    account = await Account.get(id=w.alice.account.id)
    assert account.email == f"erased-{account.id.hex}@erased.invalid"
    assert (account.password_hash, account.is_active) == ("!erased", False)
    assert not await services.accounts.passwords.verify(account.password_hash, "interlude-timing-equaliser")
    assert not await RefreshToken.filter(account_id=account.id).exists()
    assert not await Device.filter(patient_id=patient.id).exists()
    assert not await PushMessage.filter(device_id=w.device.id).exists()
    assert not await Invite.filter(patient_id=patient.id).exists()
    assert not await Prompt.filter(patient_id=patient.id, status=PromptStatus.SCHEDULED).exists()
    sent = await Prompt.get(patient_id=patient.id, status=PromptStatus.SENT)
    assert sent.next_reminder_at is None
    assert await Prompt.filter(patient_id=patient.id, status=PromptStatus.CANCELLED, sent_at=None).exists()
    # The clinical record is whole: nothing deleted, nothing added.
    assert await clinical_counts(patient.id) == before
    stored = await stored_text()
    for value in w.identifying:
        assert value not in stored, value
    assert await Device.filter(patient_id=w.bob.patient.id).count() == 1
    assert [p for p in (await table_dump())["patient"] if p["id"] == str(w.bob.patient.id)] == [
        p for p in bob_before if p["id"] == str(w.bob.patient.id)
    ]


async def test_the_reason_is_stored_nowhere_and_the_erasure_is_audited_by_ids(
    w: World, services: Services, now: datetime
) -> None:
    await AuditEvent.all().delete()
    await erasure_service(services).erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)

    assert "registered letter" not in await stored_text()
    [event] = await AuditEvent.all()
    assert (event.action, event.actor_id, event.actor_role, event.patient_id, event.created_at) == (
        "patient.erase", w.admin.account.id, "ADMIN", w.alice.patient.id, now
    )  # fmt: skip
    assert await AuditSubject.filter(event_id=event.id).values_list("patient_id", flat=True) == [w.alice.patient.id]


async def test_the_patient_erases_themself_with_their_password(w: World, services: Services, now: datetime) -> None:
    await AuditEvent.all().delete()
    erasure = await erasure_service(services).erase_own(w.alice.actor, PASSWORD, now=now)

    assert (erasure.status, erasure.requested_at, erasure.erased_at) == (PatientStatus.ERASED, now, None)
    assert w.alice.email not in await stored_text()
    [event] = await AuditEvent.all()
    assert (event.action, event.actor_id, event.actor_role, event.patient_id) == (
        "patient.erase", w.alice.account.id, "PATIENT", w.alice.patient.id
    )  # fmt: skip


async def test_erasing_again_answers_the_same_erasure_and_changes_nothing(
    w: World, services: Services, now: datetime
) -> None:
    service = erasure_service(services)
    first = await service.erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)
    stored = await table_dump()

    later = now + timedelta(days=1)
    assert (
        await service.erase_patient(w.admin.actor, w.alice.patient.id, "again", password=PASSWORD, now=later) == first
    )
    # The patient's retry after a lost answer: their password is gone, and the answer is the same.
    assert await service.erase_own(w.alice.actor, "anything at all", now=later) == first
    assert await table_dump() == stored


async def test_two_erasures_at_once_erase_once(w: World, services: Services, now: datetime) -> None:
    service = erasure_service(services)
    await AuditEvent.all().delete()

    first, second = await asyncio.gather(
        service.erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now),
        service.erase_own(w.alice.actor, PASSWORD, now=now),
    )

    assert first == second
    assert await AuditEvent.filter(action="patient.erase").count() == 1


async def test_the_hold_counts_from_the_latest_clinical_date_that_has_happened(
    w: World, services: Services, now: datetime
) -> None:
    # A later response moves the date; the session booked for next week does not, nor does a future entry.
    w.response.authored_at = now - timedelta(hours=5)
    await w.response.save(update_fields=["authored_at"])
    await DiaryEntry.filter(id=w.latest_entry.id).update(recorded_at=now + timedelta(minutes=2))

    erasure = await erasure_service(services).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    assert erasure.retained_until == now - timedelta(hours=5) + RETENTION


async def test_without_any_clinical_data_the_hold_counts_from_now(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, role=Role.ADMIN)
    invited = await services.patients.invite(
        admin.actor, display_name="Never Came", email="never@example.test", timezone="UTC", now=now
    )

    erasure = await erasure_service(services).erase_patient(
        admin.actor, invited.patient.id, REASON, password=PASSWORD, now=now
    )

    assert (erasure.retained_until, erasure.erased_at) == (now + RETENTION, None)
    assert not await Invite.filter(patient_id=invited.patient.id).exists()
    assert "Never Came" not in await stored_text()


async def test_staff_read_the_held_record_under_the_pseudonym(w: World, services: Services, now: datetime) -> None:
    await erasure_service(services).erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)
    staff, pid = w.clinician.actor, w.alice.patient.id

    assert (await services.patients.get(staff, pid, now=now)).display_name.startswith("Erased patient ")
    page = await services.diary.entries(
        staff, pid, first=None, after=None, start=None, end=None, include_deleted=False, now=now
    )
    assert len(page.items) == 2
    assert len(await services.treatment.sessions(staff, pid, now=now)) == 2
    responses = await services.questionnaires.responses(staff, pid, first=None, after=None, instrument=None, now=now)
    assert [r.id for r in responses.items] == [w.response.id]
    listed = await services.patients.search(
        staff, first=None, after=None, search=None, status=PatientStatus.ERASED, now=now
    )
    assert [p.id for p in listed.items] == [pid]
    live = await services.patients.search(staff, first=None, after=None, search=None, status=None, now=now)
    assert pid not in [p.id for p in live.items]


async def test_the_patients_own_actor_reaches_nothing_once_erased(w: World, services: Services, now: datetime) -> None:
    """Access tokens are stateless for their 15 minutes: the domain refuses the erased patient's actor."""
    sent = await Prompt.get(patient_id=w.alice.patient.id, status=PromptStatus.SENT)
    await erasure_service(services).erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)
    me, pid, entry = w.alice.actor, w.alice.patient.id, w.latest_entry.id
    stored = await table_dump()
    phq2 = QuestionnaireInput(client_id=UUID(int=8), instrument="phq2", answers=[("phq2_1", 0), ("phq2_2", 0)])

    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: services.diary.entries(
            me, pid, first=None, after=None, start=None, end=None, include_deleted=False, now=now
        ),
        lambda: services.diary.log(me, DiaryInput(client_id=UUID(int=7), recorded_at=now, pain_now=3), now=now),
        lambda: services.prompts.update_preferences(me, PreferenceChange(notifications_enabled=True), now=now),
        lambda: services.outcomes.trends(me, 30, now=now),
        lambda: devices.register(me, ProviderName.FCM, "a-new-phone-token", None, now=now),
        lambda: services.exports.patient_everything(me, pid, base_url="http://x.test/fhir", now=now),
        lambda: services.patients.get(me, pid, now=now),
        # One call at least of every service a patient reaches, reads and writes.
        lambda: services.prompts.mine(me, None, now=now),
        lambda: services.prompts.acknowledge(me, sent.id, PromptEvent.OPENED, now=now),
        lambda: services.prompts.adherence(me, pid, now=now),
        lambda: services.diary.update(me, entry, {"pain_now": 1}, expected_version=None, now=now),
        lambda: services.diary.delete(me, entry, now=now),
        lambda: services.questionnaires.submit(me, phq2, now=now),
        lambda: services.questionnaires.responses(me, pid, first=None, after=None, instrument=None, now=now),
        lambda: services.outcomes.outcomes(me, pid, now=now),
        lambda: devices.unregister(me, ALICE_TOKEN, now=now),
    ]
    assert await not_refused(attempts, NotFound) == []
    assert await table_dump() == stored


async def test_without_a_hold_the_record_goes_with_the_erasure(w: World, services: Services, now: datetime) -> None:
    await resolve_alerts(services, w, now)
    erasure = await erasure_service(services, timedelta(0)).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    assert (erasure.retained_until, erasure.erased_at) == (None, now)
    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}
    assert (await Patient.get(id=w.alice.patient.id)).timezone == "UTC"
    assert await DiaryEntry.filter(patient_id=w.bob.patient.id).count() == 1
    with pytest.raises(NotFound):
        await services.patients.get(w.clinician.actor, w.alice.patient.id, now=now)
    assert await AuditEvent.filter(action="patient.erase", patient_id=w.alice.patient.id).exists()


async def test_a_hold_that_has_already_run_out_ends_with_the_erasure(
    w: World, services: Services, now: datetime
) -> None:
    # Latest clinical date: the entry two days ago; a one-day hold ended yesterday.
    await w.response.delete()
    await resolve_alerts(services, w, now)
    erasure = await erasure_service(services, timedelta(days=1)).erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now
    )

    assert (erasure.retained_until, erasure.erased_at) == (w.latest_entry.recorded_at + timedelta(days=1), now)
    assert set((await clinical_counts(w.alice.patient.id)).values()) == {0}


async def test_staff_write_nothing_to_a_held_record_but_close_its_alerts(
    w: World, services: Services, now: datetime
) -> None:
    await erasure_service(services).erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=now)
    staff, pid = w.clinician.actor, w.alice.patient.id
    plan = await PromptPlan.filter(clinic_id=w.clinic.id, is_current=True).first()
    assert plan is not None
    stored = await table_dump()

    writes: list[Callable[[], Awaitable[object]]] = [
        lambda: services.treatment.schedule(
            staff, pid, starts_at=now + timedelta(days=3), planned_duration_minutes=60, course_id=None, now=now
        ),
        lambda: services.treatment.update(staff, w.session.id, SessionChange(notes="Amended."), now=now),
        lambda: services.prompts.enroll(staff, pid, plan.id, now=now),
    ]
    assert await not_refused(writes, Conflict) == []
    assert await table_dump() == stored

    [alert] = await Alert.filter(patient_id=pid)
    assert (await services.alerts.acknowledge(staff, alert.id, None, now=now)).status is AlertStatus.ACKNOWLEDGED
    assert (await services.alerts.resolve(staff, alert.id, "called", now=now)).status is AlertStatus.RESOLVED


async def test_a_wrong_password_counts_on_the_login_throttle_until_it_locks(
    w: World, services: Services, now: datetime
) -> None:
    """A stolen access token must not let anyone guess the password: eraseMyAccount counts as a sign-in does."""
    service, rule = erasure_service(services), services.accounts.policy.per_account
    await ThrottleBucket.all().delete()

    for _ in range(rule.max_failures):
        with pytest.raises(BadInput) as wrong:
            await service.erase_own(w.alice.actor, "a guess", now=now)
        assert wrong.value.field == "password"
    stored = await table_dump()

    # Locked: the right password is refused too, and so is a sign-in, until the lock ends.
    with pytest.raises(RateLimited):
        await service.erase_own(w.alice.actor, PASSWORD, now=now)
    with pytest.raises(RateLimited):
        await services.accounts.login(ALICE_EMAIL, PASSWORD, ip="203.0.113.9", now=now)
    assert await table_dump() == stored
    erasure = await service.erase_own(w.alice.actor, PASSWORD, now=now + rule.lock)
    assert erasure.status is PatientStatus.ERASED


async def test_an_admin_erases_only_with_their_password_and_once_enabled_a_code(
    w: World, services: Services, now: datetime
) -> None:
    """A stolen admin token alone erases no one: erasePatient asks for the step-up a sign-in would."""
    service, second_factor = erasure_service(services), services.accounts.second_factor
    await ThrottleBucket.all().delete()
    stored = await table_dump()

    with pytest.raises(BadInput) as wrong:
        await service.erase_patient(w.admin.actor, w.alice.patient.id, REASON, password="a guess", now=now)

    assert wrong.value.field == "password"
    after = await table_dump()
    assert {table for table, rows in after.items() if rows != stored[table]} == {"throttle_bucket"}
    secret = (await second_factor.enrol(w.admin.actor, PASSWORD, now=now)).secret
    await second_factor.confirm(w.admin.actor, pyotp.TOTP(secret).at(now), now=now)
    later = now + timedelta(minutes=1)
    with pytest.raises(BadInput) as no_code:
        await service.erase_patient(w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, now=later)
    assert no_code.value.field == "otp"
    assert (await Patient.get(id=w.alice.patient.id)).status is not PatientStatus.ERASED
    otp = pyotp.TOTP(secret).at(later)
    erasure = await service.erase_patient(
        w.admin.actor, w.alice.patient.id, REASON, password=PASSWORD, otp=otp, now=later
    )
    assert erasure.status is PatientStatus.ERASED
