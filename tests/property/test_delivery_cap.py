"""The dispatcher's hold (api/domain/push/outbox.py): whatever the zone, quiet hours, cap and the times it runs at.

Properties, over any sequence of send attempts for one patient:
- no local day (in the patient's zone) gets more pushes than the daily cap;
- with quiet hours respected, no push goes out inside them;
- a push held back is held until a later instant, never one already past.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from api.domain.patient.models import Patient
from api.domain.push.outbox import _Targets  # the pure part of a dispatch pass: who may be pushed, and when
from tests.property.strategies import checked, local_times, minute_instants, quiet, zones


@dataclass(frozen=True)
class Dispatch:
    patient: Patient
    attempts: list[datetime]
    cap: int
    quiet_hours: bool

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.patient.timezone)


def hhmm(t: time) -> str:
    return t.strftime("%H:%M")


@st.composite
def dispatches(draw: st.DrawFn) -> Dispatch:
    zone = draw(zones())
    anchor = draw(minute_instants(zone))
    patient = Patient(
        id=UUID(int=1),
        display_name="P",
        search_name="p",
        timezone=zone.key,
        quiet_hours_start=hhmm(draw(local_times(zone, anchor))),
        quiet_hours_end=hhmm(draw(local_times(zone, anchor))),
    )
    offsets = draw(st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=40))
    attempts = sorted(anchor + timedelta(minutes=m) for m in offsets)
    return Dispatch(patient, attempts, draw(st.integers(1, 6)), draw(st.booleans()))


@checked(200)
@given(dispatches())
def test_pushes_respect_the_daily_cap_and_quiet_hours(run: Dispatch) -> None:
    targets = _Targets({run.patient.id: run.patient}, {}, {})
    sent = []
    for at in run.attempts:
        hold = targets.hold(run.patient, at, run.cap, quiet_hours=run.quiet_hours)
        if hold is None:
            targets.count_send(run.patient.id, at)
            sent.append(at)
        else:
            assert hold > at

    per_day = Counter(at.astimezone(run.zone).date() for at in sent)
    assert max(per_day.values(), default=0) <= run.cap
    if run.quiet_hours:
        start, end = time.fromisoformat(run.patient.quiet_hours_start), time.fromisoformat(run.patient.quiet_hours_end)
        assert not [at for at in sent if quiet(at, run.zone, start, end)]
