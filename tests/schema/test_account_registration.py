"""invitePatient and registerPatient: one-time hashed codes, consumed once, within 72 hours."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tortoise import Tortoise

from api.domain.account.models import Account
from api.domain.account.tokens import sha256_hex
from api.domain.actor import Actor, Role
from api.domain.patient.models import Invite, Patient, PatientStatus
from api.domain.patient.service import CODE_ALPHABET
from api.domain.services import Services
from api.settings import Settings
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient, Result

INVITE = """
mutation Invite($input: InvitePatientInput!) {
  invitePatient(input: $input) { code expiresAt patient { id displayName status timezone activatedAt email } }
}
"""
REGISTER = """
mutation Register($input: RegisterPatientInput!) {
  registerPatient(input: $input) {
    accessToken refreshToken expiresAt
    account { id email role patient { id displayName status timezone activatedAt } }
  }
}
"""
LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }"


async def _invite(
    gql: GraphQLClient, actor: Actor, *, email: str | None = None, now: datetime | None = None, **overrides: str
) -> dict[str, Any]:
    values = {"displayName": "Rosalind Franklin", "timezone": "Europe/London", "email": email, **overrides}
    invite: dict[str, Any] = (await gql(INVITE, {"input": values}, actor=actor, now=now)).ok()["invitePatient"]
    return invite


async def _register(
    gql: GraphQLClient,
    code: str,
    email: str = "rosalind@example.test",
    *,
    password: str = PASSWORD,
    timezone: str | None = None,
    now: datetime | None = None,
    ip: str = "198.51.100.1",
) -> Result:
    values = {"inviteCode": code, "email": email, "password": password, "timezone": timezone}
    return await gql(REGISTER, {"input": values}, now=now, ip=ip)


async def test_an_invite_creates_an_invited_patient_and_a_code_valid_72_hours(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    invite = await _invite(gql, staff.actor, email="rosalind@example.test")

    assert re.fullmatch(rf"[{CODE_ALPHABET}]{{4}}(-[{CODE_ALPHABET}]{{4}}){{3}}", invite["code"])
    assert datetime.fromisoformat(invite["expiresAt"]) == now + timedelta(hours=72)
    assert invite["patient"]["status"] == "INVITED"
    assert invite["patient"]["displayName"] == "Rosalind Franklin"
    assert invite["patient"]["timezone"] == "Europe/London"
    assert invite["patient"]["activatedAt"] is None
    assert invite["patient"]["email"] is None
    patient = await Patient.get(id=invite["patient"]["id"])
    assert (patient.clinic_id, patient.search_name) == (clinic.id, "rosalind franklin")


async def test_an_admin_may_invite_too(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)

    assert (await _invite(gql, admin.actor))["patient"]["status"] == "INVITED"


async def test_the_code_is_stored_only_as_a_sha256_hash(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    invite = await _invite(gql, staff.actor, email="rosalind@example.test")

    plain = invite["code"].replace("-", "")
    stored = await Invite.get(patient_id=invite["patient"]["id"])
    assert stored.code_hash == sha256_hex(plain)
    _, rows = await Tortoise.get_connection("default").execute_query("SELECT * FROM invite")
    dumped = repr([dict(row) for row in rows])
    assert plain not in dumped
    assert invite["code"] not in dumped
    assert plain.lower() not in dumped.lower()
    assert "rosalind@example.test" not in dumped


async def test_each_invite_has_its_own_code(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    codes = {(await _invite(gql, staff.actor))["code"] for _ in range(5)}

    assert len(codes) == 5


async def test_invite_input_is_checked(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    cases = [
        ({"displayName": "A", "timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"displayName": "A", "timezone": "Europe/London", "email": "not-an-email"}, "email"),
        ({"displayName": "   ", "timezone": "Europe/London"}, "displayName"),
        ({"displayName": "x" * 201, "timezone": "Europe/London"}, "displayName"),
        # 200 characters whose lower-cased search copy has 400 ("İ" lower-cases to "i" + a combining dot).
        ({"displayName": "İ" * 200, "timezone": "Europe/London"}, "displayName"),
    ]
    for values, field in cases:
        result = await gql(INVITE, {"input": values}, actor=staff.actor)
        assert (result.codes, result.fields) == (["BAD_USER_INPUT"], [field]), values
    assert await Patient.filter(clinic_id=clinic.id).count() == 0


async def test_registration_consumes_the_invite_and_opens_a_session(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor, email="rosalind@example.test")
    later = now + timedelta(hours=5)

    payload = (await _register(gql, invite["code"], now=later)).ok()["registerPatient"]

    account = payload["account"]
    assert account["email"] == "rosalind@example.test"
    assert account["role"] == "PATIENT"
    assert account["patient"] == {
        "id": invite["patient"]["id"],
        "displayName": "Rosalind Franklin",
        "status": "ACTIVE",
        "timezone": "Europe/London",
        "activatedAt": later.isoformat(),
    }
    actor = services.accounts.tokens.verify(payload["accessToken"], now=later)
    assert (str(actor.patient_id), actor.role, actor.clinic_id) == (invite["patient"]["id"], Role.PATIENT, clinic.id)
    stored = await Invite.get(patient_id=invite["patient"]["id"])
    assert stored.used_at == later
    assert (await gql(LOGIN, {"email": "rosalind@example.test", "password": PASSWORD}, now=later)).errors == []


async def test_the_patient_may_choose_a_timezone_when_registering(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)

    payload = (await _register(gql, invite["code"], timezone="Australia/Sydney")).ok()["registerPatient"]

    assert payload["account"]["patient"]["timezone"] == "Australia/Sydney"


async def test_a_code_works_only_once(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)
    (await _register(gql, invite["code"], "first@example.test")).ok()

    again = await _register(gql, invite["code"], "second@example.test")

    assert (again.data, again.codes, again.fields) == (None, ["BAD_USER_INPUT"], ["inviteCode"])
    assert not await Account.exists(email="second@example.test")


async def test_an_expired_code_is_refused(factory: Factory, gql: GraphQLClient, now: datetime) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    in_time = await _invite(gql, staff.actor)
    too_late = await _invite(gql, staff.actor)

    (await _register(gql, in_time["code"], "a@example.test", now=now + timedelta(hours=72, seconds=-1))).ok()
    expired = await _register(gql, too_late["code"], "b@example.test", now=now + timedelta(hours=72))

    assert (expired.codes, expired.fields) == (["BAD_USER_INPUT"], ["inviteCode"])
    assert (await Patient.get(id=too_late["patient"]["id"])).status is PatientStatus.INVITED


async def test_unknown_used_and_expired_codes_answer_alike(factory: Factory, gql: GraphQLClient, now: datetime) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    used = await _invite(gql, staff.actor)
    expired = await _invite(gql, staff.actor)
    (await _register(gql, used["code"], "a@example.test")).ok()
    later = now + timedelta(hours=80)

    answers = [
        (await _register(gql, code, "b@example.test", now=later)).errors
        for code in (used["code"], expired["code"], "ABCD-EFGH-JKMN-PQRS")
    ]

    assert answers[0] == answers[1] == answers[2]


async def test_codes_are_accepted_in_lower_case_with_spaces_or_without_dashes(
    factory: Factory, gql: GraphQLClient
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    spellings: list[Callable[[str], str]] = [
        str.lower,
        lambda c: c.replace("-", " "),
        lambda c: f"  {c.replace('-', '').lower()}  ",
        lambda c: "-".join(c.replace("-", "")),
    ]
    for i, spell in enumerate(spellings):
        invite = await _invite(gql, staff.actor)
        typed = spell(invite["code"])
        assert typed != invite["code"]
        result = await _register(gql, typed, f"p{i}@example.test")
        assert result.errors == [], (typed, result.errors)


async def test_the_email_named_by_the_invite_must_be_used(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor, email="Rosalind@Example.test")

    wrong = await _register(gql, invite["code"], "someone.else@example.test")

    assert (wrong.codes, wrong.fields) == (["BAD_USER_INPUT"], ["email"])
    # Refused before anything was consumed: the named email still works, whatever its case.
    (await _register(gql, invite["code"], "ROSALIND@example.test")).ok()


async def test_an_invite_without_email_takes_any_email(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)

    (await _register(gql, invite["code"], "whoever@example.test")).ok()


async def test_an_email_already_taken_is_a_conflict_and_leaves_the_code_usable(
    factory: Factory, gql: GraphQLClient
) -> None:
    clinic = await factory.clinic()
    other_clinic = await factory.clinic()
    existing = await factory.staff(other_clinic)
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)

    taken = await _register(gql, invite["code"], existing.email.upper())

    assert (taken.codes, taken.fields) == (["CONFLICT"], ["email"])
    assert (await Invite.get(patient_id=invite["patient"]["id"])).used_at is None
    (await _register(gql, invite["code"], "fresh@example.test")).ok()


async def test_registration_input_is_checked_before_the_code_is_used(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)

    short = await _register(gql, invite["code"], password="short")
    long = await _register(gql, invite["code"], password="x" * 129)
    zone = await _register(gql, invite["code"], timezone="Not/AZone")
    email = await _register(gql, invite["code"], "no-at-sign")

    assert (short.codes, short.fields) == (["BAD_USER_INPUT"], ["password"])
    assert (long.codes, long.fields) == (["BAD_USER_INPUT"], ["password"])
    assert (zone.codes, zone.fields) == (["BAD_USER_INPUT"], ["timezone"])
    assert (email.codes, email.fields) == (["BAD_USER_INPUT"], ["email"])
    (await _register(gql, invite["code"])).ok()


async def test_bad_codes_lock_the_address(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)
    for i in range(settings.login_ip_max_failures):
        guess = await _register(gql, f"AAAA-BBBB-CCCC-{i:04d}", f"g{i}@example.test", ip="203.0.113.66")
        assert guess.codes == ["BAD_USER_INPUT"], i

    blocked = await _register(gql, invite["code"], ip="203.0.113.66", now=now + timedelta(minutes=1))
    assert blocked.codes == ["RATE_LIMITED"]
    assert (await Invite.get(patient_id=invite["patient"]["id"])).used_at is None

    (await _register(gql, invite["code"], ip="203.0.113.67", now=now + timedelta(minutes=1))).ok()


async def test_a_few_bad_codes_do_not_lock_the_address(
    factory: Factory, gql: GraphQLClient, settings: Settings
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    invite = await _invite(gql, staff.actor)
    for i in range(settings.login_ip_max_failures - 1):
        await _register(gql, f"AAAA-BBBB-CCCC-{i:04d}", ip="203.0.113.66")

    (await _register(gql, invite["code"], ip="203.0.113.66")).ok()
