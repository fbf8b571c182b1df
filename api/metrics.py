"""`/metrics` in the Prometheus text format.

Requests and latencies are counted by this process (`RequestIdMiddleware` reports each request). Prompts, the push
outbox and the database pool are read when scraped, so that they are right whichever process (API or jobs) did the
work; the database's answer is kept a few seconds and read by one scrape at a time, so that a flood of scrapes
costs the pool one connection at most. Labels are bounded sets (root fields of the schema, route templates, error
codes, statuses): never an id, an email or anything a caller chose freely.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import strawberry
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import Metric
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope
from strawberry.schema import BaseSchema
from tortoise.connection import get_connection

from api.auth import bearer_token
from api.domain import stats
from api.domain.errors import DomainError, ErrorCode
from schema.errors import ERROR_COUNTER
from schema.operation import ROOT_FIELD

log = logging.getLogger("interlude.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER = "other"
UNMATCHED = "unmatched"
_CODES = frozenset(ErrorCode)


def root_fields(schema: BaseSchema) -> frozenset[str]:
    """The names an operation may be counted under: the schema's root fields."""
    if not isinstance(schema, strawberry.Schema):
        return frozenset()
    graphql_schema = schema._schema  # graphql-core's schema; Strawberry has no public accessor for it
    roots = (graphql_schema.query_type, graphql_schema.mutation_type, graphql_schema.subscription_type)
    return frozenset(name for root in roots if root is not None for name in root.fields)


class _ErrorCodes:
    """Handed to `ErrorPolicy` through the request's state: counts the codes of each failed operation, and
    remembers for the request's own count that it failed."""

    def __init__(self, counter: Counter) -> None:
        self._counter = counter
        self.seen = False

    def __call__(self, codes: Sequence[str]) -> None:
        self.seen = True
        for code in codes:
            self._counter.labels(code=code if code in _CODES else OTHER).inc()


class _Series:
    """A labelled metric's series, each looked up once by its label values: `labels()` checks its arguments and
    takes a lock on every call, about 2 µs, four times a request. The values are bounded sets (see the module)."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class Metrics:
    """One per app, with its own registry: apps never share series (tests build many apps in one process)."""

    def __init__(
        self,
        *,
        operations: Iterable[str],
        clock: Callable[[], datetime],
        token: str | None = None,
        timeout: float = 5.0,
        cache_seconds: float = 5.0,
        graphql_path: str = "/graphql",
    ) -> None:
        """`clock` dates the gauges (the outbox's lag) and ages the cached database snapshot."""
        self._operations = frozenset(operations)
        self._clock = clock
        self._token = token or None
        self._timeout = timeout
        self._graphql_path = graphql_path
        self._snapshot = _Cached(timedelta(seconds=cache_seconds))
        self.registry = CollectorRegistry()
        self.graphql_requests = Counter(
            "interlude_graphql_requests",
            "GraphQL requests over HTTP by operation and outcome (ok, error)",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.graphql_duration = Histogram(
            "interlude_graphql_request_duration_seconds",
            "GraphQL request latency over HTTP by operation",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.graphql_errors = Counter(
            "interlude_graphql_errors", "GraphQL errors by code", ["code"], registry=self.registry
        )
        self.http_requests = Counter(
            "interlude_http_requests",
            "HTTP requests by route template and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "interlude_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        # What each request counts in, by label values in the order the metric names its labels.
        self._http_requests = _Series(self.http_requests)
        self._http_duration = _Series(self.http_duration)
        self._graphql_requests = _Series(self.graphql_requests)
        self._graphql_duration = _Series(self.graphql_duration)

    def operation(self, root_field: str | None) -> str:
        """The root field an operation ran (`schema.operation.ROOT_FIELD`), never the name its client gave it: a
        name could claim any root field, and would put real operations (`query Chart { … }`) under OTHER."""
        return root_field if root_field in self._operations else OTHER

    def start(self, scope: Scope) -> None:
        scope.setdefault("state", {})[ERROR_COUNTER] = _ErrorCodes(self.graphql_errors)

    def finish(self, scope: Scope, status: int, seconds: float) -> None:
        # A websocket connection is not a request: its operations' errors are counted as they happen.
        if scope["type"] != "http":
            return
        route = _route(scope)
        self._http_requests(route, str(status)).inc()
        self._http_duration(route).observe(seconds)
        state = scope.get("state", {})
        # The GraphQL view reads the request's meta (`request_meta`) when it builds the context for an operation:
        # without it, this was the IDE's page or a refusal before any document was read.
        meta = state.get("meta")
        if route != self._graphql_path or meta is None:
            return
        errors = state.get(ERROR_COUNTER)
        failed = status >= 400 or (isinstance(errors, _ErrorCodes) and errors.seen)
        operation = self.operation(state.get(ROOT_FIELD))
        self._graphql_requests(operation, "error" if failed else "ok").inc()
        self._graphql_duration(operation).observe(seconds)

    async def endpoint(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response("", status_code=401, headers={"www-authenticate": "Bearer"})
        now = self._clock()
        snapshot, taken = await self._snapshot.get(now, self._read_database)
        families = [*database_families(snapshot, taken), *pool_families()]
        body = generate_latest(_Scrape(self.registry, families))
        return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4, headers={"cache-control": "no-store"})

    async def _read_database(self, now: datetime) -> stats.Snapshot | None:
        try:
            # A scrape answers promptly or not at all, as /readyz does: a database that never answers (or Tortoise's
            # SQLite client after a failed connect) must not hang the scraper.
            async with asyncio.timeout(self._timeout):
                return await stats.snapshot(now=now)
        except Exception as exc:  # any failure to read is "down"; this process's request metrics still go out
            # The exception's class only: driver messages may quote the URL.
            log.warning("metrics.database_unreachable", extra={"error": type(exc).__name__})
            return None

    def _authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        try:
            presented = bearer_token(request.headers.get("authorization", ""))
        except DomainError:
            return False
        return hmac.compare_digest(presented.encode(), self._token.encode())


class _Cached:
    """The latest database snapshot while it is younger than `ttl`, read by one caller at a time: callers that wait
    for the lock then find it fresh. An unreachable database is kept too, so that a flood of scrapes does not queue
    one timeout after another."""

    def __init__(self, ttl: timedelta) -> None:
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._value: stats.Snapshot | None = None
        self._taken: datetime | None = None

    async def get(
        self, now: datetime, read: Callable[[datetime], Awaitable[stats.Snapshot | None]]
    ) -> tuple[stats.Snapshot | None, datetime]:
        """The snapshot and the time it was read at (its gauges are as of then)."""
        async with self._lock:
            # A clock that went back (the wall clock set right) makes the snapshot stale, not young.
            if self._taken is None or not self._taken <= now < self._taken + self._ttl:
                self._value, self._taken = await read(now), now
            return self._value, self._taken


class _Scrape:
    """This process's registry and one scrape's database gauges, rendered together."""

    def __init__(self, registry: CollectorRegistry, families: list[Metric]) -> None:
        self._registry = registry
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._registry.collect()
        yield from self._families


def _route(scope: Scope) -> str:
    """The matched route's template (`/fhir/Patient/{patient_id}/$everything`), never the raw path: paths hold ids."""
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else UNMATCHED


def database_families(snapshot: stats.Snapshot | None, now: datetime) -> list[Metric]:
    up = _gauge("interlude_db_up", "1 when the database answered this scrape", int(snapshot is not None))
    if snapshot is None:
        return [up]
    prompts, outbox = snapshot.prompts, snapshot.outbox
    return [
        up,
        _by("interlude_prompts", "Prompts by status (SCHEDULED: planned)", "status", prompts.items()),
        _by("interlude_push_messages", "Push outbox messages by status", "status", outbox.by_status.items()),
        _by(
            "interlude_push_errors",
            "Push messages whose latest attempt failed (retrying, failed, dead token), by provider error class",
            "error_class",
            outbox.errors.items(),
        ),
        _gauge(
            "interlude_outbox_lag_seconds",
            "How long the longest-waiting due push message has waited (0 when none is due)",
            outbox.lag_seconds(now),
        ),
    ]


def pool_families() -> list[Metric]:
    """PostgreSQL's connection pool, once open. SQLite has one connection and no pool: nothing is reported."""
    try:
        client = get_connection("default")
    except Exception:  # no database configured in this context: nothing to report
        return []
    pool = getattr(client, "_pool", None)  # Tortoise's asyncpg client keeps its pool here, created on first use
    if not isinstance(pool, asyncpg.Pool):
        return []
    size, idle = pool.get_size(), pool.get_idle_size()
    return [
        _gauge("interlude_db_pool_size", "Open connections in the database pool", size),
        _gauge("interlude_db_pool_in_use", "Pool connections in use", size - idle),
        _gauge("interlude_db_pool_max", "The database pool's maximum size", pool.get_max_size()),
    ]


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by(name: str, documentation: str, label: str, values: Iterable[tuple[str, int]]) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in values:
        family.add_metric([str(key)], value)
    return family
