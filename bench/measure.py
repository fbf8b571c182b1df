"""What one phase reports: wall time, row counts, SQL statements by verb and the process's peak memory."""

from __future__ import annotations

import logging
import resource
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SQL_LOGGER = "tortoise.db_client"
STATUS = Path("/proc/self/status")


@dataclass
class PhaseResult:
    phase: str
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    sql: dict[str, int] = field(default_factory=dict)
    maxrss_kib: int = 0


class SqlCounter(logging.Handler):
    """Counts the statements Tortoise logs at DEBUG, by their first word. It never formats a record: the
    arguments carry the statement's parameters, which are patient data."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.verbs: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        query = record.args[0] if isinstance(record.args, tuple) and record.args else record.msg
        words = str(query).split(None, 1)
        self.verbs[words[0].upper() if words else "?"] += 1

    def take(self) -> dict[str, int]:
        counts = dict(self.verbs)
        self.verbs.clear()
        return counts


@contextmanager
def counting_sql() -> Iterator[SqlCounter]:
    """Statements reach only the counter: no other handler ever sees them."""
    logger = logging.getLogger(SQL_LOGGER)
    counter = SqlCounter()
    saved = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def peak_rss_kib() -> int:
    """The largest resident set of this process image, in KiB.

    VmHWM, not `getrusage().ru_maxrss`: Linux carries ru_maxrss over an exec from the forked copy of the parent,
    so a child spawned by a 200 MiB parent reports at least 200 MiB whatever it did itself. VmHWM starts afresh
    with the new image.
    """
    try:
        with STATUS.open() as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
