"""The GraphQL schema: root types composed from per-domain mixins."""

from __future__ import annotations

import strawberry
from strawberry.extensions import DisableIntrospection, ParserCache, ValidationCache
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.schema.config import StrawberryConfig

from schema.account.operations import AccountMutation, AccountQuery
from schema.audit.operations import AuditQuery
from schema.diary.operations import DiaryMutation, DiaryQuery
from schema.errors import ErrorPolicy
from schema.operation import OperationName
from schema.patient.operations import PatientMutation, PatientQuery


@strawberry.type
class Query(AccountQuery, DiaryQuery, PatientQuery, AuditQuery):
    pass


@strawberry.type
class Mutation(AccountMutation, DiaryMutation, PatientMutation):
    pass


def build_schema(*, production: bool = False) -> strawberry.Schema:
    extensions: list[type[SchemaExtension] | object] = [
        ErrorPolicy,
        OperationName,
        lambda: ParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if production:
        extensions.append(DisableIntrospection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(disable_field_suggestions=production),
    )
