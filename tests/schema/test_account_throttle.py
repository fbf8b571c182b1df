"""Login throttling: per account key (even for emails that do not exist) and per client address."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.domain.account.models import ThrottleBucket
from api.settings import Settings
from tests.factories import PASSWORD, Factory
from tests.graphql import GraphQLClient, Result

LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { accessToken } }"
WRONG = "wrong password 123"


async def _login(
    gql: GraphQLClient, email: str, password: str, *, now: datetime | None = None, ip: str = "198.51.100.1"
) -> Result:
    return await gql(LOGIN, {"email": email, "password": password}, now=now, ip=ip)


async def _fail(gql: GraphQLClient, email: str, times: int, now: datetime, ip: str = "198.51.100.1") -> None:
    for i in range(times):
        result = await _login(gql, email, WRONG, now=now + timedelta(seconds=i), ip=ip)
        assert result.codes == ["UNAUTHENTICATED"], (i, result.errors)


async def test_the_account_key_locks_after_max_failures_even_for_the_right_password(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    assert settings.login_max_failures == 5

    await _fail(gql, staff.email, settings.login_max_failures, now)
    locked = await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1))

    assert locked.data is None
    assert locked.codes == ["RATE_LIMITED"]
    # The lock is per account key: a different address does not get around it.
    other_ip = await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1), ip="192.0.2.99")
    assert other_ip.codes == ["RATE_LIMITED"]


async def test_fewer_failures_than_the_limit_do_not_lock(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)

    await _fail(gql, staff.email, settings.login_max_failures - 1, now)

    (await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1))).ok()


async def test_a_successful_login_resets_the_account_counter(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await _fail(gql, staff.email, settings.login_max_failures - 1, now)
    (await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1))).ok()

    await _fail(gql, staff.email, settings.login_max_failures - 1, now + timedelta(minutes=2))

    (await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=3))).ok()


async def test_failures_outside_the_window_do_not_add_up(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    window = timedelta(minutes=settings.login_window_minutes)
    await _fail(gql, staff.email, settings.login_max_failures - 1, now)

    await _fail(gql, staff.email, settings.login_max_failures - 1, now + window + timedelta(seconds=10))

    (await _login(gql, staff.email, PASSWORD, now=now + window + timedelta(minutes=1))).ok()


async def test_an_unknown_email_locks_exactly_like_a_real_one(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await _fail(gql, "ghost@clinic.test", settings.login_max_failures, now)
    await _fail(gql, staff.email, settings.login_max_failures, now)
    later = now + timedelta(minutes=1)

    ghost = await _login(gql, "ghost@clinic.test", PASSWORD, now=later)
    real = await _login(gql, staff.email, PASSWORD, now=later)

    assert ghost.codes == ["RATE_LIMITED"]
    assert ghost.errors == real.errors


async def test_the_lock_ends_after_the_lock_time(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    await _fail(gql, staff.email, settings.login_max_failures, now)
    locked_at = now + timedelta(seconds=settings.login_max_failures - 1)
    lock = timedelta(minutes=settings.login_lock_minutes)

    still = await _login(gql, staff.email, PASSWORD, now=locked_at + lock - timedelta(seconds=1))
    assert still.codes == ["RATE_LIMITED"]

    (await _login(gql, staff.email, PASSWORD, now=locked_at + lock)).ok()


async def test_an_address_locks_after_failures_across_many_emails(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    attacker, bystander = "203.0.113.66", "203.0.113.67"
    assert settings.login_ip_max_failures == 20
    for i in range(settings.login_ip_max_failures):
        # One failure per email: no account key gets anywhere near its own limit.
        await _fail(gql, f"guess{i}@clinic.test", 1, now + timedelta(seconds=i), ip=attacker)

    from_attacker = await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1), ip=attacker)
    from_bystander = await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1), ip=bystander)

    assert from_attacker.codes == ["RATE_LIMITED"]
    from_bystander.ok()


async def test_one_failure_short_of_the_address_limit_does_not_lock(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    for i in range(settings.login_ip_max_failures - 1):
        await _fail(gql, f"guess{i}@clinic.test", 1, now, ip="203.0.113.66")

    (await _login(gql, staff.email, PASSWORD, now=now + timedelta(minutes=1), ip="203.0.113.66")).ok()


async def test_throttle_keys_hold_neither_emails_nor_addresses(
    factory: Factory, gql: GraphQLClient, now: datetime
) -> None:
    await factory.clinic()
    await _fail(gql, "someone@clinic.test", 2, now, ip="203.0.113.66")

    keys = [bucket.key for bucket in await ThrottleBucket.all()]

    assert len(keys) == 2
    assert not any("someone" in k or "203.0.113" in k for k in keys)


async def test_a_second_lock_lasts_twice_as_long_and_a_success_resets_the_backoff(
    factory: Factory, gql: GraphQLClient, settings: Settings, now: datetime
) -> None:
    clinic = await factory.clinic()
    staff = await factory.staff(clinic)
    lock = timedelta(minutes=settings.login_lock_minutes)
    assert settings.login_lock_max_minutes >= 2 * settings.login_lock_minutes
    await _fail(gql, staff.email, settings.login_max_failures, now)
    first_ends = now + timedelta(seconds=settings.login_max_failures - 1) + lock

    await _fail(gql, staff.email, settings.login_max_failures, first_ends)
    second_locked_at = first_ends + timedelta(seconds=settings.login_max_failures - 1)

    still = await _login(gql, staff.email, PASSWORD, now=second_locked_at + 2 * lock - timedelta(seconds=1))
    assert still.codes == ["RATE_LIMITED"]
    (await _login(gql, staff.email, PASSWORD, now=second_locked_at + 2 * lock)).ok()
    # The success forgot the earlier locks: the next one lasts the base time again.
    third_at = second_locked_at + 3 * lock
    await _fail(gql, staff.email, settings.login_max_failures, third_at)
    third_locked_at = third_at + timedelta(seconds=settings.login_max_failures - 1)
    (await _login(gql, staff.email, PASSWORD, now=third_locked_at + lock)).ok()
