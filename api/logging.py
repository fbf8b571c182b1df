"""Structured JSON logs carrying ids only. SQL logging stays off: its parameters are health data."""

from __future__ import annotations

import json
import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TextIO

import orjson

# Attributes a LogRecord always has; anything else was passed with extra= and is emitted as a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# uvicorn passes its message again with terminal colour codes; the plain one is enough.
_STANDARD.add("color_message")
# What `extra=` keys are not emitted as: the standard attributes, and the fields every line has (never replaced).
_NOT_EXTRA = frozenset(_STANDARD | {"time", "level", "logger", "event"})
# Libraries that log what must not reach our logs: Tortoise logs SQL parameters (health data) at DEBUG; httpx logs
# request URLs at INFO (an APNs path or a Web Push endpoint is a device token); h2/hpack log header blocks
# (bearer tokens) at DEBUG.
QUIET_LOGGERS = ("tortoise", "tortoise.db_client", "aiosqlite", "asyncpg", "httpx", "httpcore", "hpack", "h2")
# orjson writes what `json.dumps(…, default=str)` wrote, but for these, left to `str` as before (an instant as
# "2026-01-02 00:00:00", a dataclass as its repr). It refuses what the standard library takes (a key that is not a
# string, an int beyond 64 bits): such a line is written by the standard library.
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # An `extra=` key never replaces one of the fields above. Found by a set difference, in C (a record has
        # some 25 standard attributes to pass over), and written in the order of their names.
        held = record.__dict__
        for key in sorted(held.keys() - _NOT_EXTRA, key=str):  # `extra` may hold a key that is not text
            payload[key] = held[key]
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        try:
            # A line per request: the standard library's encoder was a sixth of a `{ __typename }` request's logging.
            return orjson.dumps(payload, default=str, option=_ORJSON_OPTIONS).decode()
        except TypeError:
            return json.dumps(payload, default=str)

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
    ) -> str:
        """Where it failed and with what class, never the message: a driver's or a library's message may quote the
        values it was given ("Key (email)=(…) already exists", a note that could not be encoded)."""
        error = ei[1]
        blocks: list[str] = []
        seen: set[int] = set()
        while error is not None and id(error) not in seen:
            seen.add(id(error))
            frames = "".join(traceback.format_tb(error.__traceback__)).rstrip("\n")
            kind = type(error)
            blocks.append(f"Traceback (most recent call last):\n{frames}\n{kind.__module__}.{kind.__qualname__}")
            error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
        # As Python prints them: the first cause first, the exception that was logged last.
        return "\n\nThe above led to:\n\n".join(reversed(blocks))


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # A line names neither its thread nor its process nor the file and line that logged it (`JsonFormatter` leaves
    # them out): the logging HOWTO's "Optimization" is not to look them up for every record. The caller's file and
    # line cost a walk of the caller's frames for each record (0.9% of a diary write's instructions, bench/README.md,
    # session 17); with it goes `stack_info`, which nothing here asks for.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logging._srcfile = None
    # Tortoise logs every statement with its parameters at DEBUG; those parameters are patient data.
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's access log prints query strings; our own request log replaces it.
    logging.getLogger("uvicorn.access").disabled = True
