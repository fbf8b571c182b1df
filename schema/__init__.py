"""The GraphQL schema: root types composed from per-domain mixins."""

from __future__ import annotations

from collections.abc import Iterator

import strawberry
from graphql import GraphQLError
from strawberry.extensions import DisableIntrospection, ParserCache, ValidationCache
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionContext

from schema.account.operations import AccountMutation, AccountQuery
from schema.alert.operations import AlertMutation, AlertQuery
from schema.alert.subscription import AlertSubscription
from schema.audit.operations import AuditQuery
from schema.diary.operations import DiaryMutation, DiaryQuery
from schema.errors import ErrorPolicy
from schema.operation import OperationName
from schema.outcome.operations import OutcomeQuery
from schema.patient.operations import PatientMutation, PatientQuery
from schema.prompt.operations import PromptMutation, PromptQuery
from schema.push.operations import DeviceMutation
from schema.questionnaire.operations import QuestionnaireMutation, QuestionnaireQuery
from schema.treatment.operations import TreatmentMutation


@strawberry.type
class Query(
    AccountQuery, DiaryQuery, PatientQuery, PromptQuery, AuditQuery, OutcomeQuery, QuestionnaireQuery, AlertQuery
):
    pass


@strawberry.type
class Mutation(
    AccountMutation,
    DiaryMutation,
    PatientMutation,
    PromptMutation,
    TreatmentMutation,
    DeviceMutation,
    QuestionnaireMutation,
    AlertMutation,
):
    pass


@strawberry.type
class Subscription(AlertSubscription):
    pass


class InterludeSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Strawberry would log every error's message here, and a message may quote the caller's variables
        (notes, emails, passwords). `ErrorPolicy` logs unexpected failures itself, with the request id."""


class SafeParserCache(ParserCache):
    """Strawberry's cache parses inside its hook, so a syntax error escapes the operation and with it
    `ErrorPolicy`. A document that does not parse is left to Strawberry, which reports it in the normal way."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        try:
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        except GraphQLError:
            context.graphql_document = None
        yield


def build_schema(*, production: bool = False) -> strawberry.Schema:
    extensions: list[type[SchemaExtension] | object] = [
        ErrorPolicy,
        OperationName,
        lambda: SafeParserCache(maxsize=256),
        lambda: ValidationCache(maxsize=256),
    ]
    if production:
        extensions.append(DisableIntrospection)
    return InterludeSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,  # type: ignore[arg-type]
        config=StrawberryConfig(disable_field_suggestions=production),
    )
