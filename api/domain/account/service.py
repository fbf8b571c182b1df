"""Sign-in, session rotation and sign-out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid4

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain.account.emails import check_email
from api.domain.account.models import Account, Clinic, RefreshToken
from api.domain.account.passwords import Passwords, check_password_policy
from api.domain.account.throttle import Throttle, ThrottleRule
from api.domain.account.tokens import AccessTokens, new_opaque_token, sha256_hex
from api.domain.actor import Actor, Role
from api.domain.errors import BadInput, Conflict, NotFound, Unauthenticated
from api.domain.patient.models import Patient, PatientStatus

INVALID_LOGIN = "invalid email or password"


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_at: datetime
    account: Account
    # The patient profile of a patient account, read with the session: the caller has no actor yet to load it.
    patient: Patient | None = None


@dataclass(frozen=True)
class AccountPolicy:
    refresh_ttl: timedelta
    per_account: ThrottleRule
    per_address: ThrottleRule


class AccountService:
    def __init__(self, *, passwords: Passwords, tokens: AccessTokens, policy: AccountPolicy) -> None:
        self.passwords = passwords
        self.tokens = tokens
        self.policy = policy
        self.throttle = Throttle()

    async def login(self, email: str, password: str, *, ip: str | None, now: datetime) -> Session:
        email = email.strip().lower()
        keys = [self.policy.per_account.key(email), self.policy.per_address.key(ip or "unknown")]
        await self.throttle.check(keys, now)
        account = await Account.get_or_none(email=email)
        # Verify even when the account is missing: the answer and its timing must not reveal whether it exists.
        ok = await self.passwords.verify(account.password_hash if account else None, password)
        if account is None or not ok or not account.is_active or not await self._may_sign_in(account):
            await self.throttle.fail(self.policy.per_account, keys[0], now)
            await self.throttle.fail(self.policy.per_address, keys[1], now)
            raise Unauthenticated(INVALID_LOGIN)
        await self.throttle.reset(keys[0])
        account.last_login_at = now
        await account.save(update_fields=["last_login_at"])
        return await self.open_session(account, now=now)

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
        access, expires_at = self.tokens.issue(
            account_id=account.id,
            role=account.role,
            clinic_id=account.clinic_id,
            patient_id=patient.id if patient else None,
            now=now,
        )
        return Session(
            access_token=access, refresh_token=refresh, expires_at=expires_at, account=account, patient=patient
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
        check_password_policy(password)
        if not await Clinic.exists(id=clinic_id):
            raise NotFound("clinic", field="clinic")
        password_hash = await self.passwords.hash(password)
        try:
            return await Account.create(
                clinic_id=clinic_id, role=role, email=email, password_hash=password_hash, created_at=now
            )
        except IntegrityError as exc:
            raise Conflict("an account with this email already exists", field="email") from exc

    async def by_ids(self, actor: Actor, account_ids: list[UUID]) -> dict[UUID, Account]:
        """For loaders: staff reach their clinic's accounts; anyone else only their own."""
        if not actor.is_staff:
            account_ids = [i for i in account_ids if i == actor.account_id]
        return {a.id: a for a in await Account.filter(id__in=account_ids, clinic_id=actor.clinic_id)}

    async def me(self, actor: Actor) -> Account:
        account = await Account.get_or_none(id=actor.account_id, clinic_id=actor.clinic_id)
        if account is None:
            raise NotFound("account")
        return account


_SIGN_IN_STATUSES = (PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.DISCHARGED)
