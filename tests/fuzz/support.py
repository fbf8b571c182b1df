"""GraphQL fuzzing with schemathesis: operations generated from the running app's schema, variants of them aimed
at real objects or carrying hostile strings, and the checks every response must pass.

Generation is separate from execution: Hypothesis draws a fixed list of documents per operation (derandomized,
no example database), and the test sends them over the app's whole HTTP stack in its own event loop, where the
database context lives. Schemathesis's `case.call` would run the app in a thread with another loop.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import graphql
import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.graphql import nodes
from schemathesis.schemas import APIOperation
from schemathesis.specs.graphql.schemas import GraphQLSchema

from tests.conftest import NOW
from tests.fuzz.world import Caller, Secrets

# Every code a refusal may carry (design §6). INTERNAL is in the contract, but here it is a bug: an unexpected
# exception. UNAVAILABLE means the database could not be reached, which a healthy test database never is.
STABLE_CODES = frozenset(
    {
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "NOT_FOUND",
        "BAD_USER_INPUT",
        "CONFLICT",
        "PROMPT_EXPIRED",
        "RATE_LIMITED",
        "QUERY_TOO_COMPLEX",
        "UNAVAILABLE",
        "INTERNAL",
    }
)
FAILING_CODES = frozenset({"INTERNAL", "UNAVAILABLE"})

# The kind of object an ID argument names: by the argument's (or input field's) name, else for an argument
# called `id` by the field it belongs to. An ID nobody listed here is aimed at every kind.
KIND_BY_ARGUMENT = {"patientId": "patient", "planId": "plan", "courseId": "course", "promptId": "prompt"}
KIND_BY_FIELD = {
    "patient": "patient",
    "updateDiaryEntry": "entry",
    "deleteDiaryEntry": "entry",
    "acknowledgePrompt": "prompt",
    "updateInfusion": "session",
    "acknowledgeAlert": "alert",
    "resolveAlert": "alert",
}

# Python's voice in an error message: a traceback, a module, an exception class.
_PYTHON = re.compile(
    r"Traceback \(most recent call last\)|File \"[^\"]+\", line \d+|site-packages|\.py\b"
    r"|\b(?:tortoise|asyncpg|sqlite3?|psycopg|pypika|strawberry)\b|NoneType|object has no attribute"
    r"|\b[A-Z][A-Za-z]*(?:Error|Exception)\b",
    re.IGNORECASE,
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def _json_node(value: object) -> graphql.ValueNode:
    if isinstance(value, dict):
        fields = [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=_json_node(v)) for k, v in value.items()
        ]
        return nodes.Object(fields)
    if isinstance(value, list):
        return nodes.List([_json_node(v) for v in value])
    return _SCALAR_NODES[type(value)](value)


_SCALAR_NODES: dict[type, Callable[[Any], graphql.ValueNode]] = {
    bool: nodes.Boolean,
    int: nodes.Int,
    float: nodes.Float,
    str: nodes.String,
    type(None): lambda _: nodes.Null,
}


# Keys of a JSON object literal are GraphQL names; some are the alert settings' own.
_JSON_NAMES = st.sampled_from(["self_harm", "severe_side_effect", "enabled", "min_severity", "days"]) | st.from_regex(
    r"[A-Za-z_][A-Za-z0-9_]{0,7}", fullmatch=True
)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_JSON_NAMES, inner, max_size=3),
    max_leaves=8,
)
# The alert thresholds input is JSON; without a strategy the generator would leave it out.
schemathesis.graphql.scalar("JSON", _JSON.map(_json_node))

# Instants near the test clock reach past "in the future" and "before the diary could have been kept" into the
# services; any instant (year 1 to 9999) with any offset, or none, probes parsing and UTC conversion.
_OFFSETS = st.sampled_from(["Z", "+00:00", "-05:00", "+05:30", "+14:00", "-12:00", "-23:59", ""])
_NEAR_NOW = st.integers(-120 * 24 * 3600, 30 * 24 * 3600).map(lambda s: NOW + timedelta(seconds=s))
_ANY_TIME = st.datetimes(min_value=datetime.min, max_value=datetime.max)
_DATETIME = st.builds(lambda at, offset: at.replace(tzinfo=None).isoformat() + offset, _NEAR_NOW | _ANY_TIME, _OFFSETS)
schemathesis.graphql.scalar("DateTime", _DATETIME.map(nodes.String))


def operation_labels(schema: graphql.GraphQLSchema) -> list[str]:
    """`Query.me`, `Mutation.login`, …: every root field the app serves, in schema order."""
    roots = [t for t in (schema.query_type, schema.mutation_type) if t is not None]
    return [f"{root.name}.{name}" for root in roots for name in root.fields]


async def load_schema(client: httpx.AsyncClient) -> GraphQLSchema:
    """The schema as the running app introspects it."""
    response = await client.post("/graphql", json={"query": graphql.get_introspection_query()})
    response.raise_for_status()
    return schemathesis.graphql.from_dict(response.json(), config=SchemathesisConfig())


Operation = APIOperation[Any, Any, Any, Any]


def operations(schema: GraphQLSchema) -> dict[str, Operation]:
    return {r.ok().label: r.ok() for r in schema.get_all_operations() if isinstance(r, Ok)}


def generate(operation: Operation, mode: GenerationMode, examples: int) -> list[str]:
    """`examples` documents for one operation, the same on every run."""
    drawn: list[str] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def collect(case: Any) -> None:
        drawn.append(case.body)

    collect()
    return list(dict.fromkeys(drawn))


def aim_ids(document: str, schema: graphql.GraphQLSchema, pick: Callable[[str | None], str]) -> str | None:
    """`document` with every ID literal replaced by `pick(kind)`; None when it holds no ID literal."""
    info = graphql.TypeInfo(schema)
    visitor = _IdAimer(info, pick)
    aimed = graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(info, visitor))
    return graphql.print_ast(aimed) if visitor.replaced else None


class _Names(graphql.Visitor):
    """Tracks the field and the argument or input field a value belongs to."""

    def __init__(self, info: graphql.TypeInfo) -> None:
        super().__init__()
        self.info = info
        self.fields: list[str] = []
        self.names: list[str] = []

    def enter_field(self, node: graphql.FieldNode, *_: Any) -> None:
        self.fields.append(node.name.value)

    def leave_field(self, *_: Any) -> None:
        self.fields.pop()

    def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_argument(self, *_: Any) -> None:
        self.names.pop()

    def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> None:
        self.names.append(node.name.value)

    def leave_object_field(self, *_: Any) -> None:
        self.names.pop()


class _IdAimer(_Names):
    def __init__(self, info: graphql.TypeInfo, pick: Callable[[str | None], str]) -> None:
        super().__init__(info)
        self.pick = pick
        self.replaced = 0

    def enter_string_value(self, *_: Any) -> graphql.StringValueNode | None:
        return self._aim()

    def enter_int_value(self, *_: Any) -> graphql.StringValueNode | None:
        return self._aim()

    def _aim(self) -> graphql.StringValueNode | None:
        if graphql.get_named_type(self.info.get_input_type()) is not graphql.GraphQLID:
            return None
        self.replaced += 1
        return graphql.StringValueNode(value=self.pick(self._kind()))

    def _kind(self) -> str | None:
        name = self.names[-1] if self.names else None
        if name == "id" and self.fields:
            return KIND_BY_FIELD.get(self.fields[-1])
        return KIND_BY_ARGUMENT.get(name or "")


def picker(pool: dict[str, list[str]], start: int) -> Callable[[str | None], str]:
    """Ids from `pool` in turn, of the kind asked for (any kind when it is unknown or empty)."""
    everything = [i for kind in sorted(pool) for i in pool[kind]]
    turn = iter(range(start, start + 10_000))

    def pick(kind: str | None) -> str:
        ids = pool.get(kind or "") or everything
        return ids[next(turn) % len(ids)]

    return pick


def aimed_variants(documents: list[str], schema: graphql.GraphQLSchema, pool: dict[str, list[str]]) -> list[str]:
    """Documents with their ID arguments aimed at ids from `pool`, enough that each pooled id is used."""
    with_ids = [d for d in documents if aim_ids(d, schema, lambda _: "x") is not None]
    if not with_ids or not pool:
        return []
    largest = max(len(ids) for ids in pool.values())
    out: list[str] = []
    for n in range(max(len(with_ids), largest)):
        aimed = aim_ids(with_ids[n % len(with_ids)], schema, picker(pool, n))
        if aimed is not None:
            out.append(aimed)
    return list(dict.fromkeys(out))


# Strings no column can hold (NUL on PostgreSQL, a lone surrogate anywhere) and one longer than any column.
# They are sent as variables: a GraphQL literal cannot hold a lone surrogate.
HOSTILE_STRINGS = ("\x00", "\ud800", "x" * 5000)
# String arguments of one document made hostile, one at a time.
HOSTILE_POSITIONS = 3


@dataclass(frozen=True)
class Request:
    document: str
    variables: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> bytes:
        # ASCII-escaped: a lone surrogate survives only as an escape.
        return json.dumps({"query": self.document, "variables": self.variables}).encode()

    @property
    def text(self) -> str:
        """Everything the request sent, to tell an echo from a leak."""
        return self.document + json.dumps(self.variables, ensure_ascii=False)


def hostile_variants(document: str, schema: graphql.GraphQLSchema) -> list[Request]:
    """`document` with one string argument at a time replaced by each hostile string."""
    out = []
    for position in range(HOSTILE_POSITIONS):
        info = graphql.TypeInfo(schema)
        visitor = _StringToVariable(info, position)
        changed = graphql.visit(graphql.parse(document), graphql.TypeInfoVisitor(info, visitor))
        if visitor.declared is None:
            break
        text = graphql.print_ast(_declare(changed, visitor.declared))
        out += [Request(text, {_HOSTILE: value}) for value in HOSTILE_STRINGS]
    return out


_HOSTILE = "hostile"


class _StringToVariable(_Names):
    """Replaces the `position`-th string literal of a String-typed argument with `$hostile`."""

    def __init__(self, info: graphql.TypeInfo, position: int) -> None:
        super().__init__(info)
        self.position = position
        self.seen = 0
        self.declared: graphql.GraphQLInputType | None = None

    def enter_string_value(self, *_: Any) -> graphql.VariableNode | None:
        input_type = self.info.get_input_type()
        if graphql.get_named_type(input_type) is not graphql.GraphQLString or input_type is None:
            return None
        self.seen += 1
        if self.seen - 1 != self.position:
            return None
        self.declared = input_type
        return graphql.VariableNode(name=graphql.NameNode(value=_HOSTILE))


def _declare(document: graphql.DocumentNode, input_type: graphql.GraphQLInputType) -> graphql.DocumentNode:
    (operation,) = document.definitions
    assert isinstance(operation, graphql.OperationDefinitionNode)
    definition = graphql.VariableDefinitionNode(
        variable=graphql.VariableNode(name=graphql.NameNode(value=_HOSTILE)),
        type=graphql.parse_type(str(input_type)),
    )
    declared = _replaced(operation, variable_definitions=(*(operation.variable_definitions or ()), definition))
    return _replaced(document, definitions=(declared,))


N = TypeVar("N", bound=graphql.Node)


def _replaced(node: N, **changes: Any) -> N:
    """A copy of an AST node with some fields changed (nodes are immutable since graphql-core 3.3)."""
    return type(node)(**{**{key: getattr(node, key) for key in node.keys}, **changes})


@dataclass
class Exchange:
    caller: str
    request: Request
    status: int
    body: str

    def __str__(self) -> str:
        variables = f"\n--- variables\n{json.dumps(self.request.variables)[:300]}" if self.request.variables else ""
        return (
            f"as {self.caller}, HTTP {self.status}\n--- sent\n{self.request.document}{variables}\n"
            f"--- received\n{self.body[:2000]}"
        )

    @property
    def succeeded(self) -> bool:
        try:
            payload = json.loads(self.body)
        except ValueError:
            return False
        return self.status == 200 and payload.get("data") is not None and not payload.get("errors")


async def send(client: httpx.AsyncClient, caller: Caller, request: Request) -> Exchange:
    headers = {"Authorization": f"Bearer {caller.token}", "Content-Type": "application/json"}
    response = await client.post("/graphql", content=request.payload(), headers=headers)
    return Exchange(caller.name, request, response.status_code, response.text)


@dataclass(frozen=True)
class Finding:
    exchange: Exchange
    problem: str

    def __str__(self) -> str:
        return f"{self.problem}\n{self.exchange}"


class Run:
    """Requests sent as one caller, and every problem their responses showed."""

    def __init__(self, client: httpx.AsyncClient, caller: Caller, schema: graphql.GraphQLSchema) -> None:
        self.client = client
        self.caller = caller
        self.type_names = frozenset(schema.type_map)
        self.sent = 0
        self.found: list[Finding] = []

    async def send_all(self, requests: list[Request]) -> list[str]:
        """Sends each request; returns the documents of those that succeeded."""
        worked = []
        for request in requests:
            exchange = await send(self.client, self.caller, request)
            self.sent += 1
            self.found += [Finding(exchange, p) for p in problems(exchange, self.caller.hidden, self.type_names)]
            if exchange.succeeded:
                worked.append(request.document)
        return worked

    def report(self, findings: list[Finding] | None = None) -> str:
        shown = self.found if findings is None else findings
        return f"{len(shown)} problems in {self.sent} requests; the first:\n\n" + "\n\n".join(map(str, shown[:3]))


def problems(exchange: Exchange, hidden: Secrets, type_names: frozenset[str]) -> Iterator[str]:
    """Everything wrong with one response: a server error, an error without a stable code, an unmasked or
    unexpected failure, Python's voice in a message, and anything of someone else's."""
    if exchange.status >= 500:
        yield f"HTTP {exchange.status}"
    try:
        payload = json.loads(exchange.body)
    except ValueError:
        yield "the response is not JSON"
        return
    if not isinstance(payload, dict) or not ({"data", "errors"} & payload.keys()):
        yield "the response is not a GraphQL result"
        return
    for error in payload.get("errors") or []:
        yield from _error_problems(error, type_names, exchange.request.text.lower())
    yield from _leaks(exchange, hidden)


def _error_problems(error: dict[str, Any], type_names: frozenset[str], sent: str) -> Iterator[str]:
    code = (error.get("extensions") or {}).get("code")
    if code not in STABLE_CODES:
        yield f"error code {code!r} is not one of the stable codes"
    if code in FAILING_CODES:
        yield f"{code}: an unexpected failure (message {error.get('message')!r})"
    if code == "INTERNAL" and error.get("message") != "Internal error":
        yield "an INTERNAL error that is not masked"
    text = json.dumps(error)
    # A type of the schema, or words the request itself sent, are not Python speaking.
    voice = [
        m.group(0) for m in _PYTHON.finditer(text) if m.group(0) not in type_names and m.group(0).lower() not in sent
    ]
    if voice:
        yield f"Python exception text in an error: {voice}"


def _leaks(exchange: Exchange, hidden: Secrets) -> Iterator[str]:
    received, sent = exchange.body.lower(), exchange.request.text.lower()
    for marker in hidden.markers:
        if marker.lower() in received and marker.lower() not in sent:
            yield f"someone else's data in the response: marker {marker}"
    foreign = {m.group(0).lower() for m in _UUID.finditer(exchange.body)} & hidden.ids
    if leaked := sorted(i for i in foreign if i not in sent):
        yield f"someone else's ids in the response: {leaked}"
