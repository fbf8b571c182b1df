"""Logs are JSON lines with request ids, and never carry health data, emails, passwords, tokens or invite codes."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any, cast
from uuid import uuid4

import httpx
import pytest

from api.domain.actor import Role
from api.logging import QUIET_LOGGERS, JsonFormatter, configure_logging
from tests.api.support import codes, data, post_graphql
from tests.factories import PASSWORD, Factory

NOTE = "zebra-hummingbird flare after the third infusion, cried at work"
PATIENT_EMAIL = "grace.hopper@patients.example"
PATIENT_PASSWORD = "Cobol-Compiler-1959"
WRONG_PASSWORD = "Definitely-Not-It-42"
DEVICE_TOKEN = "fcm-dQw4w9WgXcQ:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx"
# Every request line says which request, what ran, for whom and how long it took.
REQUEST_FIELDS = {"request_id", "operation", "actor_id", "duration_ms"}
EMAIL_SHAPE = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


@contextmanager
def captured_json_logs() -> Iterator[io.StringIO]:
    """`configure_logging("DEBUG")` writing into a buffer; the previous configuration is restored afterwards."""
    root = logging.getLogger()
    watched = [logging.getLogger(name) for name in (*QUIET_LOGGERS, "uvicorn.access")]
    saved = (list(root.handlers), root.level, [(lg.level, lg.disabled) for lg in watched])
    looked_up = (logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile)
    buffer = io.StringIO()
    configure_logging("DEBUG", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing, logging._srcfile = looked_up
        for lg, (level, disabled) in zip(watched, saved[2], strict=True):
            lg.setLevel(level)
            lg.disabled = disabled


class Flow:
    """Posts GraphQL and remembers every request id the server answered with."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.request_ids: list[str] = []

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        response = await post_graphql(self.http, query, variables, token=token)
        self.request_ids.append(response.headers["x-request-id"])
        return response


async def _run_flow(flow: Flow, factory: Factory, now: datetime) -> list[str]:
    """Every secret the flow handled, in the order it handled them."""
    clinic = await factory.clinic()
    clinician = await factory.staff(clinic, Role.CLINICIAN)
    login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken } }"
    staff = data(await flow(login, {"e": clinician.email, "p": PASSWORD}))["login"]

    invite = data(
        await flow(
            "mutation($i: InvitePatientInput!) { invitePatient(input: $i) { code patient { id } } }",
            {"i": {"displayName": "Grace H.", "email": PATIENT_EMAIL, "timezone": "Europe/London"}},
            token=staff["accessToken"],
        )
    )["invitePatient"]
    register = "mutation($i: RegisterPatientInput!) { registerPatient(input: $i) { accessToken refreshToken } }"
    registration = {"inviteCode": invite["code"], "email": PATIENT_EMAIL, "password": PATIENT_PASSWORD}
    registered = data(await flow(register, {"i": registration}))["registerPatient"]
    reused = await flow(register, {"i": registration})  # a used code is refused; the refusal must not log it
    assert codes(reused)
    assert "INTERNAL" not in codes(reused)

    patient = data(await flow(login, {"e": PATIENT_EMAIL, "p": PATIENT_PASSWORD}))["login"]
    entry = {"clientId": str(uuid4()), "recordedAt": (now - timedelta(hours=3)).isoformat(), "painNow": 7, "note": NOTE}
    log_entry = "mutation($i: DiaryEntryInput!) { logDiaryEntry(input: $i) { id note } }"
    assert data(await flow(log_entry, {"i": entry}, token=patient["accessToken"]))["logDiaryEntry"]["note"] == NOTE
    device = {"provider": "FCM", "token": DEVICE_TOKEN, "platform": "android"}
    register_device = "mutation($i: DeviceInput!) { registerDevice(input: $i) { id enabled } }"
    assert data(await flow(register_device, {"i": device}, token=patient["accessToken"]))["registerDevice"]["enabled"]
    # Refused before execution; graphql-core quotes the whole input (note included) in the error message.
    malformed = {k: v for k, v in entry.items() if k != "clientId"}
    assert codes(await flow(log_entry, {"i": malformed}, token=patient["accessToken"])) == ["BAD_USER_INPUT"]

    read = "query($id: ID!) { patient(id: $id) { diary(first: 5) { edges { node { note } } } } }"
    diary = data(await flow(read, {"id": invite["patient"]["id"]}, token=staff["accessToken"]))["patient"]["diary"]
    assert [e["node"]["note"] for e in diary["edges"]] == [NOTE]

    failed = await flow(login, {"e": PATIENT_EMAIL, "p": WRONG_PASSWORD})
    assert codes(failed) == ["UNAUTHENTICATED"]
    refresh = "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }"
    refreshed = data(await flow(refresh, {"t": patient["refreshToken"]}))["refreshSession"]
    assert codes(await flow("{ me { id } }", token="not-a-token-" + PATIENT_PASSWORD)) == ["UNAUTHENTICATED"]

    tokens = [t for session in (staff, registered, patient, refreshed) for t in session.values()]
    return [
        NOTE,
        "zebra-hummingbird",
        clinician.email,
        PATIENT_EMAIL,
        PASSWORD,
        PATIENT_PASSWORD,
        WRONG_PASSWORD,
        invite["code"],
        DEVICE_TOKEN,
        *tokens,
    ]


async def test_a_full_flow_logs_ids_but_no_personal_data(
    http: httpx.AsyncClient, factory: Factory, now: datetime
) -> None:
    flow = Flow(http)
    with captured_json_logs() as buffer:
        secrets = await _run_flow(flow, factory, now)
    lines = buffer.getvalue().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object

    text = buffer.getvalue()
    leaked = [s for s in secrets if s in text]
    assert not leaked, f"logs contain {len(leaked)} secret(s): {leaked}"
    assert not EMAIL_SHAPE.search(text), EMAIL_SHAPE.search(text)
    # Pain scores are small numbers, not findable as such: no field that carries one is named anywhere.
    assert not re.search(r"pain_?now", text, re.IGNORECASE)
    # …while still saying what happened, per request.
    requests = [r for r in records if r["event"] == "http.request"]
    assert set(flow.request_ids) <= {r["request_id"] for r in requests}
    assert len(flow.request_ids) == len(set(flow.request_ids)) == 12
    for request in requests:
        assert set(request) >= REQUEST_FIELDS, request
        assert isinstance(request["duration_ms"], int | float)
    by_operation = {r["operation"]: r for r in requests}
    assert {"login", "logDiaryEntry", "registerDevice", "patient"} <= set(by_operation)
    # Signed-in requests name their actor; a login does not have one yet.
    assert by_operation["logDiaryEntry"]["actor_id"] == by_operation["registerDevice"]["actor_id"] is not None
    assert by_operation["patient"]["actor_id"] not in (None, by_operation["logDiaryEntry"]["actor_id"])
    assert by_operation["login"]["actor_id"] is None

    # What /metrics says about the same requests is counts by operation and code, nothing anyone typed.
    exposition = (await http.get("/metrics")).text
    assert "interlude_graphql_requests_total" in exposition
    assert not [s for s in secrets if s in exposition]
    assert not EMAIL_SHAPE.search(exposition)


def test_logging_configuration_is_restored_after_capture() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, logging.getLogger("tortoise").level)
    with captured_json_logs():
        assert root.level == logging.DEBUG
        assert logging.getLogger("tortoise").level == logging.WARNING
        assert len(root.handlers) == 1
    assert (list(root.handlers), root.level, logging.getLogger("tortoise").level) == before


def test_configure_logging_silences_sql_and_access_logs() -> None:
    with captured_json_logs() as buffer:
        logging.getLogger("tortoise.db_client").debug("SELECT * FROM diary_entry WHERE note=%s", NOTE)
        logging.getLogger("asyncpg").info("connection params %s", PATIENT_PASSWORD)
        logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /?token=abc HTTP/1.1" 200')
        logging.getLogger("interlude.test").debug("debug.visible")
    assert [json.loads(line)["event"] for line in buffer.getvalue().splitlines()] == ["debug.visible"]


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_record_is_made_without_looking_up_who_logged_it() -> None:
    """No line names the file, function or line that logged it: their lookup (a walk of the caller's frames for every
    record) is turned off with the threads' and processes' (the logging HOWTO's "Optimization")."""
    kept = _Kept()
    with captured_json_logs() as buffer:
        logging.getLogger().addHandler(kept)
        logging.getLogger("interlude.test").info("looked.up", extra={"request_id": "r"})
    assert [(r.pathname, r.lineno, r.funcName, r.thread, r.process) for r in kept.records] == [
        ("(unknown file)", 0, "(unknown function)", None, None)
    ]
    payload = json.loads(buffer.getvalue())
    assert (payload["event"], payload["request_id"]) == ("looked.up", "r")


def _record(msg: str, *args: object, exc_info: Any = None, **extra: object) -> logging.LogRecord:
    return logging.getLogger("interlude.test").makeRecord(
        "interlude.test", logging.WARNING, __file__, 1, msg, args, exc_info, extra=extra or None
    )


def test_json_formatter_writes_one_object_per_line_with_extra_fields() -> None:
    record = _record("diary.%s", "logged", request_id="req-1", entry_id=uuid4(), at=datetime(2026, 1, 2), count=3)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "diary.logged"
    assert payload["level"] == "warning"
    assert payload["logger"] == "interlude.test"
    assert payload["request_id"] == "req-1"
    assert payload["count"] == 3
    assert payload["at"] == "2026-01-02 00:00:00"
    assert str(record.__dict__["entry_id"]) == payload["entry_id"]
    assert datetime.fromisoformat(payload["time"]).tzinfo is not None
    assert not {"msg", "args", "levelno", "pathname", "lineno", "thread", "process"} & set(payload)
    # The fields every line has first, then the extra ones by name.
    assert list(payload) == ["time", "level", "logger", "event", "at", "count", "entry_id", "request_id"]


def test_json_formatter_keeps_multi_line_messages_and_tracebacks_on_one_line() -> None:
    try:
        raise ValueError("first line\nsecond line")
    except ValueError:
        record = _record("job.failed\nwith detail", exc_info=sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    payload = json.loads(line)
    assert payload["event"] == "job.failed\nwith detail"
    assert "Traceback" in payload["exception"]
    assert payload["exception"].endswith("builtins.ValueError")


def test_a_logged_exception_names_its_class_and_frames_never_its_message() -> None:
    # Drivers quote what they were given: "Key (email)=(…) already exists", the value that could not be encoded.
    try:
        try:
            raise KeyError(f"Key (email)=({PATIENT_EMAIL}) already exists")
        except KeyError as exc:
            raise RuntimeError(f"could not store {NOTE!r}") from exc
    except RuntimeError:
        record = _record("graphql.unexpected_error", exc_info=sys.exc_info())
    logged = json.loads(JsonFormatter().format(record))["exception"]
    assert PATIENT_EMAIL not in logged
    assert NOTE not in logged
    assert "builtins.KeyError" in logged
    assert logged.endswith("builtins.RuntimeError")
    assert logged.index("builtins.KeyError") < logged.index("builtins.RuntimeError")
    assert "test_a_logged_exception_names_its_class_and_frames_never_its_message" in logged  # the frames are kept


def test_an_extra_key_that_is_not_text_is_written_all_the_same() -> None:
    record = _record("odd.extra")
    cast("dict[object, object]", record.__dict__)[7] = "seven"  # as `extra={7: …}` would leave it
    payload = json.loads(JsonFormatter().format(record))
    assert payload["7"] == "seven"


def test_json_formatter_extra_fields_cannot_replace_the_standard_ones() -> None:
    payload = json.loads(JsonFormatter().format(_record("real.event", event="fake", level="debug", logger="x")))
    assert (payload["event"], payload["level"], payload["logger"]) == ("real.event", "warning", "interlude.test")


@dataclass
class Shown:
    name: str


class Kind(Enum):
    PLAIN = "plain"


class Code(StrEnum):
    OK = "ok"


def test_json_formatter_writes_what_the_standard_librarys_encoder_wrote_with_str_for_the_rest() -> None:
    extra: dict[str, Any] = {
        "entry_id": uuid4(),
        "at": datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        "shown": Shown("x"),
        "kind": Kind.PLAIN,
        "code": Code.OK,
        "ratio": 0.1,
        "nested": {"ids": [1, 2], "none": None},
        "other": object(),
    }
    payload = json.loads(JsonFormatter().format(_record("x", **extra)))
    for name, value in extra.items():
        expected = json.loads(json.dumps(value, default=str))
        # orjson writes an enum's value where the standard library wrote str(member).
        assert payload[name] == (value.value if name == "kind" else expected), name


@pytest.mark.parametrize("value", [{1: "a key that is not a string"}, 2**70])
def test_json_formatter_writes_what_orjson_refuses_with_the_standard_library(value: object) -> None:
    payload = json.loads(JsonFormatter().format(_record("x", odd=value)))
    assert payload["odd"] == json.loads(json.dumps(value))
