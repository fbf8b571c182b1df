"""Prompts, plans and adherence as the API shows them."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain.prompt.models import Prompt as PromptModel
from api.domain.prompt.models import PromptPlan as PromptPlanModel
from api.domain.prompt.models import PromptStatus as DomainPromptStatus
from api.domain.prompt.rules import Rule as DomainRule
from api.domain.prompt.rules import RuleKind as DomainRuleKind
from api.domain.prompt.service import Adherence as DomainAdherence
from api.domain.prompt.service import PromptEvent as DomainPromptEvent
from schema.ids import to_id

PromptStatus = strawberry.enum(DomainPromptStatus)
PromptEvent = strawberry.enum(DomainPromptEvent)
RuleKind = strawberry.enum(DomainRuleKind)


@strawberry.type(description="One check-in a patient is asked to answer.")
class Prompt:
    id: strawberry.ID
    instrument: str
    due_at: datetime
    deliver_at: datetime = strawberry.field(description="When it is (or was) delivered, after quiet hours.")
    expires_at: datetime = strawberry.field(description="Answerable until then; missed windows are not re-opened.")
    status: PromptStatus  # type: ignore[valid-type]
    late: bool = strawberry.field(description="Delivered later than planned (the service was catching up).")
    rule_id: str
    session_id: strawberry.ID | None
    sent_at: datetime | None
    delivered_at: datetime | None
    opened_at: datetime | None
    answered_at: datetime | None

    @classmethod
    def from_model(cls, p: PromptModel) -> Prompt:
        return cls(
            id=to_id(p.id),
            instrument=p.instrument,
            due_at=p.due_at,
            deliver_at=p.deliver_at,
            expires_at=p.expires_at,
            status=p.status,
            late=p.late,
            rule_id=p.rule_id,
            session_id=to_id(p.session_id) if p.session_id else None,
            sent_at=p.sent_at,
            delivered_at=p.delivered_at,
            opened_at=p.opened_at,
            answered_at=p.answered_at,
        )


@strawberry.type
class PromptRule:
    id: str
    kind: RuleKind  # type: ignore[valid-type]
    instrument: str
    offset_minutes: int
    at: str | None
    every_days: int
    weekday: int | None
    window_minutes: int
    reminder_minutes: list[int]
    quiet_hours: bool

    @classmethod
    def from_rule(cls, r: DomainRule) -> PromptRule:
        data = r.to_json()
        return cls(
            id=r.id,
            kind=r.kind,
            instrument=r.instrument,
            offset_minutes=data["offset_minutes"],
            at=data["at"],
            every_days=r.every_days,
            weekday=r.weekday,
            window_minutes=data["window_minutes"],
            reminder_minutes=data["reminder_minutes"],
            quiet_hours=r.quiet_hours,
        )


@strawberry.type
class PromptPlan:
    id: strawberry.ID
    name: str
    version: int
    is_default: bool
    rules: list[PromptRule]

    @classmethod
    def from_model(cls, p: PromptPlanModel) -> PromptPlan:
        return cls(
            id=to_id(p.id),
            name=p.name,
            version=p.version,
            is_default=p.is_default,
            rules=[PromptRule.from_rule(DomainRule.from_json(r)) for r in p.rules],
        )


@strawberry.type(description="answered ÷ (answered + expired); null before anything came due.")
class Adherence:
    instrument: str | None = strawberry.field(description="Null for all instruments together.")
    answered: int
    expired: int
    rate: float | None

    @classmethod
    def from_domain(cls, a: DomainAdherence) -> Adherence:
        return cls(instrument=a.instrument, answered=a.answered, expired=a.expired, rate=a.rate)
