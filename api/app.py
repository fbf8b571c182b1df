"""The application factory: settings in, a Starlette app with its lifespan out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from tortoise.contrib.starlette import RegisterTortoise

from api import migrations
from api.container import build_broker, build_job_config, build_services
from api.db import tortoise_config
from api.domain.clock import utc_now
from api.export import ExportRoutes
from api.graphql import InterludeGraphQL
from api.metrics import Metrics, root_fields
from api.middleware import RequestIdMiddleware
from api.push_setup import build_providers, close_providers
from api.settings import Settings
from jobs.scheduler import JobClock
from schema import build_schema
from schema.limits import Limits

log = logging.getLogger("interlude.http")


def create_app(settings: Settings, *, manage_orm: bool = True, clock: Callable[[], datetime] = utc_now) -> Starlette:
    """`manage_orm=False` leaves Tortoise to the caller (tests that already hold a database context)."""
    # One per process: the app's subscriptions and the in-process jobs share it.
    broker = build_broker(settings)
    # Tokens signed with a retired key are accepted only if issued before this instant (api/domain/account/tokens.py).
    services = build_services(settings, broker, now=clock())
    limits = Limits(
        depth=settings.max_query_depth,
        aliases=settings.max_query_aliases,
        tokens=settings.max_query_tokens,
        cost=settings.max_query_cost,
        bytes=settings.max_query_bytes,
    )
    graphql = InterludeGraphQL(
        build_schema(production=settings.is_production, limits=limits),
        services=services,
        clock=clock,
        limits=limits,
        graphql_ide=None if settings.is_production else "graphiql",
        # Queries only: mutations over GET are refused with 405 (GraphQL over HTTP).
        allow_queries_via_get=True,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        allowed_origins=tuple(settings.cors_origins),
    )
    readiness = Readiness(timeout=settings.readiness_timeout_seconds)
    metrics = Metrics(
        operations=root_fields(graphql.schema),
        clock=clock,
        token=settings.metrics_token,
        timeout=settings.readiness_timeout_seconds,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with serving(app):
                yield
        finally:
            # After the jobs, which may still publish while they stop.
            await broker.close()

    @asynccontextmanager
    async def serving(app: Starlette) -> AsyncIterator[None]:
        if not manage_orm:
            yield
            return
        async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
            if not settings.runs_jobs_in_process:
                yield
                return
            # Embedded mode (SQLite): this process is also the jobs process, so the demo shows prompts flowing.
            providers = build_providers(settings)
            jobs = JobClock(build_job_config(settings, providers, services.alerts), clock)
            jobs.start()
            try:
                yield
            finally:
                await jobs.stop()
                await close_providers(providers)

    app = Starlette(
        debug=False,
        routes=[
            Route("/graphql", graphql, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql),
            Route("/healthz", healthz),
            Route("/readyz", readiness.endpoint),
            Route("/metrics", metrics.endpoint),
            *ExportRoutes(services, clock, public_base_url=settings.public_base_url).routes(),
        ],
        middleware=[
            Middleware(RequestIdMiddleware, metrics=metrics),
            *_cors(settings.cors_origins),
            # Inside the request-id middleware (not `Starlette(max_body_size=…)`, which sits outside every user
            # middleware): a 413 carries its request id, is logged, and has CORS headers a browser can read.
            Middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes),
        ],
        lifespan=lifespan,
    )
    # The composition root's services, reachable for operators' tooling and tests (never per-request state).
    app.state.services = services
    return app


def _cors(origins: list[str]) -> list[Middleware]:
    """Browsers on these origins may call the API. With none (the phone apps need none) there is no CORS layer at
    all: a preflight is then refused as any OPTIONS request is (405), and each request is spared the layer's
    wrapping of its response (bench/README.md)."""
    if not origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type", "x-request-id"],
            expose_headers=["x-request-id"],
            max_age=600,
        )
    ]


async def healthz(_: Request) -> JSONResponse:
    """Liveness: the process answers. Says nothing about the database."""
    return JSONResponse({"status": "ok"})


class Readiness:
    """Ready when the database answers and every migration is applied."""

    def __init__(self, *, timeout: float) -> None:
        self._migrated = False
        self._timeout = timeout

    async def endpoint(self, _: Request) -> JSONResponse:
        try:
            # A probe answers promptly or not at all: a database that accepts connections but never answers (or
            # Tortoise's SQLite client after a failed connect, which keeps its lock) must not hang the prober.
            async with asyncio.timeout(self._timeout):
                await migrations.check_connection()
                # Once seen complete, the plan need not be rebuilt: migrations never go away under a running app.
                self._migrated = self._migrated or await migrations.pending() == 0
        except Exception as exc:  # any failure to answer means "not ready"
            # The exception's class only: probes repeat every few seconds, and driver messages may quote the URL.
            log.warning("readyz.database_unreachable", extra={"error": type(exc).__name__})
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        if not self._migrated:
            return JSONResponse({"status": "unavailable", "database": "migrations pending"}, status_code=503)
        return JSONResponse({"status": "ok"})
