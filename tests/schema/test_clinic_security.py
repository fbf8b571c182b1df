"""clinicSecurity and updateClinicSecurity (admin only, with the admin's password and code, audited), and what a
required second factor does to staff sessions: a session without one may only enrol it, until a refresh after
confirming."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pyotp

from api.domain.account.models import Clinic
from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from tests.api.support import codes, data, post_graphql
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient

READ = "query { clinicSecurity { requireStaffOtp } }"
UPDATE = """
mutation($on: Boolean!, $p: String!, $otp: String) {
  updateClinicSecurity(input: {requireStaffOtp: $on}, password: $p, otp: $otp) { requireStaffOtp }
}
"""
ON = {"on": True, "p": PASSWORD}
STEP = timedelta(seconds=30)
LOGIN = """
mutation($email: String!, $password: String!, $otp: String) {
  login(email: $email, password: $password, otp: $otp) { accessToken refreshToken otpEnrollmentRequired }
}
"""
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken otpEnrollmentRequired } }"
LOGOUT = "mutation($t: String!) { logout(refreshToken: $t) }"
ME = "query { me { id role totpEnabled } }"
ENROL = "mutation($p: String!) { enrollTotp(password: $p) { secret } }"
CONFIRM = "mutation($otp: String!) { confirmTotp(otp: $otp) { totpEnabled } }"
PATIENTS = "query { patients(first: 5) { edges { node { id } } } }"
CHANGE_PASSWORD = 'mutation { changePassword(currentPassword: "a", newPassword: "b") }'


async def test_only_an_admin_reads_and_changes_the_setting(factory: Factory, gql: GraphQLClient) -> None:
    clinic = await factory.clinic()
    admin, clinician = await factory.staff(clinic, Role.ADMIN), await factory.staff(clinic)
    patient = await factory.patient(clinic)

    initial = (await gql(READ, actor=admin.actor)).ok()["clinicSecurity"]
    refusals = [
        (await gql(READ)).codes,
        (await gql(READ, actor=clinician.actor)).codes,
        (await gql(READ, actor=patient.actor)).codes,
        (await gql(UPDATE, ON)).codes,
        (await gql(UPDATE, ON, actor=clinician.actor)).codes,
        (await gql(UPDATE, ON, actor=patient.actor)).codes,
    ]

    assert initial == {"requireStaffOtp": False}
    assert refusals == [["UNAUTHENTICATED"], ["FORBIDDEN"], ["FORBIDDEN"]] * 2
    assert not (await Clinic.get(id=clinic.id)).require_staff_otp


async def test_an_admin_switches_it_for_their_clinic_only_and_it_is_audited(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic, other = await factory.clinic(), await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)

    switched = (await gql(UPDATE, ON, actor=admin.actor)).ok()["updateClinicSecurity"]

    assert switched == {"requireStaffOtp": True}
    assert (await gql(READ, actor=admin.actor)).ok()["clinicSecurity"] == {"requireStaffOtp": True}
    assert not (await Clinic.get(id=other.id)).require_staff_otp
    event = await AuditEvent.get(action="clinic.security_update")
    assert (event.clinic_id, event.actor_id, event.object_id, event.patient_id) == (
        clinic.id,
        admin.account.id,
        clinic.id,
        None,
    )
    assert event.created_at == now


async def test_changing_it_needs_the_admin_s_password_and_code_and_guesses_lock(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    """A stolen admin session alone must not weaken the clinic's sign-in requirements."""
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    second_factor = gql.services.accounts.second_factor
    secret = (await second_factor.enrol(admin.actor, PASSWORD, now=now)).secret
    await second_factor.confirm(admin.actor, pyotp.TOTP(secret).at(now), now=now)
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)
    off, later = {"on": False, "p": PASSWORD}, now + timedelta(minutes=1)
    code = pyotp.TOTP(secret).at(later)

    wrong_password = await gql(UPDATE, {**off, "p": "not the password!", "otp": code}, actor=admin.actor, now=later)
    no_code = await gql(UPDATE, off, actor=admin.actor, now=later)
    switched = await gql(UPDATE, {**off, "otp": code}, actor=admin.actor, now=later)

    assert (wrong_password.codes, wrong_password.fields) == (["BAD_USER_INPUT"], ["password"])
    assert (no_code.codes, no_code.fields) == (["BAD_USER_INPUT"], ["otp"])
    assert switched.ok()["updateClinicSecurity"] == {"requireStaffOtp": False}
    assert await AuditEvent.filter(action="clinic.security_update").count() == 1
    policy = gql.services.accounts.policy.per_account
    for i in range(policy.max_failures - 1):  # the wrong password above counted too
        guess = await gql(UPDATE, {**ON, "p": f"guess number {i}"}, actor=admin.actor, now=later)
        assert guess.codes == ["BAD_USER_INPUT"]
    locked = await gql(UPDATE, {**ON, "otp": pyotp.TOTP(secret).at(later + STEP)}, actor=admin.actor, now=later)
    assert locked.codes == ["RATE_LIMITED"]
    assert not (await Clinic.get(id=clinic.id)).require_staff_otp


async def test_a_staff_member_without_a_second_factor_may_only_enrol_until_a_refresh_after_confirming(
    factory: Factory, http: httpx.AsyncClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    clinician = await factory.staff(clinic)
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)

    limited = data(await post_graphql(http, LOGIN, {"email": clinician.email, "password": PASSWORD}))["login"]
    token = limited["accessToken"]
    refused = [codes(await post_graphql(http, q, token=token)) for q in (PATIENTS, CHANGE_PASSWORD)]
    me = data(await post_graphql(http, ME, token=token))["me"]
    secret = data(await post_graphql(http, ENROL, {"p": PASSWORD}, token=token))["enrollTotp"]["secret"]
    data(await post_graphql(http, CONFIRM, {"otp": pyotp.TOTP(secret).at(now)}, token=token))
    still_limited = codes(await post_graphql(http, PATIENTS, token=token))
    full = data(await post_graphql(http, REFRESH, {"t": limited["refreshToken"]}))["refreshSession"]

    assert limited["otpEnrollmentRequired"] is True
    assert refused == [["FORBIDDEN"], ["FORBIDDEN"]]
    assert me == {"id": str(clinician.account.id), "role": "CLINICIAN", "totpEnabled": False}
    assert still_limited == ["FORBIDDEN"]
    assert full["otpEnrollmentRequired"] is False
    data(await post_graphql(http, PATIENTS, token=full["accessToken"]))


async def test_the_limited_session_says_what_to_do_and_can_sign_out(factory: Factory, http: httpx.AsyncClient) -> None:
    clinic = await factory.clinic()
    clinician = await factory.staff(clinic)
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)
    limited = data(await post_graphql(http, LOGIN, {"email": clinician.email, "password": PASSWORD}))["login"]

    refused = (await post_graphql(http, PATIENTS, token=limited["accessToken"])).json()["errors"][0]
    signed_out = data(await post_graphql(http, LOGOUT, {"t": limited["refreshToken"]}))["logout"]

    assert "enrol" in refused["message"]
    assert signed_out is True
    assert codes(await post_graphql(http, REFRESH, {"t": limited["refreshToken"]})) == ["UNAUTHENTICATED"]


async def test_switching_it_on_reaches_existing_sessions_at_their_next_refresh_and_spares_patients(
    factory: Factory, gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    clinic = await factory.clinic()
    admin = await factory.staff(clinic, Role.ADMIN)
    patient = await factory.patient(clinic)
    staff_session = data(await post_graphql(http, LOGIN, {"email": admin.email, "password": PASSWORD}))["login"]
    patient_session = data(await post_graphql(http, LOGIN, {"email": patient.email, "password": PASSWORD}))["login"]

    (await gql(UPDATE, ON, actor=admin.actor)).ok()
    staff_refreshed = data(await post_graphql(http, REFRESH, {"t": staff_session["refreshToken"]}))
    patient_refreshed = data(await post_graphql(http, REFRESH, {"t": patient_session["refreshToken"]}))

    assert staff_refreshed["refreshSession"]["otpEnrollmentRequired"] is True
    assert patient_refreshed["refreshSession"]["otpEnrollmentRequired"] is False


async def test_an_enrolled_staff_member_of_such_a_clinic_signs_in_with_a_code_as_usual(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    clinician = await factory.staff(clinic)
    secret = (await gql(ENROL, {"p": PASSWORD}, actor=clinician.actor)).ok()["enrollTotp"]["secret"]
    (await gql(CONFIRM, {"otp": pyotp.TOTP(secret).at(now)}, actor=clinician.actor)).ok()
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)
    later = now + timedelta(minutes=2)

    missing = await gql(LOGIN, {"email": clinician.email, "password": PASSWORD}, now=later)
    signed_in = await gql(
        LOGIN, {"email": clinician.email, "password": PASSWORD, "otp": pyotp.TOTP(secret).at(later)}, now=later
    )

    assert (missing.codes, missing.fields) == (["UNAUTHENTICATED"], ["otp"])
    assert signed_in.ok()["login"]["otpEnrollmentRequired"] is False
