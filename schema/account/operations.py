"""Sign-in, sessions and registration."""

from __future__ import annotations

import strawberry

from schema.account.types import Account, AuthPayload
from schema.context import Info


@strawberry.input
class RegisterPatientInput:
    invite_code: str
    email: str
    password: str
    timezone: str | None = strawberry.field(default=None, description="IANA zone; defaults to the invite's.")


@strawberry.type
class AccountQuery:
    @strawberry.field(description="The signed-in account.")
    async def me(self, info: Info) -> Account:
        ctx = info.context
        return Account.from_model(await ctx.services.accounts.me(ctx.require_actor()))


@strawberry.type
class AccountMutation:
    @strawberry.mutation(
        description="Throttled per account and per address; the answer never says whether an email exists."
    )
    async def login(self, info: Info, email: str, password: str, otp: str | None = None) -> AuthPayload:
        ctx = info.context
        session = await ctx.services.accounts.login(email, password, ip=ctx.meta.ip, now=ctx.now)
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
