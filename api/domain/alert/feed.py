"""The live alert feed of a clinic's staff: notices from the broker, each read back as the subscriber.

A notice only names an alert. Whether the subscriber may see it is decided here, per alert, exactly as for any
other read and as for the list (alert/visibility.py): same clinic, patient reachable (an erased patient's alert is
delivered while a legal-retention hold keeps the record, as it is listed and escalated; not after). Each delivered
alert is an audited read of its patient.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from api.domain import audit
from api.domain.actor import Actor, Role
from api.domain.alert.broker import AlertBroker, AlertNotice, NoticeKind
from api.domain.alert.models import Alert
from api.domain.errors import Forbidden, NotFound
from api.domain.patient.access import reachable_patient, require_staff


@asynccontextmanager
async def subscribe(broker: AlertBroker, actor: Actor) -> AsyncIterator[AsyncIterator[AlertNotice]]:
    """Notices of the actor's own clinic. Staff only (FORBIDDEN for anyone else)."""
    require_staff(actor)
    async with broker.subscribe(actor.clinic_id) as notices:
        yield notices


@asynccontextmanager
async def escalations(broker: AlertBroker, actor: Actor) -> AsyncIterator[AsyncIterator[AlertNotice]]:
    """Escalation notices of the actor's own clinic. Admins only (FORBIDDEN for anyone else): an escalation
    is the clinic's call to its admins that an urgent alert has gone unanswered."""
    if actor.role is not Role.ADMIN:
        raise Forbidden("clinic admins only")
    async with broker.subscribe(actor.clinic_id) as notices:
        yield _of_kind(notices, NoticeKind.ESCALATED)


async def _of_kind(notices: AsyncIterator[AlertNotice], kind: NoticeKind) -> AsyncIterator[AlertNotice]:
    async for notice in notices:
        if notice.kind is kind:
            yield notice


async def read(actor: Actor, notice: AlertNotice, *, now: datetime) -> Alert | None:
    """The alert a notice names if the actor may see it, recorded as read; None if not (or no longer) theirs."""
    require_staff(actor)
    alert = await Alert.get_or_none(id=notice.alert_id, clinic_id=actor.clinic_id)
    if alert is None:
        return None
    try:
        await reachable_patient(actor, alert.patient_id)
    except NotFound:
        return None
    # Each delivery runs on its own request meta (`Context.renew`), so this is its one event; a selection of the
    # alert's patient in the same delivery adds none.
    await audit.record(actor, "alert.read", [alert.patient_id], now=now, object_id=alert.id)
    return alert
