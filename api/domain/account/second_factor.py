"""TOTP second factor for clinic staff: enrol, confirm, disable, an admin's reset, checking a code at sign-in, the
clinic's requirement, and the step-up check (password, and a code once enabled) that guards irreversible and
security-weakening actions.

A secret is stored sealed (sealing.py) from enrolment on and counts only once a first code has confirmed it. Every
accepted code records its time step, and a step at or before the recorded one is refused: a code works once.
Audit events name the account only; secrets and codes appear nowhere but in the enrolment answer to its owner.

A secret sealed under a key no longer configured cannot be opened by anything the user types: sign-in, confirming
and the step-up answer UNAUTHENTICATED (field `otp`) asking for an admin's reset, and log `account.totp_unsealable`
with the account id. `reseal_all` (the `interlude reseal-secrets` command) seals every secret under the current key
after a rotation, so that the previous key can be dropped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from api.domain.account import totp
from api.domain.account.models import Account, Clinic, RefreshToken
from api.domain.account.passwords import Passwords
from api.domain.account.sealing import Opened, Sealer, SealError
from api.domain.account.throttle import Throttle, ThrottleRule
from api.domain.actor import Actor, Role
from api.domain.audit import service as audit
from api.domain.errors import BadInput, Conflict, Forbidden, NotFound, Unauthenticated

log = logging.getLogger("interlude.accounts")

UNSEALABLE = "your second factor can no longer be checked; ask a clinic admin to reset it, then enrol again"
UNSEALABLE_ENROLMENT = "this enrolment can no longer be checked; start again with enrollTotp"
RESEAL_BATCH = 500
ResealOutcome = Literal["resealed", "current", "unopenable"]


@dataclass(frozen=True)
class TotpEnrollment:
    """Shown once, to the account's owner: what their authenticator app needs."""

    secret: str
    otpauth_uri: str
    issuer: str


@dataclass(frozen=True)
class Resealed:
    """What `reseal_all` found: secrets sealed again under the current key, already under it, and those no
    configured key opens (their accounts need an admin's reset)."""

    resealed: int
    current: int
    unopenable: list[UUID]


class SecondFactor:
    def __init__(self, *, sealer: Sealer, passwords: Passwords, throttle: Throttle, rule: ThrottleRule) -> None:
        self.sealer = sealer
        self.passwords = passwords
        self.throttle = throttle
        # Wrong passwords and codes here count against the same key as failed sign-ins.
        self.rule = rule

    async def enrol(self, actor: Actor, password: str, *, now: datetime) -> TotpEnrollment:
        """A new secret, unconfirmed; it replaces an earlier unconfirmed one. Needs the password: a stolen session
        alone must not put the thief's authenticator on the account."""
        account = await _own_staff_account(actor)
        if account.totp_confirmed_at is not None:
            raise Conflict("a second factor is already enabled; disable it before enrolling another")
        await self._confirm_identity(account, password, None, now=now)
        secret = totp.new_secret()
        async with in_transaction() as conn:
            # Conditional: a confirmation racing this enrolment must not end up confirming the other secret.
            replaced = await (
                Account.filter(id=account.id, totp_confirmed_at=None)
                .using_db(conn)
                .update(totp_secret_sealed=self.sealer.seal(secret, owner=account.id), totp_last_step=None)
            )
            if not replaced:
                raise Conflict("a second factor is already enabled; disable it before enrolling another")
            await audit.record(
                actor, "account.totp_enrol", [], now=now, object_id=account.id, write=True, using_db=conn
            )
        return TotpEnrollment(secret, totp.provisioning_uri(secret, account.email), totp.ISSUER)

    async def confirm(self, actor: Actor, code: str, *, now: datetime) -> Account:
        account = await _own_staff_account(actor)
        if account.totp_confirmed_at is not None:
            raise Conflict("the second factor is already enabled")
        if not account.totp_secret_sealed:
            raise Conflict("no enrolment to confirm; start with enrollTotp")
        opened = self._open(account, account.totp_secret_sealed, UNSEALABLE_ENROLMENT)
        step = totp.matching_step(opened.plaintext, code, now)
        if step is None:
            raise BadInput("otp", "is not the current code of the authenticator app")
        async with in_transaction() as conn:
            confirmed = await (
                Account.filter(id=account.id, totp_confirmed_at=None, totp_secret_sealed=account.totp_secret_sealed)
                .using_db(conn)
                .update(totp_confirmed_at=now, totp_last_step=step)
            )
            if not confirmed:
                raise Conflict("the enrolment changed meanwhile; start again with enrollTotp")
            await audit.record(
                actor, "account.totp_confirm", [], now=now, object_id=account.id, write=True, using_db=conn
            )
        return await Account.get(id=account.id)

    async def disable(self, actor: Actor, password: str, code: str, *, now: datetime) -> Account:
        """Needs the password and a current code: a stolen session alone cannot remove the second factor."""
        account = await _own_staff_account(actor)
        if not account.totp_secret_sealed:
            raise Conflict("no second factor is enabled")
        await self._confirm_identity(account, password, code, now=now)
        async with in_transaction() as conn:
            await _clear(account.id, conn)
            await audit.record(
                actor, "account.totp_disable", [], now=now, object_id=account.id, write=True, using_db=conn
            )
        return await Account.get(id=account.id)

    async def reset(self, actor: Actor, account_id: UUID, *, now: datetime) -> Account:
        """An admin removes a colleague's second factor (a lost phone) and ends that colleague's sessions. The
        colleague signs in with their password and, where the clinic requires it, enrols again."""
        if actor.role is not Role.ADMIN:
            raise Forbidden("only clinic admins may reset a second factor")
        if account_id == actor.account_id:
            raise Forbidden("use disableTotp, with your password and a code, for your own account")
        account = await Account.get_or_none(id=account_id, clinic_id=actor.clinic_id)
        if account is None or account.role is Role.PATIENT:
            raise NotFound("account", field="account_id")
        async with in_transaction() as conn:
            await _clear(account.id, conn)
            await RefreshToken.filter(account_id=account.id, revoked_at=None).using_db(conn).update(revoked_at=now)
            await audit.record(
                actor, "account.totp_reset", [], now=now, object_id=account.id, write=True, using_db=conn
            )
        return await Account.get(id=account.id)

    async def accept_code(self, account: Account, code: str, *, now: datetime) -> bool:
        """True once per time step for a valid code, recording the step; a secret sealed under a previous key is
        sealed again under the current one."""
        if not account.totp_secret_sealed:
            return False
        opened = self._open(account, account.totp_secret_sealed, UNSEALABLE)
        step = totp.matching_step(opened.plaintext, code, now)
        if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
            return False
        changes: dict[str, object] = {"totp_last_step": step}
        if opened.stale:
            changes["totp_secret_sealed"] = self.sealer.seal(opened.plaintext, owner=account.id)
        # Conditional on the step, so that of two sign-ins racing with one code exactly one is accepted.
        fresh = Q(totp_last_step=None) | Q(totp_last_step__lt=step)
        accepted = await Account.filter(fresh, id=account.id).update(**changes)
        return bool(accepted)

    def _open(self, account: Account, sealed: str, message: str) -> Opened:
        try:
            return self.sealer.open(sealed, owner=account.id)
        except SealError as exc:
            # Its key is no longer configured (or the value was altered): no code the user types can be checked, and
            # an error they can act on beats INTERNAL. The id only: the operator finds the account, nobody its email.
            log.warning("account.totp_unsealable", extra={"account_id": str(account.id)})
            raise Unauthenticated(message, field="otp") from exc

    async def confirm_identity(
        self, actor: Actor, password: str, otp: str | None, *, now: datetime, field: str = "password"
    ) -> Account:
        """Step-up for irreversible or security-weakening actions: the actor's own password and, once they have a
        second factor, a current code (spent: a code works once). A stolen access token alone is not enough.
        BAD_USER_INPUT naming `field` (the password's input) or `otp`; each wrong password or code counts on the
        account's sign-in throttle key, and while it is locked the answer is RATE_LIMITED whatever is typed. The
        account on success."""
        account = await _own_account(actor)
        return await self._confirm_identity(account, password, otp, now=now, field=field)

    async def _confirm_identity(
        self, account: Account, password: str, otp: str | None, *, now: datetime, field: str = "password"
    ) -> Account:
        # Before any transaction: a hash costs tens of milliseconds, and SQLite has one connection.
        key = self.rule.key(account.email)
        await self.throttle.check([key], now)
        if not await self.passwords.verify(account.password_hash, password):
            await self.throttle.fail(self.rule, key, now)
            raise BadInput(field, "is not your password")
        if account.totp_confirmed_at is None:
            return account
        if not otp:
            # Not a guess: nothing to count.
            raise BadInput("otp", "enter the current code of the authenticator app")
        if not await self.accept_code(account, otp, now=now):
            await self.throttle.fail(self.rule, key, now)
            raise BadInput("otp", "is not the current code of the authenticator app")
        return account

    async def reseal_all(self, *, batch: int = RESEAL_BATCH) -> Resealed:
        """Operator action (`interlude reseal-secrets`), after a key rotation: every stored secret sealed again under
        the current key, in keyset batches. Once none is left under the previous key, that key can go (after one
        access-token lifetime, for its tokens)."""
        found: dict[ResealOutcome, list[UUID]] = {"resealed": [], "current": [], "unopenable": []}
        after: UUID | None = None
        while True:
            rows = await _sealed_secrets(after, batch)
            for owner, sealed in rows:
                found[await self._reseal(owner, sealed)].append(owner)
            if len(rows) < batch:
                return Resealed(len(found["resealed"]), len(found["current"]), found["unopenable"])
            after = rows[-1][0]

    async def _reseal(self, owner: UUID, sealed: str) -> ResealOutcome:
        try:
            opened = self.sealer.open(sealed, owner=owner)
        except SealError:
            return "unopenable"
        if not opened.stale:
            return "current"
        fresh = self.sealer.seal(opened.plaintext, owner=owner)
        # Only if unchanged meanwhile; if changed (a sign-in sealed it again, or it was replaced), it is current.
        changed = await Account.filter(id=owner, totp_secret_sealed=sealed).update(totp_secret_sealed=fresh)
        return "resealed" if changed else "current"

    async def clinic_security(self, actor: Actor) -> Clinic:
        return await _admin_clinic(actor)

    async def update_clinic_security(
        self, actor: Actor, *, require_staff_otp: bool, password: str, otp: str | None, now: datetime
    ) -> Clinic:
        """Takes effect at each staff member's next sign-in or session refresh. Needs the admin's password (and
        code, once enabled): the clinic's sign-in requirements are not a stolen session's to weaken."""
        clinic = await _admin_clinic(actor)
        await self.confirm_identity(actor, password, otp, now=now)
        async with in_transaction() as conn:
            await Clinic.filter(id=clinic.id).using_db(conn).update(require_staff_otp=require_staff_otp)
            await audit.record(
                actor, "clinic.security_update", [], now=now, object_id=clinic.id, write=True, using_db=conn
            )
        return await Clinic.get(id=clinic.id)


async def enrolment_required(account: Account, using_db: BaseDBAsyncClient | None = None) -> bool:
    """A staff member without a confirmed second factor, in a clinic that requires one."""
    if account.role is Role.PATIENT or account.totp_confirmed_at is not None:
        return False
    return await Clinic.filter(id=account.clinic_id, require_staff_otp=True).using_db(using_db).exists()


async def _sealed_secrets(after: UUID | None, batch: int) -> list[tuple[UUID, str]]:
    query = Account.filter(totp_secret_sealed__not_isnull=True).order_by("id").limit(batch)
    rows = await (query if after is None else query.filter(id__gt=after)).values_list("id", "totp_secret_sealed")
    return [(UUID(str(account_id)), str(sealed)) for account_id, sealed in rows]


async def _own_staff_account(actor: Actor) -> Account:
    if not actor.is_staff:
        raise Forbidden("a second factor is for clinic staff accounts")
    return await _own_account(actor)


async def _own_account(actor: Actor) -> Account:
    account = await Account.get_or_none(id=actor.account_id, clinic_id=actor.clinic_id)
    if account is None:
        raise NotFound("account")
    return account


async def _admin_clinic(actor: Actor) -> Clinic:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only clinic admins may manage the clinic's security settings")
    return await Clinic.get(id=actor.clinic_id)


async def _clear(account_id: UUID, conn: BaseDBAsyncClient) -> None:
    await (
        Account.filter(id=account_id)
        .using_db(conn)
        .update(totp_secret_sealed=None, totp_confirmed_at=None, totp_last_step=None)
    )
