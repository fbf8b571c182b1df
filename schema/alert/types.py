"""Alerts as clinicians see them, and a clinic's alert settings as its admins see them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON

from api.domain.alert.models import Alert as AlertModel
from api.domain.alert.models import AlertEvent as AlertEventModel
from api.domain.alert.models import AlertStatus as DomainAlertStatus
from api.domain.alert.models import Severity as DomainSeverity
from api.domain.alert.rules import Setting
from api.domain.alert.settings import ClinicSettings, SettingsChange
from api.domain.patient.models import Patient as PatientModel
from schema.context import Info
from schema.ids import to_id

if TYPE_CHECKING:
    from schema.patient.types import Patient

Severity = strawberry.enum(DomainSeverity, description="CRITICAL needs action now; LOW is a nudge.")
AlertStatus = strawberry.enum(DomainAlertStatus, description="OPEN → ACKNOWLEDGED → RESOLVED.")


@strawberry.type(description="A record that made a rule fire.")
class AlertTrigger:
    type: str = strawberry.field(description="DiaryEntry, QuestionnaireResponse or TreatmentCourse.")
    id: strawberry.ID
    at: datetime | None = strawberry.field(description="When the rule saw it.")


@strawberry.type(description="One step in an alert's history.")
class AlertEvent:
    action: str = strawberry.field(
        description="raised, retriggered, acknowledged, escalated (note: the admin account ids), reopened or resolved."
    )
    actor_id: strawberry.ID | None = strawberry.field(description="The account that acted; null for the system.")
    note: str | None
    at: datetime

    @classmethod
    def from_model(cls, e: AlertEventModel) -> AlertEvent:
        return cls(action=e.action, actor_id=to_id(e.actor_id) if e.actor_id else None, note=e.note, at=e.at)


@strawberry.type
class Alert:
    id: strawberry.ID
    patient_id: strawberry.ID
    rule: str
    rule_version: int = strawberry.field(
        description="Version of the rule's code; the clinic settings version in force is details.settings_version."
    )
    severity: Severity  # type: ignore[valid-type]
    status: AlertStatus  # type: ignore[valid-type]
    episode: str = strawberry.field(
        description="What the alert is about (patient, session:<id>, course:<id>): one open alert per episode."
    )
    triggers: list[AlertTrigger]
    details: JSON = strawberry.field(
        description="The rule's facts: thresholds met and values seen; first_raised_at once reopened, "
        "escalated_to (admin account ids) once escalated."
    )
    raised_at: datetime = strawberry.field(
        description="When it was raised, or raised again by a new report after an acknowledgement (reopened); "
        "the first raise is details.first_raised_at and in the history."
    )
    acknowledged_at: datetime | None
    acknowledged_by_id: strawberry.ID | None
    resolved_at: datetime | None
    resolved_by_id: strawberry.ID | None
    escalated_at: datetime | None = strawberry.field(
        description="When it was escalated to the clinic's admins (their account ids: details.escalated_to)."
    )
    updated_at: datetime
    _model: strawberry.Private[AlertModel]

    @classmethod
    def from_model(cls, a: AlertModel) -> Alert:
        return cls(
            id=to_id(a.id),
            patient_id=to_id(a.patient_id),
            rule=a.rule_id,
            rule_version=a.rule_version,
            severity=a.severity,
            status=a.status,
            episode=a.episode,
            triggers=[_trigger(t) for t in a.triggers],
            details=JSON(a.details),
            raised_at=a.raised_at,
            acknowledged_at=a.acknowledged_at,
            acknowledged_by_id=to_id(a.acknowledged_by_id) if a.acknowledged_by_id else None,
            resolved_at=a.resolved_at,
            resolved_by_id=to_id(a.resolved_by_id) if a.resolved_by_id else None,
            escalated_at=a.escalated_at,
            updated_at=a.updated_at,
            _model=a,
        )

    @strawberry.field(description="The patient the alert is about.")
    async def patient(self, info: Info) -> Annotated[Patient, strawberry.lazy("schema.patient.types")]:
        from schema.patient.types import Patient  # noqa: PLC0415 -- the patient type lists alerts in turn

        ctx = info.context
        # Lists load the patient with the page; an alert from elsewhere reads it through the access check.
        loaded: object = self._model.patient  # a Patient once fetched, else an unawaited query
        if isinstance(loaded, PatientModel):
            return Patient.from_model(loaded)
        model = await ctx.services.patients.get(ctx.require_actor(), self._model.patient_id, now=ctx.now)
        return Patient.from_model(model)

    @strawberry.field(description="Raised, retriggered, acknowledged, escalated, reopened, resolved: oldest first.")
    async def history(self, info: Info) -> list[AlertEvent]:
        ctx = info.context
        events = await ctx.services.alerts.history(ctx.require_actor(), self._model)
        return [AlertEvent.from_model(e) for e in events]


def _trigger(raw: dict[str, Any]) -> AlertTrigger:
    at = raw.get("at")
    return AlertTrigger(type=raw["type"], id=strawberry.ID(raw["id"]), at=datetime.fromisoformat(at) if at else None)


@strawberry.type(description="One rule as the clinic runs it.")
class AlertRuleSetting:
    rule: str
    version: int
    severity: Severity  # type: ignore[valid-type]
    summary: str
    enabled: bool
    may_disable: bool = strawberry.field(description="Critical safety rules cannot be switched off.")
    may_tune: bool = strawberry.field(
        description="Critical safety rules' thresholds are fixed: a higher one would silence them."
    )
    parameters: JSON = strawberry.field(description="In force: the clinic's values, or the defaults.")
    defaults: JSON

    @classmethod
    def from_domain(cls, s: Setting) -> AlertRuleSetting:
        return cls(
            rule=s.rule.id,
            version=s.rule.version,
            severity=s.rule.severity,
            summary=s.rule.summary,
            enabled=s.enabled,
            may_disable=s.rule.may_disable,
            may_tune=s.rule.may_tune,
            parameters=JSON(dict(s.params)),
            defaults=JSON({name: p.default for name, p in s.rule.params.items()}),
        )


@strawberry.type
class AlertSettings:
    version: int = strawberry.field(description="0 while the clinic runs on the defaults; +1 on every change.")
    rules: list[AlertRuleSetting]
    escalation_minutes: int = strawberry.field(description="An unacknowledged critical alert escalates after this.")
    crisis_message: str = strawberry.field(description="Shown to a patient whose answers raise a critical alert.")
    updated_at: datetime | None
    updated_by_id: strawberry.ID | None

    @classmethod
    def from_domain(cls, s: ClinicSettings) -> AlertSettings:
        return cls(
            version=s.version,
            rules=[AlertRuleSetting.from_domain(r) for r in s.rules],
            escalation_minutes=int(s.escalation_delay.total_seconds() // 60),
            crisis_message=s.crisis_message,
            updated_at=s.updated_at,
            updated_by_id=to_id(s.updated_by_id) if s.updated_by_id else None,
        )


@strawberry.input(description="Only the fields given change, and only from the version they were read at.")
class AlertSettingsInput:
    version: int = strawberry.field(
        description="The `version` of the settings this change was made from (0 for the defaults). If they have "
        "changed since, nothing is saved: CONFLICT on `version`, read them again and reapply the change."
    )
    thresholds: JSON | None = strawberry.field(
        default=None,
        description='Replaces every override: {"<rule>": {"<parameter>": 3, "enabled": false}}; {} = defaults. '
        "Overrides made since `version` would be lost, which is why `version` is checked.",
    )
    escalation_minutes: int | None = None
    crisis_message: str | None = None

    def to_domain(self) -> SettingsChange:
        return SettingsChange(
            version=self.version,
            thresholds=self.thresholds,
            escalation_minutes=self.escalation_minutes,
            crisis_message=self.crisis_message,
        )
