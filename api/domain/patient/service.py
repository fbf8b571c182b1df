"""Inviting and registering patients; the clinician's patient list."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.account.emails import check_email
from api.domain.account.models import Account
from api.domain.account.passwords import check_password_policy
from api.domain.account.service import AccountService, Session
from api.domain.account.throttle import ThrottleRule
from api.domain.account.tokens import sha256_hex
from api.domain.actor import Actor, Role
from api.domain.alert.visibility import unreachable_patients
from api.domain.errors import BadInput, Conflict
from api.domain.paging import Page, after_filter, make_page, page_size, text_key
from api.domain.patient.access import reachable_patient, require_staff
from api.domain.patient.models import Invite, Patient, PatientStatus
from api.domain.prompt.plans import default_plan
from api.domain.prompt.scheduling import SchedulingPolicy, replan
from api.domain.timezones import check_timezone

# Unambiguous when read aloud or typed from paper: no 0/O, 1/I/L.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 16  # 31^16 ≈ 2^79
MAX_NAME = 200


@dataclass(frozen=True)
class IssuedInvite:
    code: str
    expires_at: datetime
    patient: Patient


def normalize_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).upper()


def _invalid_code() -> BadInput:
    # One answer for unknown, used and expired codes: which of them a code is stays unknown to a guesser.
    return BadInput("invite_code", "is not valid or has expired")


class PatientService:
    def __init__(
        self,
        *,
        accounts: AccountService,
        invite_ttl: timedelta,
        register_rule: ThrottleRule,
        scheduling: SchedulingPolicy,
    ) -> None:
        self.accounts = accounts
        self.invite_ttl = invite_ttl
        self.register_rule = register_rule
        self.scheduling = scheduling

    async def invite(
        self, actor: Actor, *, display_name: str, email: str | None, timezone: str, now: datetime
    ) -> IssuedInvite:
        require_staff(actor)
        name = display_name.strip()
        # The lower-cased copy must fit too: lower() lengthens some letters ("İ" becomes two code points).
        if not 1 <= len(name) <= MAX_NAME or len(name.lower()) > MAX_NAME:
            raise BadInput("display_name", f"must be 1 to {MAX_NAME} characters")
        check_timezone(timezone)
        email_hash = sha256_hex(check_email(email)) if email is not None else None
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        async with in_transaction() as conn:
            patient = await Patient.create(
                clinic_id=actor.clinic_id,
                display_name=name,
                search_name=name.lower(),
                timezone=timezone,
                status=PatientStatus.INVITED,
                created_at=now,
                using_db=conn,
            )
            invite = await Invite.create(
                clinic_id=actor.clinic_id,
                patient_id=patient.id,
                created_by_id=actor.account_id,
                code_hash=sha256_hex(code),
                email_hash=email_hash,
                expires_at=now + self.invite_ttl,
                created_at=now,
                using_db=conn,
            )
            await audit.record(
                actor, "patient.invite", [patient.id], now=now, object_id=invite.id, write=True, using_db=conn
            )
        pretty = "-".join(code[i : i + 4] for i in range(0, CODE_LENGTH, 4))
        return IssuedInvite(code=pretty, expires_at=invite.expires_at, patient=patient)

    async def register(
        self, *, invite_code: str, email: str, password: str, timezone: str | None, ip: str | None, now: datetime
    ) -> Session:
        throttle_key = self.register_rule.key(ip or "unknown")
        await self.accounts.throttle.check([throttle_key], now)
        email = check_email(email)
        check_password_policy(password, email=email)
        if timezone is not None:
            check_timezone(timezone)
        invite = await Invite.get_or_none(code_hash=sha256_hex(normalize_code(invite_code)))
        if invite is None or invite.used_at is not None or invite.expires_at <= now:
            # Failed codes count against the address: codes must not be guessable by volume.
            await self.accounts.throttle.fail(self.register_rule, throttle_key, now)
            raise _invalid_code()
        if invite.email_hash is not None and invite.email_hash != sha256_hex(email):
            # Only a holder of a valid code gets this far, so saying which field is wrong reveals nothing.
            raise BadInput("email", "is not the email this invite was issued for")
        password_hash = await self.accounts.passwords.hash(password)
        try:
            async with in_transaction() as conn:
                # Consume first, conditionally: of two registrations racing on one code exactly one proceeds.
                consumed = await Invite.filter(id=invite.id, used_at=None).using_db(conn).update(used_at=now)
                if not consumed:
                    raise _invalid_code()
                patient = await Patient.filter(id=invite.patient_id).select_for_update().using_db(conn).get()
                if patient.status is not PatientStatus.INVITED:
                    raise _invalid_code()
                account = await Account.create(
                    clinic_id=invite.clinic_id,
                    role=Role.PATIENT,
                    email=email,
                    password_hash=password_hash,
                    created_at=now,
                    using_db=conn,
                )
                patient.account_id = account.id
                patient.status = PatientStatus.ACTIVE
                patient.activated_at = now
                if timezone is not None:
                    patient.timezone = timezone
                # Every patient starts on the clinic's default plan; a clinician may enrol them in another.
                plan = await default_plan(invite.clinic_id, now=now, using_db=conn)
                patient.plan_family_id, patient.enrolled_at = plan.family_id, now
                await patient.save(using_db=conn)
                session = await self.accounts.open_session(account, now=now, using_db=conn)
        except IntegrityError as exc:
            raise Conflict("an account with this email already exists", field="email") from exc
        await replan([patient], self.scheduling, now=now)
        return session

    async def get(self, actor: Actor, patient_id: UUID, *, now: datetime) -> Patient:
        patient = await reachable_patient(actor, patient_id)
        await audit.record(actor, "patient.read", [patient.id], now=now)
        return patient

    async def search(
        self,
        actor: Actor,
        *,
        first: int | None,
        after: str | None,
        search: str | None,
        status: PatientStatus | None,
        now: datetime,
    ) -> Page[Patient]:
        require_staff(actor)
        size = page_size(first)
        query = Patient.filter(clinic_id=actor.clinic_id)
        if status is PatientStatus.ERASED:
            # Erased patients are listed only when asked for, and only those whose record staff still reach
            # (pseudonymised): the alert list's rule, so that every listed alert's patient is listed here too.
            query = query.exclude(id__in=unreachable_patients(actor.clinic_id))
        else:
            query = query.exclude(status=PatientStatus.ERASED)
        if search:
            # Tortoise's `contains` escapes %, _ and backslash (LIKE … ESCAPE '\\'): the search is taken literally.
            query = query.filter(search_name__contains=search.strip().lower()[:MAX_NAME])
        if status is not None:
            query = query.filter(status=status)
        page_after = after_filter("search_name", after, text_key(MAX_NAME), descending=False)
        rows = await query.filter(page_after).order_by("search_name", "id").limit(size + 1)
        page = make_page(rows, size, lambda p: (p.search_name, p.id))
        if page.items:
            await audit.record(actor, "patient.list", [p.id for p in page.items], now=now)
        return page

    async def by_account_ids(self, actor: Actor, account_ids: list[UUID]) -> dict[UUID, Patient]:
        """For loaders: the patient profile behind each account the actor may reach."""
        if actor.is_patient:
            account_ids = [i for i in account_ids if i == actor.account_id]
        rows = await Patient.filter(account_id__in=account_ids, clinic_id=actor.clinic_id).exclude(
            status=PatientStatus.ERASED
        )
        return {p.account_id: p for p in rows if p.account_id is not None}
