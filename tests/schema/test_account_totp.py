"""enrollTotp, confirmTotp, disableTotp, resetStaffTotp, `Account.totpEnabled` and `login(…, otp)`, through the
schema."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest

from api.domain.actor import Actor, Role
from tests.api.support import codes, data, post_graphql
from tests.factories import PASSWORD, Factory, Staff
from tests.graphql import GraphQLClient, Result

STEP = timedelta(seconds=30)
ENROL = "mutation($p: String!) { enrollTotp(password: $p) { secret otpauthUri issuer } }"
CONFIRM = "mutation($otp: String!) { confirmTotp(otp: $otp) { id totpEnabled } }"
DISABLE = "mutation($p: String!, $otp: String!) { disableTotp(password: $p, otp: $otp) { id totpEnabled } }"
RESET = "mutation($id: ID!) { resetStaffTotp(accountId: $id) { id totpEnabled } }"
ME = "query { me { id totpEnabled } }"
LOGIN = """
mutation($email: String!, $password: String!, $otp: String) {
  login(email: $email, password: $password, otp: $otp) { accessToken otpEnrollmentRequired account { totpEnabled } }
}
"""


async def _enrol(gql: GraphQLClient, actor: Actor, now: datetime) -> str:
    secret: str = (await gql(ENROL, {"p": PASSWORD}, actor=actor, now=now)).ok()["enrollTotp"]["secret"]
    (await gql(CONFIRM, {"otp": pyotp.TOTP(secret).at(now)}, actor=actor, now=now)).ok()
    return secret


async def _login(gql: GraphQLClient, email: str, otp: str | None, now: datetime, password: str = PASSWORD) -> Result:
    return await gql(LOGIN, {"email": email, "password": password, "otp": otp}, now=now)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(ENROL, {"p": PASSWORD}, id="enrollTotp"),
        pytest.param(CONFIRM, {"otp": "123456"}, id="confirmTotp"),
        pytest.param(DISABLE, {"p": PASSWORD, "otp": "123456"}, id="disableTotp"),
        pytest.param(RESET, {"id": "00000000-0000-0000-0000-000000000000"}, id="resetStaffTotp"),
    ],
)
async def test_anonymous_callers_are_unauthenticated_and_patients_forbidden(
    factory: Factory, gql: GraphQLClient, query: str, variables: dict[str, Any]
) -> None:
    patient = await factory.patient(await factory.clinic())

    anonymous = await gql(query, variables)
    as_patient = await gql(query, variables, actor=patient.actor)

    assert (anonymous.data, anonymous.codes) == (None, ["UNAUTHENTICATED"])
    assert (as_patient.data, as_patient.codes) == (None, ["FORBIDDEN"])


async def test_a_clinician_enrols_confirms_and_then_signs_in_with_a_code(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())

    enrollment = (await gql(ENROL, {"p": PASSWORD}, actor=staff.actor)).ok()["enrollTotp"]
    before = (await gql(ME, actor=staff.actor)).ok()["me"]
    secret = enrollment["secret"]
    confirmed = (await gql(CONFIRM, {"otp": pyotp.TOTP(secret).at(now)}, actor=staff.actor)).ok()["confirmTotp"]
    later = now + 3 * STEP
    missing = await _login(gql, staff.email, None, later)
    wrong = await _login(gql, staff.email, "000000" if pyotp.TOTP(secret).at(later) != "000000" else "111111", later)
    signed_in = (await _login(gql, staff.email, pyotp.TOTP(secret).at(later), later)).ok()["login"]

    assert enrollment["issuer"] == "Interlude"
    assert pyotp.parse_uri(enrollment["otpauthUri"]).secret == secret
    assert (before["totpEnabled"], confirmed["totpEnabled"]) == (False, True)
    assert (missing.codes, missing.fields) == (["UNAUTHENTICATED"], ["otp"])
    assert (wrong.codes, wrong.fields) == (["UNAUTHENTICATED"], ["otp"])
    assert signed_in["account"]["totpEnabled"] is True
    assert signed_in["otpEnrollmentRequired"] is False


@pytest.mark.parametrize(
    ("drift", "accepted"),
    [(-2, False), (-1, True), (0, True), (1, True), (2, False)],
    ids=["minus-two", "minus-one", "current", "plus-one", "plus-two"],
)
async def test_a_sign_in_code_may_be_one_step_off(
    factory: Factory, gql: GraphQLClient, now: datetime, drift: int, accepted: bool
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrol(gql, staff.actor, now)
    later = now + 10 * STEP

    result = await _login(gql, staff.email, pyotp.TOTP(secret).at(later + drift * STEP), later)

    assert result.codes == ([] if accepted else ["UNAUTHENTICATED"])


async def test_a_code_is_accepted_once(factory: Factory, gql: GraphQLClient, now: datetime) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrol(gql, staff.actor, now)
    later = now + 4 * STEP
    otp = pyotp.TOTP(secret).at(later)

    (await _login(gql, staff.email, otp, later)).ok()
    replay = await _login(gql, staff.email, otp, later + timedelta(seconds=5))

    assert (replay.codes, replay.fields) == (["UNAUTHENTICATED"], ["otp"])


async def test_confirming_with_a_wrong_code_and_enrolling_twice_are_refused(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = (await gql(ENROL, {"p": PASSWORD}, actor=staff.actor)).ok()["enrollTotp"]["secret"]

    wrong = await gql(CONFIRM, {"otp": pyotp.TOTP(secret).at(now - 3 * STEP)}, actor=staff.actor)
    (await gql(CONFIRM, {"otp": pyotp.TOTP(secret).at(now)}, actor=staff.actor)).ok()
    again = await gql(ENROL, {"p": PASSWORD}, actor=staff.actor)

    assert (wrong.codes, wrong.fields) == (["BAD_USER_INPUT"], ["otp"])
    assert (again.data, again.codes) == (None, ["CONFLICT"])


async def test_enrolling_needs_the_password(factory: Factory, gql: GraphQLClient) -> None:
    staff = await factory.staff(await factory.clinic())

    wrong = await gql(ENROL, {"p": "not the password!"}, actor=staff.actor)
    missing = await gql("mutation { enrollTotp { secret } }", actor=staff.actor)

    assert (wrong.data, wrong.codes, wrong.fields) == (None, ["BAD_USER_INPUT"], ["password"])
    assert (missing.data, missing.codes) == (None, ["BAD_USER_INPUT"])
    assert (await gql(ME, actor=staff.actor)).ok()["me"]["totpEnabled"] is False


async def test_disabling_needs_the_password_and_a_code(factory: Factory, gql: GraphQLClient, now: datetime) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrol(gql, staff.actor, now)
    later = now + 2 * STEP
    otp = pyotp.TOTP(secret).at(later)

    wrong_password = await gql(DISABLE, {"p": "not the password!", "otp": otp}, actor=staff.actor, now=later)
    disabled = (await gql(DISABLE, {"p": PASSWORD, "otp": otp}, actor=staff.actor, now=later)).ok()["disableTotp"]
    signed_in = (await _login(gql, staff.email, None, later)).ok()["login"]

    assert (wrong_password.codes, wrong_password.fields) == (["BAD_USER_INPUT"], ["password"])
    assert disabled["totpEnabled"] is False
    assert signed_in["account"]["totpEnabled"] is False


async def test_an_admin_resets_a_colleague_and_nobody_else_may(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    clinic = await factory.clinic()
    admin, clinician, colleague = (
        await factory.staff(clinic, Role.ADMIN),
        await factory.staff(clinic),
        await factory.staff(clinic),
    )
    await _enrol(gql, clinician.actor, now)

    by_colleague = await gql(RESET, {"id": str(clinician.account.id)}, actor=colleague.actor)
    not_an_id = await gql(RESET, {"id": "not-an-id"}, actor=admin.actor)
    reset = (await gql(RESET, {"id": str(clinician.account.id)}, actor=admin.actor)).ok()["resetStaffTotp"]

    assert by_colleague.codes == ["FORBIDDEN"]
    assert (not_an_id.codes, not_an_id.fields) == (["NOT_FOUND"], ["accountId"])
    assert reset == {"id": str(clinician.account.id), "totpEnabled": False}
    (await _login(gql, clinician.email, None, now + STEP)).ok()


async def test_enrolment_over_http_logs_neither_the_secret_nor_codes_nor_the_email(
    factory: Factory, http: httpx.AsyncClient, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    staff: Staff = await factory.staff(await factory.clinic())
    # The application's own loggers at every level (Tortoise's SQL debug log is a development aid, off at INFO).
    caplog.set_level(logging.DEBUG, logger="interlude")

    token = data(await post_graphql(http, LOGIN, {"email": staff.email, "password": PASSWORD}))["login"]["accessToken"]
    secret = data(await post_graphql(http, ENROL, {"p": PASSWORD}, token=token))["enrollTotp"]["secret"]
    otp = pyotp.TOTP(secret).at(now)
    data(await post_graphql(http, CONFIRM, {"otp": otp}, token=token))
    wrong = await post_graphql(http, CONFIRM, {"otp": otp}, token=token)

    assert codes(wrong) == ["CONFLICT"]
    records = [r for r in caplog.records if r.name.startswith("interlude")]
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert records
    for private in (secret, otp, staff.email, PASSWORD):
        assert private not in logged
