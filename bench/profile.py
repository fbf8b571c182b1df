"""Where a server's time goes, from py-spy's raw samples (`bench.api --profile`): each sample is charged to the
innermost frame that belongs to a known layer, so time in asyncpg under the ORM counts as the driver's.

    python -m bench.profile bench-profiles/interlude-diary30.txt [more files …]
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

# (layer, what a frame's text contains), tried from the innermost frame outwards; the first match wins.
LAYERS: Sequence[tuple[str, Sequence[str]]] = (
    ("PostgreSQL driver (asyncpg)", ("asyncpg/",)),
    ("ORM (Tortoise, PyPika)", ("tortoise/", "pypika")),
    ("GraphQL validation", ("graphql/validation/", "graphql/utilities/type_info")),
    ("GraphQL parsing", ("graphql/language/",)),
    ("GraphQL execution", ("graphql/execution/", "schema/execution.py")),
    ("JSON", ("orjson", "json/")),
    ("token check (PyJWT)", ("jwt/",)),
    ("logging", ("logging/", "api/logging.py")),
    ("Strawberry (schema, extensions, view)", ("strawberry/",)),
    # py-spy names files relative to their sys.path entry: "api/domain/…", "schema/limits.py". Strawberry's own
    # "strawberry/schema/…" is claimed by the layer above, which is tried first.
    ("Interlude (domain, schema, limits, HTTP)", ("api/", "schema/")),
    ("HTTP (Starlette, uvicorn, httptools)", ("starlette/", "uvicorn/", "httptools")),
    ("event loop (uvloop, asyncio)", ("uvloop", "asyncio/")),
)
OTHER = "other"


def layer_of(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for layer, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return layer
    return OTHER


def shares(lines: Iterable[str]) -> tuple[Counter[str], int]:
    """Samples per layer, and the total, from py-spy's raw format: `frame;frame;…;frame count` per line."""
    counts: Counter[str] = Counter()
    for line in lines:
        stack, _, number = line.rstrip("\n").rpartition(" ")
        if not stack or not number.isdigit():
            continue
        # Idle threads and the loop waiting for I/O are not work.
        if "select (" in stack.rsplit(";", 1)[-1] or "_worker (concurrent" in stack:
            continue
        counts[layer_of(stack.split(";"))] += int(number)
    return counts, sum(counts.values())


def report(path: Path) -> str:
    counts, total = shares(path.read_text().splitlines())
    rows = [f"{path.name}: {total:,} samples"]
    for layer, n in counts.most_common():
        rows.append(f"  {layer:<44} {100 * n / total:5.1f}%")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    print("\n\n".join(report(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
