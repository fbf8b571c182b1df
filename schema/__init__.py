"""The GraphQL schema: root types composed from per-domain mixins."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, OperationDefinitionNode
from strawberry.extensions import DisableIntrospection, ParserCache
from strawberry.extensions.base_extension import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from api.domain.errors import ErrorCode
from schema.account.operations import AccountMutation, AccountQuery
from schema.alert.operations import AlertMutation, AlertQuery
from schema.alert.subscription import AlertSubscription
from schema.audit.operations import AuditQuery
from schema.combined import combined, runner
from schema.diary.operations import DiaryMutation, DiaryQuery
from schema.documents import DocumentValidation
from schema.errors import ErrorPolicy
from schema.execution import PlainLeafExecutionContext
from schema.inputs import install as install_planned_inputs
from schema.limits import DEFAULT_LIMITS, Limits, QueryLimits
from schema.operation import OperationName
from schema.outcome.operations import OutcomeQuery
from schema.patient.operations import PatientMutation, PatientQuery
from schema.prepared import KNOWN_PARTS, OPTIONAL_PARTS, Preparation
from schema.prompt.operations import PromptMutation, PromptQuery
from schema.push.operations import DeviceMutation
from schema.questionnaire.operations import QuestionnaireMutation, QuestionnaireQuery
from schema.scalars import OVERRIDES as SCALAR_OVERRIDES
from schema.storable import StorableText
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


# Documents each of the parser and validation caches keeps: with the transport's byte limit (`Limits.bytes`, checked
# before parsing), at most this many times that much text, and the trees parsed from it.
CACHED_DOCUMENTS = 256
# graphql-core's hint after an unknown name: "Did you mean 'first'?", "Did you mean the enum value 'OPEN'?".
_SUGGESTION = re.compile(r" ?Did you mean [^?]*\?")


class InterludeSchema(strawberry.Schema):
    # Set by `build_schema` once the schema is built: None runs every request on Strawberry's path.
    preparation: Preparation | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        """A prepared operation that no check refuses runs without Strawberry's machinery (schema/prepared.py);
        anything else as Strawberry runs it."""
        preparation = self.preparation
        if preparation is not None and root_value is None:
            allowed = DEFAULT_ALLOWED_OPERATION_TYPES if allowed_operation_types is None else allowed_operation_types
            found = preparation.runnable(query, operation_name, variable_values or {}, allowed)
            if found is not None:
                extensions = operation_extensions
                return await preparation.execute(
                    *found, variables=variable_values, context=context_value, operation_extensions=extensions
                )
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )

    def create_extensions_runner(
        self, execution_context: ExecutionContext, extensions: list[SchemaExtension]
    ) -> SchemaExtensionsRunner:
        return runner(execution_context, extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Strawberry would log every error's message here, and a message may quote the caller's variables
        (notes, emails, passwords). `ErrorPolicy` logs unexpected failures itself, with the request id.

        Without field suggestions (production) no message suggests any name: with introspection off, hints about
        arguments, input fields and enum values would still spell the schema out. Strawberry only drops them from
        unknown fields; every error of an operation passes here before it is answered."""
        if self.config.disable_field_suggestions:
            for error in errors:
                error.message = _SUGGESTION.sub("", error.message)


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


class OperationChoice(SchemaExtension):
    """GraphQL's GetOperation: a document of several operations runs none unless `operationName` names one.
    Strawberry would run the first."""

    provided: str | None = None

    def on_operation(self) -> Iterator[None]:
        # Before parsing, the context's operation name is only what the request gave.
        self.provided = self.execution_context.operation_name
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)] if document else []
        if self.provided is None and len(operations) > 1 and not context.pre_execution_errors:
            message = "The document has several operations: name the one to run in operationName"
            context.pre_execution_errors = [GraphQLError(message, extensions={"code": ErrorCode.BAD_USER_INPUT.value})]
        yield


def checks(limits: Limits) -> list[Callable[[], SchemaExtension]]:
    """The schema's extension parts, in the order they run, but production's refusal of introspection."""
    return [
        ErrorPolicy,
        OperationName,
        lambda: SafeParserCache(maxsize=CACHED_DOCUMENTS),
        DocumentValidation,
        # After the validation cache, whose result they would otherwise be overwritten by.
        OperationChoice,
        lambda: QueryLimits(limits),
        # Last of the checks before execution: it searches only a valid document within the limits.
        StorableText,
    ]


def build_schema(*, production: bool = False, limits: Limits = DEFAULT_LIMITS) -> strawberry.Schema:
    parts = checks(limits)
    if production:
        parts.append(DisableIntrospection)
    # One extension running them all, in this order (schema/combined.py).
    extensions = [combined(parts)]
    schema = InterludeSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
        scalar_overrides=SCALAR_OVERRIDES,
    )
    # Known only once the schema is built: which fields merely read an attribute (schema/execution.py), and its
    # input types (schema/inputs.py).
    schema.execution_context_class = PlainLeafExecutionContext.for_schema(schema._schema)
    install_planned_inputs(schema)
    schema.preparation = Preparation.of(schema, KNOWN_PARTS | {SafeParserCache, OperationChoice}, OPTIONAL_PARTS)
    return schema
