"""The password policy: 12 to 128 characters, not common (a bundled list of 10,000), not repetitive, not the
account's own email; applied to operator-created staff, registering patients and changing a password."""

from __future__ import annotations

from datetime import datetime

import pytest

from api.domain.account import passwords
from api.domain.account.models import Account
from api.domain.account.passwords import check_password_policy, common_passwords, is_common_password
from api.domain.actor import Role
from api.domain.errors import BadInput
from api.domain.services import Services
from tests.factories import PASSWORD, Factory


def _refusal(password: str, *, email: str | None = None, field: str = "password") -> str:
    with pytest.raises(BadInput) as refused:
        check_password_policy(password, field, email=email)
    assert refused.value.field == field
    # The message never quotes what was typed.
    assert password not in refused.value.message
    return refused.value.message


def test_the_bundled_list_has_ten_thousand_lower_case_entries_and_is_read_once() -> None:
    common = common_passwords()

    assert len(common) >= 10_000
    assert {"password", "123456", "qwerty", "iloveyou", "trustno1"} <= common
    assert all(entry == entry.lower() and entry.strip() == entry for entry in common)
    assert common_passwords() is common
    assert passwords.COMMON_PASSWORDS_FILE.stat().st_size < 200_000


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        pytest.param("a" * 11 + "b", "repetitive", id="repetitive"),
        pytest.param("Short-pass1", "at least 12", id="eleven-characters"),
        pytest.param("x" * 100 + "abcdefghijklmnopqrstuvwxyz123", "at most 128", id="129-characters"),
        pytest.param("Unbelievable", "commonly used", id="listed"),
        pytest.param("QwertyUiop1234", "commonly used", id="listed-any-case-with-digits"),
        pytest.param("Password2026!!", "commonly used", id="padded"),
        pytest.param("!!!Sunshine!!!", "commonly used", id="padded-both-ends"),
        pytest.param("monkeymonkey", "commonly used", id="repeated-entry"),
        pytest.param("dragon123dragon123", "commonly used", id="repeated-padded-entry"),
        pytest.param("121212121212", "repetitive", id="digit-pattern"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, reason: str) -> None:
    assert reason in _refusal(password)


@pytest.mark.parametrize(
    "password",
    [
        PASSWORD,
        "long-enough-password",
        "interlude-demo-pass",
        "Cobol-Compiler-1959",
        "a" * 4 + "bcde" + "x" * 120,  # 128 characters: the longest allowed
        "dragon-fruit-on-tuesday",  # contains a listed word, but is not one
        "zxcv bnm, and then some",
    ],
)
def test_reasonable_passwords_pass(password: str) -> None:
    check_password_policy(password)
    assert not is_common_password(password) or password == PASSWORD


@pytest.mark.parametrize(
    ("password", "email"),
    [
        pytest.param("Jane.Doe-2026-winter", "jane.doe@clinic.test", id="contains-local-part"),
        pytest.param("my JANE.DOE@CLINIC.TEST!", "jane.doe@clinic.test", id="contains-whole-email"),
        pytest.param("xy@b.test-and-more", "xy@b.test", id="short-local-part-but-whole-email"),
    ],
)
def test_a_password_containing_the_email_is_refused(password: str, email: str) -> None:
    assert "email" in _refusal(password, email=email)


def test_a_short_local_part_inside_a_password_is_only_chance() -> None:
    check_password_policy("the bay of all bays", email="al@bay.test")


def test_the_field_named_is_the_one_given() -> None:
    _refusal("short", field="new_password")


async def test_operator_created_staff_follow_the_policy(factory: Factory, services: Services, now: datetime) -> None:
    clinic = await factory.clinic()
    create = services.accounts.create_staff

    with pytest.raises(BadInput, match="commonly used"):
        await create(clinic.id, Role.CLINICIAN, "a@clinic.test", "Password12345", now=now)
    with pytest.raises(BadInput, match="email"):
        await create(clinic.id, Role.CLINICIAN, "marguerite@clinic.test", "Marguerite-likes-tea", now=now)

    assert not await Account.exists(clinic_id=clinic.id)


async def test_registration_refuses_a_common_password(factory: Factory, services: Services, now: datetime) -> None:
    clinic = await factory.clinic()
    inviter = await factory.staff(clinic)
    invite = await services.patients.invite(
        inviter.actor, display_name="Ada", email="ada@example.test", timezone="Europe/London", now=now
    )

    with pytest.raises(BadInput) as refused:
        await services.patients.register(
            invite_code=invite.code, email="ada@example.test", password="iloveyou1234", timezone=None, ip=None, now=now
        )

    assert refused.value.field == "password"
