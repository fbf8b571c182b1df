"""Sign-in (with a second factor where enabled or required), session rotation, sign-out, password change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.account.emails import MAX_EMAIL, check_email
from api.domain.account.models import Account, Clinic, RefreshToken
from api.domain.account.passwords import Passwords, check_password_policy
from api.domain.account.sealing import Sealer
from api.domain.account.second_factor import SecondFactor, enrolment_required
from api.domain.account.throttle import Throttle, ThrottleRule
from api.domain.account.tokens import AccessTokens, new_opaque_token, sha256_hex
from api.domain.actor import Actor, Role
from api.domain.audit import service as audit
from api.domain.errors import BadInput, Conflict, NotFound, Unauthenticated
from api.domain.patient.models import Patient, PatientStatus

INVALID_LOGIN = "invalid email or password"
OTP_REQUIRED = "enter the 6-digit code from your authenticator app"
INVALID_OTP = "the code is not valid; enter the current code from your authenticator app"


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_at: datetime
    account: Account
    # The patient profile of a patient account, read with the session: the caller has no actor yet to load it.
    patient: Patient | None = None
    # The clinic requires a second factor this staff member has not enrolled: the session may only enrol one.
    otp_enrollment_required: bool = False


@dataclass(frozen=True)
class AccountPolicy:
    refresh_ttl: timedelta
    per_account: ThrottleRule
    per_address: ThrottleRule


class AccountService:
    def __init__(self, *, passwords: Passwords, tokens: AccessTokens, policy: AccountPolicy, sealer: Sealer) -> None:
        self.passwords = passwords
        self.tokens = tokens
        self.policy = policy
        self.throttle = Throttle()
        self.second_factor = SecondFactor(
            sealer=sealer, passwords=passwords, throttle=self.throttle, rule=policy.per_account
        )

    async def login(
        self, email: str, password: str, *, otp: str | None = None, ip: str | None, now: datetime
    ) -> Session:
        email = email.strip().lower()
        keys = [self.policy.per_account.key(email), self.policy.per_address.key(ip or "unknown")]
        await self.throttle.check(keys, now)
        # An address longer than the column is no account's (and the ORM refuses to look it up): it fails as an
        # unknown one does, counted and timed the same.
        account = await Account.get_or_none(email=email) if len(email) <= MAX_EMAIL else None
        # Verify even when the account is missing: the answer and its timing must not reveal whether it exists.
        ok = await self.passwords.verify(account.password_hash if account else None, password)
        if account is None or not ok or not account.is_active or not await self._may_sign_in(account):
            await self._fail(keys, now)
            raise Unauthenticated(INVALID_LOGIN)
        if account.totp_confirmed_at is not None:
            # Only a caller who knows the password learns that a code is needed: standard, and unavoidable.
            if not otp:
                raise Unauthenticated(OTP_REQUIRED, field="otp")
            if not await self.second_factor.accept_code(account, otp, now=now):
                await self._fail(keys, now)
                raise Unauthenticated(INVALID_OTP, field="otp")
        await self.throttle.reset(keys[0])
        account.last_login_at = now
        await account.save(update_fields=["last_login_at"])
        return await self.open_session(account, now=now)

    async def _fail(self, keys: list[str], now: datetime) -> None:
        await self.throttle.fail(self.policy.per_account, keys[0], now)
        await self.throttle.fail(self.policy.per_address, keys[1], now)

    async def _may_sign_in(self, account: Account) -> bool:
        if account.role is not Role.PATIENT:
            return True
        return await Patient.filter(account_id=account.id, status__in=_SIGN_IN_STATUSES).exists()

    async def open_session(
        self,
        account: Account,
        *,
        now: datetime,
        family_id: UUID | None = None,
        using_db: BaseDBAsyncClient | None = None,
    ) -> Session:
        refresh = new_opaque_token()
        await RefreshToken.create(
            account_id=account.id,
            family_id=family_id or uuid4(),
            token_hash=sha256_hex(refresh),
            created_at=now,
            expires_at=now + self.policy.refresh_ttl,
            using_db=using_db,
        )
        patient = await Patient.get_or_none(account_id=account.id, using_db=using_db)
        # Judged at every sign-in and refresh: a requirement switched on reaches sessions at their next refresh,
        # and a refresh after confirming a second factor ends the restriction.
        restricted = await enrolment_required(account, using_db)
        access, expires_at = self.tokens.issue(
            account_id=account.id,
            role=account.role,
            clinic_id=account.clinic_id,
            patient_id=patient.id if patient else None,
            now=now,
            enrolment_only=restricted,
        )
        return Session(
            access_token=access,
            refresh_token=refresh,
            expires_at=expires_at,
            account=account,
            patient=patient,
            otp_enrollment_required=restricted,
        )

    async def refresh(self, refresh_token: str, *, now: datetime) -> Session:
        async with in_transaction() as conn:
            token = await RefreshToken.get_or_none(token_hash=sha256_hex(refresh_token), using_db=conn)
            if token is None or token.revoked_at is not None or token.expires_at <= now:
                raise Unauthenticated("refresh token is not valid")
            # Conditional update: of two concurrent refreshes with one token, exactly one wins.
            won = await RefreshToken.filter(id=token.id, rotated_at=None).using_db(conn).update(rotated_at=now)
            account = await Account.get(id=token.account_id, using_db=conn)
            if won and account.is_active and await self._may_sign_in(account):
                return await self.open_session(account, now=now, family_id=token.family_id, using_db=conn)
        # A rotated token presented again means it was copied: end every session of that family.
        await self._revoke_family(token.family_id, now)
        raise Unauthenticated("refresh token is not valid")

    async def logout(self, refresh_token: str, *, now: datetime) -> bool:
        token = await RefreshToken.get_or_none(token_hash=sha256_hex(refresh_token))
        if token is None:
            return False
        await self._revoke_family(token.family_id, now)
        return True

    async def _revoke_family(self, family_id: UUID, now: datetime) -> None:
        await RefreshToken.filter(family_id=family_id, revoked_at=None).update(revoked_at=now)

    async def create_clinic(self, name: str, *, now: datetime) -> Clinic:
        """Operator action (CLI): a new tenant."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise BadInput("name", "must be 1 to 200 characters")
        return await Clinic.create(name=name, created_at=now)

    async def create_staff(self, clinic_id: UUID, role: Role, email: str, password: str, *, now: datetime) -> Account:
        """Operator action (CLI): a clinician or admin account."""
        if role not in (Role.CLINICIAN, Role.ADMIN):
            raise BadInput("role", "must be clinician or admin")
        email = check_email(email)
        check_password_policy(password, email=email)
        if not await Clinic.exists(id=clinic_id):
            raise NotFound("clinic", field="clinic")
        password_hash = await self.passwords.hash(password)
        try:
            return await Account.create(
                clinic_id=clinic_id, role=role, email=email, password_hash=password_hash, created_at=now
            )
        except IntegrityError as exc:
            raise Conflict("an account with this email already exists", field="email") from exc

    async def confirm_identity(
        self, actor: Actor, password: str, otp: str | None, *, now: datetime, field: str = "password"
    ) -> Account:
        """The step-up check before an irreversible or security-weakening action: the actor's password and, once
        they have a second factor, a current code; failures count on the sign-in throttle (SecondFactor)."""
        return await self.second_factor.confirm_identity(actor, password, otp, now=now, field=field)

    async def change_password(
        self, actor: Actor, current_password: str, new_password: str, *, otp: str | None = None, now: datetime
    ) -> bool:
        """Any signed-in account, with its current password (and a code, once a second factor is enabled). Every
        refresh-token family of the account is revoked, the caller's own too (the token does not say which family is
        the caller's): each device signs in again with the new password once its access token expires."""
        account = await self.me(actor)
        # The policy first: a code spent on a change the policy then refuses would make the user wait for the next.
        check_password_policy(new_password, "new_password", email=account.email)
        await self.confirm_identity(actor, current_password, otp, now=now, field="current_password")
        if new_password == current_password:
            raise BadInput("new_password", "must differ from the current password")
        password_hash = await self.passwords.hash(new_password)
        async with in_transaction() as conn:
            await (
                Account.filter(id=account.id)
                .using_db(conn)
                .update(password_hash=password_hash, password_changed_at=now)
            )
            await RefreshToken.filter(account_id=account.id, revoked_at=None).using_db(conn).update(revoked_at=now)
            # Whoever changes it, a patient too: a stolen token used to take the account over must show in the trail.
            await audit.record_security_event(
                actor, "account.password_change", now=now, object_id=account.id, using_db=conn
            )
        return True

    async def by_ids(self, actor: Actor, account_ids: list[UUID]) -> dict[UUID, Account]:
        """For loaders: staff reach their clinic's accounts; anyone else only their own."""
        if not actor.is_staff:
            account_ids = [i for i in account_ids if i == actor.account_id]
        return {a.id: a for a in await Account.filter(id__in=account_ids, clinic_id=actor.clinic_id)}

    async def me(self, actor: Actor) -> Account:
        account = await Account.get_or_none(id=actor.account_id, clinic_id=actor.clinic_id)
        if account is None:
            raise NotFound("account")
        if not account.is_active:
            # A token issued before the account was closed (an erasure, a deactivated colleague) is still unexpired.
            raise Unauthenticated("this account is closed")
        return account


_SIGN_IN_STATUSES = (PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.DISCHARGED)
