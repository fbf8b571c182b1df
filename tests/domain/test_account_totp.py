"""The TOTP second factor in the domain: codes and drift, sealing at rest, enrolment, confirmation, replay, disabling,
an admin's reset, sign-in with a code, and the session of a clinic that requires one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from uuid import uuid4

import pyotp
import pytest

from api.domain.account import totp
from api.domain.account.models import Account, Clinic, RefreshToken, ThrottleBucket
from api.domain.account.sealing import Sealer, SealError
from api.domain.account.service import AccountService
from api.domain.account.tokens import EnrolmentRequired
from api.domain.actor import Role
from api.domain.audit.models import AuditEvent
from api.domain.errors import BadInput, Conflict, Forbidden, NotFound, RateLimited, Unauthenticated
from api.domain.services import Services
from tests.factories import PASSWORD, Factory, Staff

STEP = timedelta(seconds=totp.STEP_SECONDS)
OLD_KEY = "old-installation-secret-key-that-is-long-0001"
NEW_KEY = "new-installation-secret-key-that-is-long-0002"
# Fixed secrets: with the fixed clock every code below is the same on every run.
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
OTHER_SECRET = "KRUGS4ZANFZSAYJAON2GC5DJMMQHEZLD"


def code(secret: str, at: datetime) -> str:
    return pyotp.TOTP(secret).at(at)


# --- codes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("drift", [-1, 0, 1], ids=["previous-step", "current-step", "next-step"])
def test_a_code_within_one_step_of_drift_matches_its_step(drift: int, now: datetime) -> None:
    step = totp.matching_step(SECRET, code(SECRET, now + drift * STEP), now)

    assert step == totp.step_at(now) + drift


@pytest.mark.parametrize("drift", [-2, 2], ids=["two-steps-behind", "two-steps-ahead"])
def test_a_code_two_steps_away_is_refused(drift: int, now: datetime) -> None:
    assert totp.matching_step(SECRET, code(SECRET, now + drift * STEP), now) is None


@pytest.mark.parametrize(
    "bad", ["", "12345", "1234567", "abcdef", "١٢٣٤٥٦", "12345x"], ids=["empty", "5", "7", "letters", "arabic", "x"]
)
def test_malformed_codes_are_refused(bad: str, now: datetime) -> None:
    assert totp.matching_step(SECRET, bad, now) is None


def test_spaces_inside_a_code_are_ignored_and_another_secret_s_code_is_refused(now: datetime) -> None:
    good = code(SECRET, now)

    assert totp.matching_step(SECRET, f"{good[:3]} {good[3:]}", now) == totp.step_at(now)
    assert totp.matching_step(OTHER_SECRET, good, now) is None


def test_the_provisioning_uri_names_the_issuer_and_the_account() -> None:
    secret = totp.new_secret()

    parsed = pyotp.parse_uri(totp.provisioning_uri(secret, "dr.who@north.test"))

    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.issuer, parsed.name, parsed.digits, parsed.interval) == (
        secret,
        "Interlude",
        "dr.who@north.test",
        6,
        30,
    )
    assert len(secret) == 32


# --- sealing ----------------------------------------------------------------------------------------------


def test_a_sealed_value_opens_for_its_owner_only_and_shows_neither_secret_nor_key() -> None:
    sealer, owner = Sealer(NEW_KEY), uuid4()

    sealed = sealer.seal("JBSWY3DPEHPK3PXP", owner=owner)

    assert sealer.open(sealed, owner=owner).plaintext == "JBSWY3DPEHPK3PXP"
    assert not sealer.open(sealed, owner=owner).stale
    assert "JBSWY3DP" not in sealed
    assert NEW_KEY not in sealed
    assert sealed != sealer.seal("JBSWY3DPEHPK3PXP", owner=owner)  # a fresh nonce each time
    with pytest.raises(SealError):
        sealer.open(sealed, owner=uuid4())


def test_a_tampered_sealed_value_does_not_open() -> None:
    sealer, owner = Sealer(NEW_KEY), uuid4()
    sealed = sealer.seal("JBSWY3DPEHPK3PXP", owner=owner)
    head, body = sealed.rsplit(".", 1)
    flipped = ("A" if body[5] != "A" else "B").join([body[:5], body[6:]])

    with pytest.raises(SealError):
        sealer.open(f"{head}.{flipped}", owner=owner)


def test_after_rotation_old_seals_open_as_stale_until_their_key_is_dropped() -> None:
    owner = uuid4()
    old_seal = Sealer(OLD_KEY).seal("JBSWY3DPEHPK3PXP", owner=owner)
    rotated = Sealer(NEW_KEY, [OLD_KEY])

    opened = rotated.open(old_seal, owner=owner)
    new_seal = rotated.seal(opened.plaintext, owner=owner)

    assert (opened.plaintext, opened.stale) == ("JBSWY3DPEHPK3PXP", True)
    assert new_seal.split(".")[1] != old_seal.split(".")[1]
    assert not Sealer(NEW_KEY).open(new_seal, owner=owner).stale
    with pytest.raises(SealError, match="no configured key"):
        Sealer(NEW_KEY).open(old_seal, owner=owner)


# --- enrolment and confirmation ---------------------------------------------------------------------------


async def _enrolled(services: Services, staff: Staff, now: datetime) -> str:
    enrollment = await services.accounts.second_factor.enrol(staff.actor, PASSWORD, now=now)
    await services.accounts.second_factor.confirm(staff.actor, code(enrollment.secret, now), now=now)
    return enrollment.secret


async def test_enrolment_stores_the_secret_sealed_and_unconfirmed(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())

    enrollment = await services.accounts.second_factor.enrol(staff.actor, PASSWORD, now=now)

    account = await Account.get(id=staff.account.id)
    assert account.totp_secret_sealed is not None
    assert enrollment.secret not in account.totp_secret_sealed
    assert account.totp_confirmed_at is None
    assert enrollment.otpauth_uri.startswith("otpauth://totp/Interlude:")
    # Unconfirmed, it is not asked for at sign-in.
    await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)


async def test_confirming_needs_a_current_code_of_the_latest_enrolment(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    second_factor = services.accounts.second_factor
    first = await second_factor.enrol(staff.actor, PASSWORD, now=now)
    second = await second_factor.enrol(staff.actor, PASSWORD, now=now)

    with pytest.raises(BadInput) as wrong:
        await second_factor.confirm(staff.actor, code(first.secret, now), now=now)
    with pytest.raises(BadInput):
        await second_factor.confirm(staff.actor, code(second.secret, now - 2 * STEP), now=now)
    account = await second_factor.confirm(staff.actor, code(second.secret, now), now=now)

    assert wrong.value.field == "otp"
    assert (account.totp_confirmed_at, account.totp_last_step) == (now, totp.step_at(now))


async def test_enrolment_and_confirmation_are_refused_in_the_wrong_state(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    second_factor = services.accounts.second_factor

    with pytest.raises(Conflict, match="no enrolment"):
        await second_factor.confirm(staff.actor, "123456", now=now)
    await _enrolled(services, staff, now)
    with pytest.raises(Conflict, match="already enabled"):
        await second_factor.enrol(staff.actor, PASSWORD, now=now)
    with pytest.raises(Conflict, match="already enabled"):
        await second_factor.confirm(staff.actor, "123456", now=now)


async def test_a_patient_cannot_enrol_a_second_factor(factory: Factory, services: Services, now: datetime) -> None:
    patient = await factory.patient(await factory.clinic())

    with pytest.raises(Forbidden):
        await services.accounts.second_factor.enrol(patient.actor, PASSWORD, now=now)
    with pytest.raises(Forbidden):
        await services.accounts.second_factor.confirm(patient.actor, "123456", now=now)
    assert (await Account.get(id=patient.account.id)).totp_secret_sealed is None


async def test_enrol_confirm_and_disable_are_audited_with_ids_only(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    secret = await _enrolled(services, staff, now)

    later = now + 2 * STEP
    await services.accounts.second_factor.disable(staff.actor, PASSWORD, code(secret, later), now=later)

    events = await AuditEvent.filter(clinic_id=clinic.id).order_by("created_at", "action")
    assert [(e.action, e.object_id, e.actor_id, e.patient_id) for e in events] == [
        ("account.totp_confirm", staff.account.id, staff.account.id, None),
        ("account.totp_enrol", staff.account.id, staff.account.id, None),
        ("account.totp_disable", staff.account.id, staff.account.id, None),
    ]


# --- sign-in with a code ----------------------------------------------------------------------------------


async def test_sign_in_asks_for_the_code_without_counting_a_failure(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    await _enrolled(services, staff, now)

    with pytest.raises(Unauthenticated) as missing:
        await services.accounts.login(staff.email, PASSWORD, ip=None, now=now + STEP)

    assert missing.value.field == "otp"
    assert not await ThrottleBucket.filter(failures__gt=0).exists()


async def test_a_code_signs_in_once_and_the_next_step_s_code_again(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrolled(services, staff, now)
    later = now + 5 * STEP

    session = await services.accounts.login(staff.email, PASSWORD, otp=code(secret, later), ip=None, now=later)
    with pytest.raises(Unauthenticated, match="not valid") as replay:
        await services.accounts.login(staff.email, PASSWORD, otp=code(secret, later), ip=None, now=later)
    await services.accounts.login(staff.email, PASSWORD, otp=code(secret, later + STEP), ip=None, now=later + STEP)

    assert session.account.id == staff.account.id
    assert replay.value.field == "otp"
    assert (await Account.get(id=staff.account.id)).totp_last_step == totp.step_at(later + STEP)


async def test_the_code_that_confirmed_cannot_sign_in_nor_an_older_one(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    enrollment = await services.accounts.second_factor.enrol(staff.actor, PASSWORD, now=now)
    # Confirmed with the next step's code (a phone clock slightly ahead): the current step is then spent too.
    await services.accounts.second_factor.confirm(staff.actor, code(enrollment.secret, now + STEP), now=now)

    for used in (now + STEP, now):
        with pytest.raises(Unauthenticated):
            await services.accounts.login(staff.email, PASSWORD, otp=code(enrollment.secret, used), ip=None, now=now)


async def test_wrong_codes_count_towards_the_account_lock(factory: Factory, services: Services, now: datetime) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrolled(services, staff, now)
    later = now + 10 * STEP
    wrong = "000000" if code(secret, later) != "000000" else "111111"

    for i in range(services.accounts.policy.per_account.max_failures):
        with pytest.raises(Unauthenticated):
            await services.accounts.login(staff.email, PASSWORD, otp=wrong, ip=None, now=later + timedelta(seconds=i))
    with pytest.raises(RateLimited):
        await services.accounts.login(staff.email, PASSWORD, otp=code(secret, later), ip=None, now=later)


async def test_a_wrong_password_never_reveals_that_a_code_is_needed(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrolled(services, staff, now)

    with pytest.raises(Unauthenticated) as refused:
        await services.accounts.login(staff.email, "not the password at all", otp=code(secret, now), ip=None, now=now)

    assert (refused.value.message, refused.value.field) == ("invalid email or password", None)


async def test_a_secret_sealed_before_a_key_rotation_still_signs_in_and_is_sealed_again(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    before = services.accounts
    enrollment = await before.second_factor.enrol(staff.actor, PASSWORD, now=now)
    await before.second_factor.confirm(staff.actor, code(enrollment.secret, now), now=now)
    old_key = services.accounts.tokens.secret_key
    rotated = AccountService(
        passwords=before.passwords, tokens=before.tokens, policy=before.policy, sealer=Sealer(NEW_KEY, [old_key])
    )
    later = now + 3 * STEP

    await rotated.login(staff.email, PASSWORD, otp=code(enrollment.secret, later), ip=None, now=later)

    sealed = (await Account.get(id=staff.account.id)).totp_secret_sealed
    assert sealed is not None
    assert Sealer(NEW_KEY).open(sealed, owner=staff.account.id).plaintext == enrollment.secret


# --- disabling and an admin's reset -----------------------------------------------------------------------


async def test_disabling_needs_the_password_and_a_fresh_code_and_failures_count(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrolled(services, staff, now)
    second_factor, later = services.accounts.second_factor, now + 4 * STEP

    with pytest.raises(BadInput) as wrong_password:
        await second_factor.disable(staff.actor, "not the password at all", code(secret, later), now=later)
    with pytest.raises(BadInput) as replayed:
        await second_factor.disable(staff.actor, PASSWORD, code(secret, now), now=now)
    account = await second_factor.disable(staff.actor, PASSWORD, code(secret, later), now=later)

    assert (wrong_password.value.field, replayed.value.field) == ("password", "otp")
    bucket = await ThrottleBucket.get(key=services.accounts.policy.per_account.key(staff.email))
    assert bucket.failures == 2
    assert not account.totp_secret_sealed
    assert (account.totp_confirmed_at, account.totp_last_step) == (None, None)
    await services.accounts.login(staff.email, PASSWORD, ip=None, now=later)
    with pytest.raises(Conflict):
        await second_factor.disable(staff.actor, PASSWORD, code(secret, later + STEP), now=later + STEP)


async def test_an_admin_resets_a_colleague_s_second_factor_and_ends_their_sessions(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    admin, clinician = await factory.staff(clinic, Role.ADMIN), await factory.staff(clinic)
    secret = await _enrolled(services, clinician, now)
    await services.accounts.login(clinician.email, PASSWORD, otp=code(secret, now + STEP), ip=None, now=now + STEP)

    account = await services.accounts.second_factor.reset(admin.actor, clinician.account.id, now=now + STEP)

    assert account.totp_confirmed_at is None
    assert not account.totp_secret_sealed
    assert not await RefreshToken.filter(account_id=clinician.account.id, revoked_at=None).exists()
    assert await AuditEvent.filter(action="account.totp_reset", object_id=clinician.account.id).count() == 1
    await services.accounts.login(clinician.email, PASSWORD, ip=None, now=now + STEP)


async def test_only_an_admin_of_the_clinic_resets_and_never_their_own(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic, other = await factory.clinic(), await factory.clinic()
    admin, clinician = await factory.staff(clinic, Role.ADMIN), await factory.staff(clinic)
    stranger = await factory.staff(other)
    patient = await factory.patient(clinic)
    reset = services.accounts.second_factor.reset

    with pytest.raises(Forbidden):
        await reset(clinician.actor, admin.account.id, now=now)
    with pytest.raises(Forbidden):
        await reset(admin.actor, admin.account.id, now=now)
    with pytest.raises(NotFound):
        await reset(admin.actor, stranger.account.id, now=now)
    with pytest.raises(NotFound):
        await reset(admin.actor, patient.account.id, now=now)


# --- a clinic that requires a second factor ---------------------------------------------------------------


async def test_staff_without_a_second_factor_get_a_session_limited_to_enrolment(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    patient = await factory.patient(clinic)
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)

    session = await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)
    patient_session = await services.accounts.login(patient.email, PASSWORD, ip=None, now=now)

    assert session.otp_enrollment_required
    with pytest.raises(EnrolmentRequired) as limited:
        services.accounts.tokens.verify(session.access_token, now=now)
    assert limited.value.code.value == "FORBIDDEN"
    assert limited.value.actor.account_id == staff.account.id
    assert not patient_session.otp_enrollment_required
    services.accounts.tokens.verify(patient_session.access_token, now=now)


async def test_after_confirming_a_refresh_gives_a_full_session(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await Clinic.filter(id=clinic.id).update(require_staff_otp=True)
    limited = await services.accounts.login(staff.email, PASSWORD, ip=None, now=now)

    await _enrolled(services, staff, now)
    full = await services.accounts.refresh(limited.refresh_token, now=now + STEP)

    assert not full.otp_enrollment_required
    assert services.accounts.tokens.verify(full.access_token, now=now + STEP).account_id == staff.account.id


# --- the password to enrol, and the step-up check ---------------------------------------------------------


async def test_enrolling_needs_the_password_and_wrong_ones_count_until_locked(
    factory: Factory, services: Services, now: datetime
) -> None:
    """A stolen session alone must not put the thief's authenticator on the account."""
    staff = await factory.staff(await factory.clinic())
    second_factor, rule = services.accounts.second_factor, services.accounts.policy.per_account

    with pytest.raises(BadInput) as wrong:
        await second_factor.enrol(staff.actor, "not the password at all", now=now)
    assert wrong.value.field == "password"
    assert (await Account.get(id=staff.account.id)).totp_secret_sealed is None
    for _ in range(rule.max_failures - 1):
        with pytest.raises(BadInput):
            await second_factor.enrol(staff.actor, "still not the password", now=now)
    with pytest.raises(RateLimited):
        await second_factor.enrol(staff.actor, PASSWORD, now=now)
    await second_factor.enrol(staff.actor, PASSWORD, now=now + rule.lock)


async def test_the_step_up_asks_for_a_code_once_a_second_factor_is_enabled(
    factory: Factory, services: Services, now: datetime
) -> None:
    staff = await factory.staff(await factory.clinic())
    secret = await _enrolled(services, staff, now)
    confirm, rule = services.accounts.confirm_identity, services.accounts.policy.per_account
    later = now + 2 * STEP
    wrong = "000000" if code(secret, later) != "000000" else "111111"
    refusals = []

    for password, otp in [(PASSWORD, None), (PASSWORD, wrong), ("not the password", code(secret, later))]:
        with pytest.raises(BadInput) as refused:
            await confirm(staff.actor, password, otp, now=later)
        refusals.append(refused.value.field)
    account = await confirm(staff.actor, PASSWORD, code(secret, later), now=later)
    with pytest.raises(BadInput) as replayed:
        await confirm(staff.actor, PASSWORD, code(secret, later), now=later)

    assert refusals == ["otp", "otp", "password"]
    assert (account.id, replayed.value.field) == (staff.account.id, "otp")
    # The missing code was no guess; the wrong code, the wrong password and the replay were.
    assert (await ThrottleBucket.get(key=rule.key(staff.email))).failures == 3


# --- a secret no configured key opens, and re-sealing after a rotation ------------------------------------

RETIRED_KEY = "retired-installation-secret-key-that-is-long-03"


def _with_sealer(services: Services, sealer: Sealer) -> AccountService:
    before = services.accounts
    return AccountService(passwords=before.passwords, tokens=before.tokens, policy=before.policy, sealer=sealer)


async def test_a_secret_no_configured_key_opens_asks_for_an_admin_reset_never_internal(
    factory: Factory, services: Services, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    """The previous key dropped before every secret was sealed again: sign-in, disabling, the step-up and
    confirming answer UNAUTHENTICATED on `otp`, and the log names the account by id only."""
    clinic = await factory.clinic()
    enabled, enrolling = await factory.staff(clinic), await factory.staff(clinic)
    secret = await _enrolled(services, enabled, now)
    pending = await services.accounts.second_factor.enrol(enrolling.actor, PASSWORD, now=now)
    dropped = _with_sealer(services, Sealer(NEW_KEY))
    later = now + 3 * STEP
    caplog.set_level(logging.DEBUG, logger="interlude")
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: dropped.login(enabled.email, PASSWORD, otp=code(secret, later), ip=None, now=later),
        lambda: dropped.second_factor.disable(enabled.actor, PASSWORD, code(secret, later), now=later),
        lambda: dropped.confirm_identity(enabled.actor, PASSWORD, code(secret, later), now=later),
        lambda: dropped.second_factor.confirm(enrolling.actor, code(pending.secret, later), now=later),
    ]
    refusals = []

    for call in calls:
        with pytest.raises(Unauthenticated) as refused:
            await call()
        refusals.append(refused.value)

    assert [r.field for r in refusals] == ["otp"] * 4
    assert all("admin" in r.message for r in refusals[:3])
    assert "enrollTotp" in refusals[3].message
    logged = [r for r in caplog.records if r.getMessage() == "account.totp_unsealable"]
    ids = [str(enabled.account.id)] * 3 + [str(enrolling.account.id)]
    assert [(r.levelname, r.__dict__["account_id"]) for r in logged] == [("WARNING", i) for i in ids]
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    for private in (enabled.email, enrolling.email, secret, pending.secret):
        assert private not in text
    # Not guesses: nothing counted against the account.
    assert not await ThrottleBucket.filter(failures__gt=0).exists()


async def test_resealing_moves_every_secret_to_the_current_key_and_counts_the_unopenable(
    factory: Factory, services: Services, now: datetime
) -> None:
    clinic = await factory.clinic()
    moved, current, lost = await factory.staff(clinic), await factory.staff(clinic), await factory.staff(clinic)
    await factory.staff(clinic)  # no second factor: not counted
    secret = await _enrolled(services, moved, now)  # sealed under the installation's key, about to be the old one
    for staff, key in ((current, NEW_KEY), (lost, RETIRED_KEY)):
        sealed = Sealer(key).seal(OTHER_SECRET, owner=staff.account.id)
        await Account.filter(id=staff.account.id).update(totp_secret_sealed=sealed, totp_confirmed_at=now)
    rotated = _with_sealer(services, Sealer(NEW_KEY, [services.accounts.tokens.secret_key]))

    found = await rotated.second_factor.reseal_all(batch=2)  # two pages
    again = await rotated.second_factor.reseal_all()

    assert (found.resealed, found.current, found.unopenable) == (1, 1, [lost.account.id])
    assert (again.resealed, again.current, again.unopenable) == (0, 2, [lost.account.id])
    # The old key can go now: the moved secret opens under the new key alone, and still signs in.
    later = now + 2 * STEP
    session = await _with_sealer(services, Sealer(NEW_KEY)).login(
        moved.email, PASSWORD, otp=code(secret, later), ip=None, now=later
    )
    assert session.account.id == moved.account.id
