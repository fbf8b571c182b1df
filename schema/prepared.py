"""Operations prepared once per document, executed without Strawberry's per-request machinery.

For every request Strawberry builds an execution context, makes the schema's extensions anew and runs their hooks
around parsing, validation and execution, and Interlude's checks then redo, for the same document, work that
depends on the document alone: 7.5% of the instructions of a diary entry's write, 4.5% of a 30-entry read's
(bench/README.md). Here that work is done once per document text and operation name, then kept with the parsed
document (schema/documents.py), and a request of a prepared operation runs only what depends on it.

*Preparing* an operation is what Strawberry and the checks of `build_schema` do before execution, with what its
extensions set before parsing (the parser's options, the validation rules, learnt by running their `on_operation`
hooks on an empty context): the text parsed through the same cache with the same options; validated with the same
rules and cache; the operation chosen as Strawberry chooses it, and refused, as `OperationChoice` refuses it, when
several are sent unnamed; its literals searched as `StorableText` would search them. An operation any of these
refuses is not prepared.

A prepared operation then runs with the checks that depend on the request: its type against those the transport
allows, its variables against the limits (`limit_refusals`) and for text that cannot be stored; its name and root
field recorded (`name_operation`); graphql-core's `execute` called as Strawberry calls it, or, when the operation's
variables are planned (schema/variables.py) and the plan accepts them, the executor `execute` would build made
directly from what was worked out once (`Built`); its errors processed as Strawberry processes them and coded by
`make_public`, as `ErrorPolicy` codes them.

This path never refuses anything itself. A document that does not parse or prepare, and a request that any check
would refuse, goes to Strawberry's own path (`Schema.execute`), which refuses it as it always has: the same errors,
codes and statuses, from the same code. A schema whose extensions are not exactly the parts this module knows runs
every request on Strawberry's path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from inspect import isawaitable
from typing import TYPE_CHECKING, Any, cast

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    default_field_resolver,
    default_type_resolver,
    get_operation_ast,
)
from graphql import ExecutionResult as CoreResult
from graphql import execute as graphql_execute
from graphql.execution.collect_fields import FragmentDetails
from graphql.execution.executor import UNEXPECTED_MULTIPLE_PAYLOADS
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions import DisableIntrospection, ParserCache, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from schema.combined import Combined
from schema.documents import DocumentValidation, PerDocument, Rules, validated
from schema.errors import ErrorPolicy, make_public
from schema.limits import Limits, QueryLimits, limit_refusals
from schema.operation import OperationName, name_operation
from schema.storable import StorableText, any_unstorable, literals_may_be_unstorable
from schema.variables import VariablesPlan, plan_variables

if TYPE_CHECKING:
    from strawberry import Schema

# The parts whose checks a prepared operation makes (see the module's docstring). The parser cache and the operation
# choice are InterludeSchema's own (schema/__init__.py), named there.
KNOWN_PARTS: frozenset[type[SchemaExtension]] = frozenset(
    {ErrorPolicy, OperationName, DocumentValidation, QueryLimits, StorableText, DisableIntrospection}
)
# Known parts a schema may go without: production's only (it adds a validation rule, which preparing applies).
OPTIONAL_PARTS: frozenset[type[SchemaExtension]] = frozenset({DisableIntrospection})


@dataclass(frozen=True, slots=True, eq=False)
class Built:
    """What graphql-core's `Executor.build` works out for every request from the document alone: its fragments and
    how to coerce the operation's variables (schema/variables.py), worked out once. Each request's executor gets
    its own copy of the fragments' tables."""

    fragment_definitions: dict[str, FragmentDefinitionNode]
    fragments: dict[str, FragmentDetails]
    variables: VariablesPlan


@dataclass(frozen=True, slots=True, eq=False)
class Prepared:
    """An operation of a parsed document, prepared. Kept with its document, it does not hold it: the table of
    prepared operations must not keep a document the parser's cache has let go."""

    operation: OperationDefinitionNode
    type: OperationType
    # The operation's name as Strawberry's execution context gives it: the one the request sent, else its own.
    name: str | None
    # None: each request is built by graphql-core's `execute`, as Strawberry builds it.
    built: Built | None = None


@dataclass(frozen=True, slots=True)
class _Settings:
    """What the schema's extensions set before parsing: the parser's options and the validation rules."""

    parse_options: Mapping[str, Any]
    rules: Rules
    limits: Limits


# The operation types prepared: those `execute` runs.
EXECUTED = frozenset({OperationType.QUERY, OperationType.MUTATION})
# Operation names kept per document: a client chooses them, and each name not in the document would be kept.
NAMES_PER_DOCUMENT = 8


class Preparation:
    """A schema's prepared operations, and how to run them."""

    def __init__(self, schema: Schema, settings: _Settings, parse: Callable[..., DocumentNode]) -> None:
        self.schema = schema
        self.settings = settings
        self._parse = parse
        # Per parsed document: for each operation name sent with it (None: none), the prepared operation, or None
        # when it does not prepare. Per schema: what validates against one schema may not against another.
        self._prepared = PerDocument[dict[str | None, Prepared | None]]()

    @classmethod
    def of(
        cls, schema: Schema, known: frozenset[type[SchemaExtension]], optional: frozenset[type[SchemaExtension]]
    ) -> Preparation | None:
        """The schema's preparation, or None unless its extensions are one `Combined` of the `known` parts, each
        once, all but the `optional` ones: a part this module does not know may check something it would skip, and
        one missing would leave undone here what this path does in its place (coding errors, naming the
        operation). Made once, when the schema is built: extensions changed later are not seen."""
        extensions = schema.get_extensions()
        if schema.directives or len(extensions) != 1 or type(extensions[0]) is not Combined:
            return None
        if schema.config.enable_experimental_incremental_execution:
            return None  # Strawberry would execute incrementally; this path does not
        combined = extensions[0]
        kinds = [type(part) for part in combined.parts]
        if len(set(kinds)) != len(kinds) or not known - optional <= set(kinds) <= known:
            return None
        parsers = [p for p in combined.parts if isinstance(p, ParserCache)]
        limits = [p.limits for p in combined.parts if isinstance(p, QueryLimits)]
        if len(parsers) != 1 or len(limits) != 1:
            return None
        settings = _Settings(**_before_parsing(schema, combined), limits=limits[0])
        return cls(schema, settings, parsers[0].cached_parse_document)

    def runnable(
        self,
        query: str | None,
        operation_name: str | None,
        variables: Mapping[str, object],
        allowed: Iterable[OperationType],
    ) -> tuple[DocumentNode, Prepared] | None:
        """The prepared operation the request names, when no check refuses the request; None sends it to
        Strawberry's path, as does any exception here (that path answers it as it answers every other)."""
        try:
            found = self.prepared(query, operation_name)
            return found if found is not None and self.accepts(*found, variables, allowed) else None
        except Exception:  # answered by Strawberry's path, which runs the same code
            return None

    def prepared(self, query: str | None, operation_name: str | None) -> tuple[DocumentNode, Prepared] | None:
        """The document and its operation the request names, prepared; None when it does not prepare."""
        if not query:
            return None
        try:
            document = self._parse(query, **self.settings.parse_options)
        except GraphQLError:
            return None
        table = self._prepared.get(document)
        if table is None:
            table = self._prepared.put(document, {})
        if operation_name in table:
            found = table[operation_name]
        else:
            found = self._prepare(query, document, operation_name)
            if len(table) < NAMES_PER_DOCUMENT:
                table[operation_name] = found
        return (document, found) if found is not None else None

    def _prepare(self, query: str, document: DocumentNode, provided: str | None) -> Prepared | None:
        if validated(self.schema._schema, document, self.settings.rules):
            return None
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        if not operations or (provided is None and len(operations) > 1):
            return None  # `OperationChoice` refuses several unnamed; Strawberry, none
        name = provided if provided is not None else (operations[0].name.value if operations[0].name else None)
        operation = get_operation_ast(document, name)
        if operation is None or literals_may_be_unstorable(query):
            return None
        kind = OperationType(operation.operation.value)
        # A subscription is a stream (`Schema.subscribe`); sent to `execute`, Strawberry answers it as it does.
        if kind not in EXECUTED:
            return None
        return Prepared(operation, kind, name, _built(self.schema._schema, document, operation))

    def accepts(
        self,
        document: DocumentNode,
        prepared: Prepared,
        variables: Mapping[str, object],
        allowed: Iterable[OperationType],
    ) -> bool:
        """Whether no check refuses this request of the prepared operation (else Strawberry's path refuses it)."""
        if prepared.type not in allowed:
            return False
        schema = self.schema._schema
        if limit_refusals(schema, document, prepared.operation, variables, self.settings.limits):
            return False
        return not any_unstorable(variables)

    async def execute(
        self,
        document: DocumentNode,
        prepared: Prepared,
        *,
        variables: dict[str, Any] | None,
        context: object,
        operation_extensions: dict[str, Any] | None,
    ) -> ExecutionResult:
        """As Strawberry's `Schema.execute` runs an operation that its checks have let through."""
        schema = self.schema
        try:
            # Inside the operation on Strawberry's path too (`OperationName.on_execute`).
            name_operation(context, document, prepared.name, variables or {})
            result = _built_execution(schema, prepared, variables, context, operation_extensions)
            if result is None:
                result = graphql_execute(
                    schema._schema,
                    document,
                    variable_values=variables,
                    operation_name=prepared.name,
                    context_value=context,
                    is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]  # as Strawberry passes it
                    executor_class=schema.execution_context_class,
                    operation_extensions=operation_extensions,
                )
            if isawaitable(result):
                result = await result
            if not isinstance(result, CoreResult):  # as graphql-core's `execute` refuses an incremental result
                raise GraphQLError(UNEXPECTED_MULTIPLE_PAYLOADS)
        except Exception as exc:  # as Strawberry answers it: uncoded, for the view to mask
            error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            schema._process_errors([error])
            return PreExecutionError(data=None, errors=[error], extensions={})
        if result.errors:
            schema._process_errors(result.errors)
            make_public(result, context)
        # `extensions`: what the parts' `get_results` return on Strawberry's path, none of which has any.
        return ExecutionResult(data=result.data, errors=result.errors, extensions={})


def _built(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode) -> Built | None:
    """What `Executor.build` would work out from the document alone, or None to leave every request to it: when
    graphql-core's `execute` would refuse the schema, a fragment declares variables of its own (graphql-core's
    experimental fragment arguments), or the variables are not planned."""
    if schema.get_directive("defer") or schema.get_directive("stream"):
        return None
    definitions = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    if any(d.variable_definitions for d in definitions.values()):
        return None
    variables = plan_variables(schema, operation)
    if variables is None:
        return None
    return Built(definitions, {name: FragmentDetails(d) for name, d in definitions.items()}, variables)


def _built_execution(
    schema: Schema,
    prepared: Prepared,
    variables: Mapping[str, Any] | None,
    context: object,
    operation_extensions: dict[str, Any] | None,
) -> object | None:
    """graphql-core's `execute` of a prepared operation without `Executor.build`: the executor made as `build` makes
    it for these arguments, from what the document alone decides (`Built`) and the variables coerced by the
    operation's plan. None when the plan declines the variables: `execute` then coerces them, and refuses them."""
    built = prepared.built
    if built is None:
        return None
    coerced = built.variables.coerce(variables or {})
    if coerced is None:
        return None
    # Strawberry's execution contexts take the operation's extensions, as Strawberry passes them through `execute`.
    make = cast("type[StrawberryGraphQLCoreExecutionContext]", schema.execution_context_class)
    executor = make(
        schema._schema,
        # Copies: a resolver sees them (`info.fragments`), and what one changed must not reach the next request.
        dict(built.fragment_definitions),
        dict(built.fragments),
        None,
        context,
        prepared.operation,
        coerced,
        default_field_resolver,
        default_type_resolver,
        default_field_resolver,
        False,  # enable_early_execution
        None,  # middleware: none, as `graphql_execute` is called above
        optimized_is_awaitable,
        None,  # is_async_iterable
        hide_suggestions=False,
        abort_signal=None,
        hooks=None,
        operation_extensions=operation_extensions,
    )
    return executor.execute_operation()


def _before_parsing(schema: Schema, combined: Combined) -> dict[str, Any]:
    """The parser's options and the validation rules the extensions' `on_operation` hooks set, on an empty
    execution context; the hooks are closed, not finished."""
    context = ExecutionContext(query=None, schema=schema, allowed_operations=())
    combined.execution_context = context
    steps = combined.on_operation()
    next(steps)
    steps.close()  # type: ignore[attr-defined]  # a generator
    return {"parse_options": dict(context.parse_options), "rules": tuple(context.validation_rules)}
