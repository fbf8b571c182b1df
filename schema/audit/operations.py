"""The audit trail, for clinic admins."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain import audit
from api.domain.audit.models import AuditEvent as AuditEventModel
from schema.context import Info
from schema.ids import parse_id, to_id
from schema.pagination import Connection


@strawberry.type
class AuditEvent:
    id: strawberry.ID
    action: str
    actor_id: strawberry.ID | None
    actor_role: str
    patient_id: strawberry.ID | None
    object_id: strawberry.ID | None
    operation: str | None
    request_id: str | None
    ip: str | None
    created_at: datetime

    @classmethod
    def from_model(cls, e: AuditEventModel) -> AuditEvent:
        return cls(
            id=to_id(e.id),
            action=e.action,
            actor_id=to_id(e.actor_id) if e.actor_id else None,
            actor_role=e.actor_role,
            patient_id=to_id(e.patient_id) if e.patient_id else None,
            object_id=to_id(e.object_id) if e.object_id else None,
            operation=e.operation,
            request_id=e.request_id,
            ip=e.ip,
            created_at=e.created_at,
        )


@strawberry.type
class AuditQuery:
    @strawberry.field(description="Clinic admins: who touched which patient's data, newest first.")
    async def audit_events(
        self, info: Info, patient_id: strawberry.ID | None = None, first: int | None = None, after: str | None = None
    ) -> Connection[AuditEvent]:
        actor = info.context.require_actor()
        pid = parse_id(patient_id, "patient", field="patient_id") if patient_id is not None else None
        page = await audit.list_events(actor, patient_id=pid, first=first, after=after)
        return Connection[AuditEvent].from_page(page, AuditEvent.from_model)
