"""changePassword: the policy for the new password, the current password (and a code once a second factor is
enabled; failures count towards the lock), every session of the account ended, and an audit event whoever changes
it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp

from api.domain.account.models import Account, RefreshToken
from api.domain.audit.models import AuditEvent
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient, Result

CHANGE = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }"
CHANGE_WITH_CODE = """
mutation($c: String!, $n: String!, $otp: String) { changePassword(currentPassword: $c, newPassword: $n, otp: $otp) }
"""
LOGIN = """
mutation($email: String!, $password: String!) { login(email: $email, password: $password) { refreshToken } }
"""
REFRESH = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }"
NEW_PASSWORD = "a brand new pass phrase"


async def _login(gql: GraphQLClient, email: str, password: str, now: datetime | None = None) -> Result:
    return await gql(LOGIN, {"email": email, "password": password}, now=now)


async def test_a_changed_password_signs_in_and_the_old_one_and_old_sessions_do_not(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    session = (await _login(gql, staff.email, PASSWORD)).ok()["login"]

    changed = (await gql(CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, actor=staff.actor)).ok()
    later = now + timedelta(minutes=1)

    assert changed == {"changePassword": True}
    assert (await _login(gql, staff.email, PASSWORD, later)).codes == ["UNAUTHENTICATED"]
    (await _login(gql, staff.email, NEW_PASSWORD, later)).ok()
    assert (await gql(REFRESH, {"t": session["refreshToken"]}, now=later)).codes == ["UNAUTHENTICATED"]
    assert (await Account.get(id=staff.account.id)).password_changed_at == now
    assert await AuditEvent.filter(action="account.password_change", object_id=staff.account.id).count() == 1


async def test_a_patient_changes_their_own_password_and_it_is_audited(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    """A stolen patient token used to take the account over must show in the trail, as a staff member's does."""
    clinic = await factory.clinic()
    patient = await factory.patient(clinic)

    (await gql(CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, actor=patient.actor, request_id="pw-change")).ok()

    # Registration opened a session: it is ended too.
    assert await RefreshToken.filter(account_id=patient.account.id).exists()
    assert not await RefreshToken.filter(account_id=patient.account.id, revoked_at=None).exists()
    (await _login(gql, patient.email, NEW_PASSWORD, now + timedelta(minutes=1))).ok()
    [event] = await AuditEvent.filter(action="account.password_change")
    assert (event.clinic_id, event.actor_id, event.actor_role, event.object_id, event.patient_id) == (
        clinic.id, patient.account.id, "PATIENT", patient.account.id, None
    )  # fmt: skip
    assert (event.request_id, event.ip, event.created_at) == ("pw-change", "198.51.100.1", now)


async def test_with_a_second_factor_a_current_code_is_needed_too(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    second_factor = gql.services.accounts.second_factor
    secret = (await second_factor.enrol(staff.actor, PASSWORD, now=now)).secret
    await second_factor.confirm(staff.actor, pyotp.TOTP(secret).at(now), now=now)
    later = now + timedelta(minutes=1)
    variables = {"c": PASSWORD, "n": NEW_PASSWORD}

    missing = await gql(CHANGE_WITH_CODE, variables, actor=staff.actor, now=later)
    changed = await gql(
        CHANGE_WITH_CODE, {**variables, "otp": pyotp.TOTP(secret).at(later)}, actor=staff.actor, now=later
    )

    assert (missing.codes, missing.fields) == (["BAD_USER_INPUT"], ["otp"])
    assert changed.ok() == {"changePassword": True}


async def test_refusals_name_the_field_and_change_nothing(factory: Factory, gql: GraphQLClient) -> None:
    staff = await factory.staff(await factory.clinic(), email="marguerite@clinic.test")

    anonymous = await gql(CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD})
    wrong_current = await gql(CHANGE, {"c": "not my password!", "n": NEW_PASSWORD}, actor=staff.actor)
    short = await gql(CHANGE, {"c": PASSWORD, "n": "short"}, actor=staff.actor)
    common = await gql(CHANGE, {"c": PASSWORD, "n": "Password123456"}, actor=staff.actor)
    with_email = await gql(CHANGE, {"c": PASSWORD, "n": "Marguerite-likes-tea"}, actor=staff.actor)
    same = await gql(CHANGE, {"c": PASSWORD, "n": PASSWORD}, actor=staff.actor)

    assert anonymous.codes == ["UNAUTHENTICATED"]
    assert (wrong_current.codes, wrong_current.fields) == (["BAD_USER_INPUT"], ["currentPassword"])
    for refused in (short, common, with_email, same):
        assert (refused.codes, refused.fields) == (["BAD_USER_INPUT"], ["newPassword"])
        assert "Marguerite" not in refused.errors[0]["message"]
    (await _login(gql, staff.email, PASSWORD)).ok()


async def test_wrong_current_passwords_count_towards_the_lock(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    for i in range(gql.services.accounts.policy.per_account.max_failures):
        wrong = await gql(CHANGE, {"c": f"wrong password {i}", "n": NEW_PASSWORD}, actor=staff.actor)
        assert wrong.codes == ["BAD_USER_INPUT"]

    locked = await gql(CHANGE, {"c": PASSWORD, "n": NEW_PASSWORD}, actor=staff.actor, now=now + timedelta(minutes=1))

    assert locked.codes == ["RATE_LIMITED"]
    assert (await _login(gql, staff.email, PASSWORD, now + timedelta(minutes=1))).codes == ["RATE_LIMITED"]
