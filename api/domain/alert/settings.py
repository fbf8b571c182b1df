"""Each clinic's alert settings: rule thresholds, the escalation delay and the crisis message, versioned.

A change names the version it was made from, and is refused (CONFLICT on `version`) when the settings moved on
since: `thresholds` is the whole set of overrides, so without the check an admin saving an older copy would wipe
another admin's threshold without either of them knowing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from api.domain import audit
from api.domain.actor import Actor, Role
from api.domain.alert.models import ClinicAlertSettings
from api.domain.alert.rules import Setting, Thresholds, validate_overrides
from api.domain.errors import BadInput, Conflict, Forbidden
from api.domain.sql import Where, select

MAX_ESCALATION_MINUTES = 24 * 60
MAX_CRISIS_MESSAGE = 2000


@dataclass(frozen=True)
class SettingsChange:
    """None leaves a value as it is. `thresholds` replaces every override ({} restores the defaults)."""

    # The settings version the change was made from (0: the defaults, never saved).
    version: int
    # As the caller sent it: checked by validate_overrides, which names what is wrong.
    thresholds: object | None = None
    escalation_minutes: int | None = None
    crisis_message: str | None = None


@dataclass(frozen=True)
class ClinicSettings:
    """What a clinic runs with: its own values, or the defaults where it has none."""

    version: int
    rules: list[Setting]
    escalation_delay: timedelta
    crisis_message: str
    updated_at: datetime | None
    updated_by_id: UUID | None


async def thresholds(clinic_id: UUID, using_db: BaseDBAsyncClient | None = None) -> Thresholds:
    # Written out (api/domain/sql.py): every diary entry and questionnaire reads it.
    rows = await select(ClinicAlertSettings, Where('"clinic_id" = {}', clinic_id), using_db=using_db)
    return Thresholds(rows[0].thresholds, rows[0].version) if rows else Thresholds()


async def crisis_message(clinic_id: UUID, default: str) -> str:
    row = await ClinicAlertSettings.get_or_none(clinic_id=clinic_id)
    return row.crisis_message if row and row.crisis_message else default


async def read(actor: Actor, *, delay: timedelta, message: str) -> ClinicSettings:
    _require_admin(actor)
    row = await ClinicAlertSettings.get_or_none(clinic_id=actor.clinic_id)
    return _view(row, delay, message)


async def update(
    actor: Actor, change: SettingsChange, *, delay: timedelta, message: str, now: datetime
) -> ClinicSettings:
    _require_admin(actor)
    values = _validated(change)
    try:
        async with in_transaction() as conn:
            row = await ClinicAlertSettings.filter(clinic_id=actor.clinic_id).select_for_update().using_db(conn).first()
            row = row or ClinicAlertSettings(clinic_id=actor.clinic_id, version=0, updated_at=now)
            if change.version != row.version:
                raise Conflict(
                    f"alert settings are at version {row.version}, not {change.version}: read them again",
                    field="version",
                )
            changed = {k: v for k, v in values.items() if getattr(row, k) != v}
            if changed:
                for name, value in changed.items():
                    setattr(row, name, value)
                row.version += 1
                row.updated_at = now
                row.updated_by_id = actor.account_id
                await row.save(using_db=conn)
                await audit.record(actor, "alert.settings_update", [], now=now, write=True, using_db=conn)
    except IntegrityError as exc:
        # Another admin created the clinic's first settings at the same moment.
        raise Conflict("alert settings were changed at the same time; read them again", field="version") from exc
    # A clinic that never saved settings runs on the defaults (version 0).
    return _view(row if row.version else None, delay, message)


def _validated(change: SettingsChange) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if change.thresholds is not None:
        values["thresholds"] = validate_overrides(change.thresholds)
    if change.escalation_minutes is not None:
        if not 1 <= change.escalation_minutes <= MAX_ESCALATION_MINUTES:
            raise BadInput("escalation_minutes", f"must be between 1 and {MAX_ESCALATION_MINUTES}")
        values["escalation_minutes"] = change.escalation_minutes
    if change.crisis_message is not None:
        text = change.crisis_message.strip()
        if not text or len(text) > MAX_CRISIS_MESSAGE:
            raise BadInput("crisis_message", f"must be 1 to {MAX_CRISIS_MESSAGE} characters")
        values["crisis_message"] = text
    return values


def _view(row: ClinicAlertSettings | None, delay: timedelta, message: str) -> ClinicSettings:
    if row is None:
        return ClinicSettings(0, Thresholds().all(), delay, message, None, None)
    minutes = row.escalation_minutes
    return ClinicSettings(
        version=row.version,
        rules=Thresholds(row.thresholds, row.version).all(),
        escalation_delay=timedelta(minutes=minutes) if minutes else delay,
        crisis_message=row.crisis_message or message,
        updated_at=row.updated_at,
        updated_by_id=row.updated_by_id,
    )


def _require_admin(actor: Actor) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden("only clinic admins may read or change alert settings")
