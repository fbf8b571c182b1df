"""Run as `python -m tests.resilience.seed COUNT` with INTERLUDE_DATABASE_URL set: a clinic with COUNT registered
patients, made through the domain services; prints them as JSON. A subprocess, like the CLI: the test process never
opens a Tortoise context on the scratch database (its own contexts and SQL caches stay untouched)."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from tortoise.context import TortoiseContext

from api.container import build_services
from api.db import tortoise_config
from api.domain.actor import Actor, Role
from api.settings import Settings
from tests.factories import PASSWORD

# Fixed, and long past: every entry the phones date after it is inside the diary's window whatever the wall clock.
JOINED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def seed(count: int) -> list[dict[str, str]]:
    settings = Settings()
    services = build_services(settings)
    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(settings.database_url))
        clinic = await services.accounts.create_clinic("Resilience Clinic", now=JOINED)
        staff = await services.accounts.create_staff(
            clinic.id, Role.CLINICIAN, "clinician@resilience.test", PASSWORD, now=JOINED
        )
        inviter = Actor(account_id=staff.id, role=Role.CLINICIAN, clinic_id=clinic.id)
        phones = []
        for i in range(count):
            email = f"phone{i:03d}@resilience.test"
            invite = await services.patients.invite(
                inviter, display_name=f"Phone {i}", email=email, timezone="America/New_York", now=JOINED
            )
            await services.patients.register(
                invite_code=invite.code, email=email, password=PASSWORD, timezone=None, ip=None, now=JOINED
            )
            phones.append({"email": email, "patient_id": str(invite.patient.id)})
    return phones


if __name__ == "__main__":
    sys.stdout.write(json.dumps(asyncio.run(seed(int(sys.argv[1])))) + "\n")
