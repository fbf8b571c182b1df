"""Sign-in, sessions, registration, passwords, the second factor and the clinic's sign-in requirements."""

from __future__ import annotations

import strawberry

from api.domain.account.tokens import EnrolmentRequired
from api.domain.actor import Actor
from schema.account.types import Account, AuthPayload, ClinicSecurity, TotpEnrollment
from schema.context import Context, Info
from schema.ids import parse_id


@strawberry.input
class RegisterPatientInput:
    invite_code: str
    email: str
    password: str
    timezone: str | None = strawberry.field(default=None, description="IANA zone; defaults to the invite's.")


@strawberry.input
class ClinicSecurityInput:
    require_staff_otp: bool


def enrolling_actor(ctx: Context) -> Actor:
    """The signed-in actor, or the actor of a session limited to enrolling a second factor (tokens.py). Only me,
    enrollTotp and confirmTotp ask for this; every other operation uses `require_actor`, which refuses such a
    session with FORBIDDEN."""
    if ctx.actor is None and isinstance(ctx.auth_error, EnrolmentRequired):
        return ctx.auth_error.actor
    return ctx.require_actor()


@strawberry.type
class AccountQuery:
    @strawberry.field(description="The signed-in account.")
    async def me(self, info: Info) -> Account:
        ctx = info.context
        return Account.from_model(await ctx.services.accounts.me(enrolling_actor(ctx)))

    @strawberry.field(description="Admin: the clinic's sign-in requirements.")
    async def clinic_security(self, info: Info) -> ClinicSecurity:
        ctx = info.context
        return ClinicSecurity.from_model(await ctx.services.accounts.second_factor.clinic_security(ctx.require_actor()))


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description="Throttled per account and per address; the answer never says whether an email exists."
    )
    async def login(self, info: Info, email: str, password: str, otp: str | None = None) -> AuthPayload:
        ctx = info.context
        session = await ctx.services.accounts.login(email, password, otp=otp, ip=ctx.meta.ip, now=ctx.now)
        return AuthPayload.from_session(session)

    @strawberry.mutation(
        description="Rotates the refresh token; presenting a rotated token ends every session of its family."
    )
    async def refresh_session(self, info: Info, refresh_token: str) -> AuthPayload:
        ctx = info.context
        return AuthPayload.from_session(await ctx.services.accounts.refresh(refresh_token, now=ctx.now))

    @strawberry.mutation(description="Ends the session family of this refresh token.")
    async def logout(self, info: Info, refresh_token: str) -> bool:
        ctx = info.context
        return await ctx.services.accounts.logout(refresh_token, now=ctx.now)

    @strawberry.mutation(description="Consumes an invite code and creates the patient's account.")
    async def register_patient(self, info: Info, input: RegisterPatientInput) -> AuthPayload:
        ctx = info.context
        session = await ctx.services.patients.register(
            invite_code=input.invite_code,
            email=input.email,
            password=input.password,
            timezone=input.timezone,
            ip=ctx.meta.ip,
            now=ctx.now,
        )
        return AuthPayload.from_session(session)

    @strawberry.mutation(
        description="Any signed-in account, with its current password and, once a second factor is enabled, a "
        "current code. Ends every session of the account: each device signs in again with the new password once "
        "its access token expires. Wrong passwords and codes count as failed sign-ins; once locked, RATE_LIMITED."
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str, otp: str | None = None
    ) -> bool:
        ctx = info.context
        return await ctx.services.accounts.change_password(
            ctx.require_actor(), current_password, new_password, otp=otp, now=ctx.now
        )

    @strawberry.mutation(
        description="Staff, with their password: a new TOTP secret, unconfirmed until confirmTotp (replaces an "
        "unconfirmed one); CONFLICT when a second factor is already enabled. A wrong password counts as a failed "
        "sign-in."
    )
    async def enroll_totp(self, info: Info, password: str) -> TotpEnrollment:
        ctx = info.context
        enrollment = await ctx.services.accounts.second_factor.enrol(enrolling_actor(ctx), password, now=ctx.now)
        return TotpEnrollment.from_model(enrollment)

    @strawberry.mutation(description="Staff: enables the enrolled second factor with a current code from the app.")
    async def confirm_totp(self, info: Info, otp: str) -> Account:
        ctx = info.context
        return Account.from_model(
            await ctx.services.accounts.second_factor.confirm(enrolling_actor(ctx), otp, now=ctx.now)
        )

    @strawberry.mutation(description="Staff: removes the second factor; needs the password and a current code.")
    async def disable_totp(self, info: Info, password: str, otp: str) -> Account:
        ctx = info.context
        account = await ctx.services.accounts.second_factor.disable(ctx.require_actor(), password, otp, now=ctx.now)
        return Account.from_model(account)

    @strawberry.mutation(
        description="Admin: removes a colleague's second factor (a lost phone) and ends their sessions."
    )
    async def reset_staff_totp(self, info: Info, account_id: strawberry.ID) -> Account:
        ctx = info.context
        target = parse_id(account_id, "account", field="account_id")
        return Account.from_model(
            await ctx.services.accounts.second_factor.reset(ctx.require_actor(), target, now=ctx.now)
        )

    @strawberry.mutation(
        description="Admin, with their password and (once enabled) a current code: the clinic's sign-in "
        "requirements (audited)."
    )
    async def update_clinic_security(
        self, info: Info, input: ClinicSecurityInput, password: str, otp: str | None = None
    ) -> ClinicSecurity:
        ctx = info.context
        clinic = await ctx.services.accounts.second_factor.update_clinic_security(
            ctx.require_actor(), require_staff_otp=input.require_staff_otp, password=password, otp=otp, now=ctx.now
        )
        return ClinicSecurity.from_model(clinic)
