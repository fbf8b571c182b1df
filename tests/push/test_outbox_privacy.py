"""End to end: every kind of prompt, released by the real outbox, through every real provider client to its fake.

Whatever the prompt is about (a post-infusion check, a PHQ-9, a course-end PGIC), what reaches Google, Apple, Expo
or a browser vendor is the same generic text and the prompt id (design §4.4).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from datetime import datetime, timedelta

from api.container import build_job_config
from api.domain.prompt.models import Prompt
from api.domain.push import devices
from api.domain.push.models import MessageStatus, ProviderName, PushMessage
from api.domain.services import Services
from api.domain.treatment.models import SessionStatus
from api.domain.treatment.service import SessionChange
from jobs.passes import tick
from tests.conftest import Database, make_settings
from tests.factories import Factory
from tests.push.fakes.server import Tls
from tests.push.privacy import CLINIC_NAME, leaks, readable
from tests.push.support import PROVIDERS, Keys, Running, running

PLATFORM = {
    "fcm": ProviderName.FCM,
    "apns": ProviderName.APNS,
    "webpush": ProviderName.WEBPUSH,
    "expo": ProviderName.EXPO,
}
EVERY_INSTRUMENT = {"daily_diary", "post_infusion", "pre_session", "phq9", "gad7", "pgic"}


async def test_every_kind_of_prompt_reaches_every_provider_without_health_data(
    db: Database, services: Services, factory: Factory, keys: Keys, tls: Tls, *, now: datetime
) -> None:
    start = now - timedelta(days=20)
    clinic = await factory.clinic(CLINIC_NAME)
    who = await factory.patient(clinic, joined=start, timezone="Europe/Berlin")
    staff = await factory.staff(clinic)
    # A short course of two sessions, completed as they happen: post-infusion, pre-session and course-end prompts.
    booked = []
    for day in (3, 5):
        starts = start + timedelta(days=day, hours=8)
        session = await services.treatment.schedule(
            staff.actor,
            who.patient.id,
            starts_at=starts,
            planned_duration_minutes=120,
            course_id=None,
            now=start,
        )
        booked.append((session.id, starts + timedelta(hours=2)))

    async with AsyncExitStack() as stack:
        setups: dict[str, Running] = {
            name: await stack.enter_async_context(running(name, keys, tls)) for name in PROVIDERS
        }
        for name, setup in setups.items():
            await devices.register(who.actor, PLATFORM[name], setup.token, name, now=start)
        config = build_job_config(make_settings(), {PLATFORM[n]: s.provider for n, s in setups.items()})
        # The clock walks through the weeks in four-hour steps, as the jobs process would (coarser, not finer).
        clock = start
        while clock <= now:
            for setup in setups.values():
                setup.fake.now = clock
            await tick(config, clock)
            for session_id, ends in [b for b in booked if b[1] <= clock]:
                done = SessionChange(status=SessionStatus.COMPLETED, ended_at=ends, dose_mg=35.0)
                await services.treatment.update(staff.actor, session_id, done, now=clock)
                booked.remove((session_id, ends))
            clock += timedelta(hours=4)

        pushed = await Prompt.filter(patient_id=who.patient.id, push_messages__status=MessageStatus.ACCEPTED).distinct()
        assert {p.instrument for p in pushed} == EVERY_INSTRUMENT
        assert await PushMessage.filter(status__not=MessageStatus.ACCEPTED).count() == 0
        prompt_ids = {str(p.id) for p in pushed}
        # Ids the providers themselves issued (Expo ticket ids, asked about again for receipts) are theirs, not ours.
        provider_ids = set(
            await PushMessage.exclude(provider_message_id=None).values_list("provider_message_id", flat=True)
        )
        for name, setup in setups.items():
            received = setup.fake.received
            assert received, f"{name} received nothing"
            opaque = [setup.token]
            found = [
                (name, leak)
                for r in received
                for leak in leaks(readable(r, opaque), allowed_ids=prompt_ids | {str(i) for i in provider_ids})
            ]
            assert found == []
            assert setup.fake.problems == []
