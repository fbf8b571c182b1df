"""HTTP routes for exports: FHIR `$everything`, a patient's own record, the clinic's bulk NDJSON and diary CSV.

Bearer-token authentication as on /graphql. Refusals are JSON (an OperationOutcome on the FHIR route) with the HTTP
status of their code; an id that cannot be parsed is a patient that does not exist (404), never a 500. Nothing is
cached anywhere: every response carries `Cache-Control: no-store`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from api.auth import bearer_token, request_meta
from api.domain.actor import Actor
from api.domain.errors import DomainError, ErrorCode, NotFound
from api.domain.services import Services
from api.http_status import http_status
from schema.errors import camel

FHIR_JSON = "application/fhir+json"
NO_STORE = {"Cache-Control": "no-store"}
# Lines are sent in chunks of about this size: one ASGI message per line would cost more than the line itself.
CHUNK_BYTES = 64 * 1024

# FHIR R4 issue-type codes (http://hl7.org/fhir/issue-type) for our error codes.
ISSUE_TYPE = {
    ErrorCode.UNAUTHENTICATED: "login",
    ErrorCode.FORBIDDEN: "forbidden",
    ErrorCode.NOT_FOUND: "not-found",
    ErrorCode.BAD_USER_INPUT: "invalid",
    ErrorCode.CONFLICT: "conflict",
    ErrorCode.RATE_LIMITED: "throttled",
}


class ExportRoutes:
    def __init__(
        self, services: Services, clock: Callable[[], datetime], *, public_base_url: str | None = None
    ) -> None:
        self.services = services
        self.clock = clock
        self.public_base_url = public_base_url

    def routes(self) -> list[Route]:
        return [
            Route("/fhir/Patient/{patient_id}/$everything", self.everything, methods=["GET"]),
            Route("/export/clinic.ndjson", self.clinic_ndjson, methods=["GET"]),
            Route("/export/diary.csv", self.diary_csv, methods=["GET"]),
            Route("/export/me", self.own_record, methods=["GET"]),
        ]

    async def everything(self, request: Request) -> Response:
        now = self.clock()
        try:
            actor = self._actor(request, "fhir.everything", now)
            patient_id = _patient_id(request.path_params["patient_id"])
            base_url = self._base_url(request) + "/fhir"
            bundle = await self.services.exports.patient_everything(actor, patient_id, base_url=base_url, now=now)
        except DomainError as exc:
            return _operation_outcome(exc)
        return JSONResponse(bundle, media_type=FHIR_JSON, headers=NO_STORE)

    async def own_record(self, request: Request) -> Response:
        """The signed-in patient's whole record as a file to keep (GDPR Art. 20): the Bundle of their `$everything`."""
        now = self.clock()
        try:
            actor = self._actor(request, "export.me", now)
            base_url = self._base_url(request) + "/fhir"
            bundle = await self.services.exports.own_record(actor, base_url=base_url, now=now)
        except DomainError as exc:
            return _operation_outcome(exc)
        name = f"interlude-record-{now.date().isoformat()}.json"
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
        return JSONResponse(bundle, media_type=FHIR_JSON, headers=headers)

    async def clinic_ndjson(self, request: Request) -> Response:
        now = self.clock()
        try:
            actor = self._actor(request, "export.clinic_ndjson", now)
            lines = await self.services.exports.clinic_ndjson(actor, now=now)
        except DomainError as exc:
            return _error(exc)
        return StreamingResponse(_chunks(lines), media_type="application/x-ndjson", headers=NO_STORE)

    async def diary_csv(self, request: Request) -> Response:
        now = self.clock()
        try:
            actor = self._actor(request, "export.diary_csv", now)
            raw = request.query_params.get("patientId")
            patient_id = None if raw is None else _patient_id(raw, field="patient_id")
            lines = await self.services.exports.diary_csv(actor, patient_id, now=now)
        except DomainError as exc:
            return _error(exc)
        name = "diary.csv" if patient_id is None else f"diary-{patient_id}.csv"
        headers = {**NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'}
        return StreamingResponse(_chunks(lines), media_type="text/csv; charset=utf-8", headers=headers)

    def _base_url(self, request: Request) -> str:
        # The request's base URL is built from its Host header, which the client picks: links in a bundle that is
        # saved and shared must not point wherever a caller said. Deployments set the public URL.
        base = self.public_base_url or str(request.base_url)
        return base.rstrip("/")

    def _actor(self, request: Request, operation: str, now: datetime) -> Actor:
        meta = request_meta(request)
        meta.operation = operation
        token = bearer_token(request.headers.get("authorization", ""))
        actor = self.services.accounts.tokens.verify(token, now=now, meta=meta)
        request.scope["state"]["actor_id"] = str(actor.account_id)
        return actor


def _patient_id(raw: str, field: str | None = None) -> UUID:
    try:
        return UUID(raw)
    except ValueError as exc:
        raise NotFound("patient", field=field) from exc


async def _chunks(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    buffer: list[bytes] = []
    size = 0
    async for line in lines:
        encoded = line.encode()
        buffer.append(encoded)
        size += len(encoded)
        if size >= CHUNK_BYTES:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def _headers(exc: DomainError) -> dict[str, str]:
    if exc.code is ErrorCode.UNAUTHENTICATED:
        return {**NO_STORE, "WWW-Authenticate": "Bearer"}
    return NO_STORE


def _error(exc: DomainError) -> JSONResponse:
    error: dict[str, Any] = {"code": exc.code.value, "message": exc.message}
    if exc.field is not None:
        error["field"] = camel(exc.field)
    return JSONResponse({"error": error}, status_code=http_status(exc.code), headers=_headers(exc))


def _operation_outcome(exc: DomainError) -> JSONResponse:
    issue = {"severity": "error", "code": ISSUE_TYPE.get(exc.code, "processing"), "diagnostics": exc.message}
    body = {"resourceType": "OperationOutcome", "issue": [issue]}
    return JSONResponse(body, status_code=http_status(exc.code), media_type=FHIR_JSON, headers=_headers(exc))
