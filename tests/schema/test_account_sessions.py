"""login, refreshSession, logout and me, through the GraphQL schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher

from api.domain.account.models import Account, RefreshToken
from api.domain.account.tokens import sha256_hex
from api.domain.actor import Role
from api.domain.errors import Unauthenticated
from api.domain.patient.models import Patient, PatientStatus
from api.domain.services import Services
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient

LOGIN = """
mutation Login($email: String!, $password: String!) {
  login(email: $email, password: $password) {
    accessToken refreshToken expiresAt
    account { id email role patient { id displayName status } }
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshSession(refreshToken: $token) { accessToken refreshToken expiresAt account { id role } }
}
"""
LOGOUT = "mutation Logout($token: String!) { logout(refreshToken: $token) }"
ME = "query { me { id email role patient { id displayName } } }"


async def _login(gql: GraphQLClient, email: str, password: str = PASSWORD, **kwargs: Any) -> dict[str, Any]:
    result = await gql(LOGIN, {"email": email, "password": password}, **kwargs)
    session: dict[str, Any] = result.ok()["login"]
    return session


async def _refresh(gql: GraphQLClient, token: str, **kwargs: Any) -> list[str]:
    return (await gql(REFRESH, {"token": token}, **kwargs)).codes


async def test_login_returns_a_working_session_for_a_clinician(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic, Role.ADMIN)

    session = await _login(gql, staff.email)

    assert session["account"] == {"id": str(staff.account.id), "email": staff.email, "role": "ADMIN", "patient": None}
    assert datetime.fromisoformat(session["expiresAt"]) == now + timedelta(minutes=15)
    actor = services.accounts.tokens.verify(session["accessToken"], now=now)
    assert (actor.account_id, actor.role, actor.clinic_id) == (staff.account.id, Role.ADMIN, clinic.id)
    assert jwt.get_unverified_header(session["accessToken"])["kid"] == services.accounts.tokens.kid
    services.accounts.tokens.verify(session["accessToken"], now=now + timedelta(minutes=14))
    with pytest.raises(Unauthenticated):
        services.accounts.tokens.verify(session["accessToken"], now=now + timedelta(minutes=15))
    assert (await Account.get(id=staff.account.id)).last_login_at == now


async def test_login_is_case_insensitive_and_returns_the_patient_profile(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    who = await factory.patient(clinic, name="Ada Lovelace")

    session = await _login(gql, f"  {who.email.upper()} ")

    assert session["account"]["role"] == "PATIENT"
    assert session["account"]["patient"] == {
        "id": str(who.patient.id),
        "displayName": "Ada Lovelace",
        "status": "ACTIVE",
    }
    actor = services.accounts.tokens.verify(session["accessToken"], now=now)
    assert actor.patient_id == who.patient.id


async def test_passwords_are_stored_as_argon2id(factory: Factory) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    stored = (await Account.get(id=staff.account.id)).password_hash

    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


async def test_wrong_password_and_unknown_email_answer_identically(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    wrong = await gql(LOGIN, {"email": staff.email, "password": "not the password"})
    unknown = await gql(LOGIN, {"email": "nobody@clinic.test", "password": PASSWORD})

    assert wrong.data is None
    assert wrong.codes == ["UNAUTHENTICATED"]
    assert wrong.errors == unknown.errors


async def test_a_patient_who_is_no_longer_active_cannot_sign_in(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    erased = await factory.patient(clinic)
    paused = await factory.patient(clinic)
    await Patient.filter(id=erased.patient.id).update(status=PatientStatus.ERASED)
    await Patient.filter(id=paused.patient.id).update(status=PatientStatus.PAUSED)
    unknown = await gql(LOGIN, {"email": "nobody@clinic.test", "password": PASSWORD})

    refused = await gql(LOGIN, {"email": erased.email, "password": PASSWORD})

    assert refused.errors == unknown.errors
    await _login(gql, paused.email)


async def test_a_deactivated_account_cannot_sign_in(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await Account.filter(id=staff.account.id).update(is_active=False)

    assert (await gql(LOGIN, {"email": staff.email, "password": PASSWORD})).codes == ["UNAUTHENTICATED"]


async def test_refresh_rotates_the_token(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    first = await _login(gql, staff.email)
    later = now + timedelta(minutes=20)

    second = (await gql(REFRESH, {"token": first["refreshToken"]}, now=later)).ok()["refreshSession"]

    assert second["refreshToken"] != first["refreshToken"]
    assert second["account"] == {"id": str(staff.account.id), "role": "CLINICIAN"}
    assert datetime.fromisoformat(second["expiresAt"]) == later + timedelta(minutes=15)
    assert services.accounts.tokens.verify(second["accessToken"], now=later).account_id == staff.account.id
    third = (await gql(REFRESH, {"token": second["refreshToken"]}, now=later)).ok()["refreshSession"]
    assert third["refreshToken"] not in (first["refreshToken"], second["refreshToken"])


async def test_refresh_tokens_are_stored_only_as_hashes(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    session = await _login(gql, staff.email)

    stored = [t.token_hash for t in await RefreshToken.filter(account_id=staff.account.id)]

    assert stored == [sha256_hex(session["refreshToken"])]


async def test_reusing_a_rotated_token_revokes_the_whole_family(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    first = await _login(gql, staff.email)
    other_device = await _login(gql, staff.email)
    second = (await gql(REFRESH, {"token": first["refreshToken"]})).ok()["refreshSession"]

    assert await _refresh(gql, first["refreshToken"], now=now + timedelta(minutes=1)) == ["UNAUTHENTICATED"]

    # The newest token of the family was revoked with it; another sign-in's family is untouched.
    assert await _refresh(gql, second["refreshToken"], now=now + timedelta(minutes=2)) == ["UNAUTHENTICATED"]
    assert await _refresh(gql, other_device["refreshToken"], now=now + timedelta(minutes=2)) == []


async def test_an_expired_refresh_token_is_refused(factory: Factory, gql: GraphQLClient, now: datetime) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    near_end = await _login(gql, staff.email)
    at_end = await _login(gql, staff.email)

    assert await _refresh(gql, near_end["refreshToken"], now=now + timedelta(days=30) - timedelta(seconds=1)) == []
    assert await _refresh(gql, at_end["refreshToken"], now=now + timedelta(days=30)) == ["UNAUTHENTICATED"]


async def test_an_unknown_refresh_token_is_refused(factory: Factory, gql: GraphQLClient) -> None:
    assert await _refresh(gql, "not-a-token-we-issued") == ["UNAUTHENTICATED"]


async def test_refresh_is_refused_once_the_patient_is_erased(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    who = await factory.patient(clinic)
    session = await _login(gql, who.email)
    await Patient.filter(id=who.patient.id).update(status=PatientStatus.ERASED)

    assert await _refresh(gql, session["refreshToken"]) == ["UNAUTHENTICATED"]


async def test_logout_revokes_the_family(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    first = await _login(gql, staff.email)
    other_device = await _login(gql, staff.email)
    second = (await gql(REFRESH, {"token": first["refreshToken"]})).ok()["refreshSession"]

    assert (await gql(LOGOUT, {"token": second["refreshToken"]})).ok() == {"logout": True}

    assert await _refresh(gql, second["refreshToken"]) == ["UNAUTHENTICATED"]
    assert await _refresh(gql, other_device["refreshToken"]) == []


async def test_logout_with_an_unknown_token_is_false(gql: GraphQLClient, factory: Factory) -> None:
    assert (await gql(LOGOUT, {"token": "never-issued"})).ok() == {"logout": False}


async def test_me_answers_the_signed_in_account(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    who = await factory.patient(clinic, name="Grace Hopper")

    staff_me = (await gql(ME, actor=staff.actor)).ok()["me"]
    patient_me = (await gql(ME, actor=who.actor)).ok()["me"]

    assert staff_me == {"id": str(staff.account.id), "email": staff.email, "role": "CLINICIAN", "patient": None}
    assert patient_me == {
        "id": str(who.account.id),
        "email": who.email,
        "role": "PATIENT",
        "patient": {"id": str(who.patient.id), "displayName": "Grace Hopper"},
    }


async def test_me_with_an_access_token_of_a_login(
    factory: Factory, gql: GraphQLClient, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    session = await _login(gql, staff.email)
    actor = services.accounts.tokens.verify(session["accessToken"], now=now + timedelta(minutes=5))

    assert (await gql(ME, actor=actor)).ok()["me"]["id"] == str(staff.account.id)
