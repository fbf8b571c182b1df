"""Patient queries and the invitation mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.context import Info
from schema.ids import parse_id
from schema.pagination import Connection
from schema.patient.types import Erasure, Patient, PatientStatus


@strawberry.input
class InvitePatientInput:
    display_name: str
    email: str | None = None
    timezone: str = strawberry.field(description="IANA zone, e.g. Europe/Berlin.")


@strawberry.type
class Invite:
    code: str = strawberry.field(description="Shown once; give it to the patient. Stored only as a hash.")
    expires_at: datetime
    patient: Patient


@strawberry.type
class PatientQuery:
    @strawberry.field(description="Clinic staff: the clinic's patients by name.")
    async def patients(
        self,
        info: Info,
        first: int | None = None,
        after: str | None = None,
        search: str | None = None,
        status: PatientStatus | None = None,  # type: ignore[valid-type]
    ) -> Connection[Patient]:
        ctx = info.context
        page = await ctx.services.patients.search(
            ctx.require_actor(), first=first, after=after, search=search, status=status, now=ctx.now
        )
        return Connection[Patient].from_page(page, Patient.from_model)

    @strawberry.field(description="One patient; null when missing or not visible to you.")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient | None:
        ctx = info.context
        patient = await ctx.services.patients.get(ctx.require_actor(), parse_id(id, "patient"), now=ctx.now)
        return Patient.from_model(patient)


@strawberry.type
class PatientMutation:
    @strawberry.mutation(description="Clinic staff: create a patient and a one-time code valid for 72 hours.")
    async def invite_patient(self, info: Info, input: InvitePatientInput) -> Invite:
        ctx = info.context
        issued = await ctx.services.patients.invite(
            ctx.require_actor(),
            display_name=input.display_name,
            email=input.email,
            timezone=input.timezone,
            now=ctx.now,
        )
        return Invite(code=issued.code, expires_at=issued.expires_at, patient=Patient.from_model(issued.patient))

    @strawberry.mutation(
        description="The signed-in patient erases their account, confirming with their password. Identifying and "
        "contact data go at once; the clinical record is kept under the clinic's legal-retention hold, then deleted. "
        "A wrong password is BAD_USER_INPUT and counts as a failed sign-in; once locked, RATE_LIMITED."
    )
    async def erase_my_account(self, info: Info, password: str) -> Erasure:
        ctx = info.context
        erasure = await ctx.services.erasure.erase_own(ctx.require_actor(), password, now=ctx.now)
        return Erasure.from_domain(erasure)

    @strawberry.mutation(
        description="Clinic admins: erase a patient who asked by other channels, confirming with your password and "
        "(once enabled) a current code. The reason is required and stored nowhere (it may hold health data)."
    )
    async def erase_patient(
        self, info: Info, patient_id: strawberry.ID, reason: str, password: str, otp: str | None = None
    ) -> Erasure:
        ctx = info.context
        patient = parse_id(patient_id, "patient", "patient_id")
        erasure = await ctx.services.erasure.erase_patient(
            ctx.require_actor(), patient, reason, password=password, otp=otp, now=ctx.now
        )
        return Erasure.from_domain(erasure)
