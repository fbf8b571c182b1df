"""The API benchmark (bench/api.py) run end to end at a tiny size, so that it cannot rot unnoticed: both servers
start, every case is answered by both apps without a single error, and the statement counts are collected.

PostgreSQL only, at INTERLUDE_TEST_POSTGRES like the rest of the suite; with PostgreSQL down the run fails, and so
does this test (it never skips). Its figures mean nothing at this size: only that the harness works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.cases import APPS, CASES
from tests.conftest import POSTGRES

ROOT = Path(__file__).resolve().parents[2]
SOAK = 200
TINY = ["--patients", "3", "--days", "30", "--seconds", "1", "--warmup", "0.5", "--rounds", "1", "--connections", "4"]


def _run(tmp_path: Path) -> tuple[subprocess.CompletedProcess[bytes], dict[str, Any]]:
    figures = tmp_path / "figures.json"
    command = [sys.executable, "-m", "bench.api", *TINY, "--soak", str(SOAK), "--json", str(figures)]
    env = {**os.environ, "INTERLUDE_BENCH_POSTGRES": POSTGRES}
    # Fixed arguments, no shell; the benchmark's own process tree, with its servers, ends before this returns.
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=240, check=False)  # noqa: S603
    return done, json.loads(figures.read_text()) if figures.exists() else {}


def test_every_case_is_answered_by_both_apps_without_errors_and_statements_are_counted(tmp_path: Path) -> None:
    done, figures = _run(tmp_path)
    report = (done.stdout + done.stderr).decode(errors="replace")[-4000:]
    assert done.returncode == 0, report
    assert figures["failures"] == [], report
    for case in CASES:
        for app in APPS:
            measured = figures["summary"][case][app]
            assert measured["errors"] == 0, (case, app, report)
            assert measured["rps"] > 0, (case, app, report)
            assert measured["server_cpu_us"] > 0, (case, app, report)
        check = figures["precheck"][case]
        assert check["same_items"], (case, check)
        assert check["floor_statements"] > 0, (case, check)
        counted = figures["interlude_statements"][case]
        assert counted["error"] is None, (case, counted)
        assert min(counted["statements"]) > 0, (case, counted)
    assert figures["soak"]["ok"] == SOAK, report
    assert all(kib > 0 for kib in figures["peak_rss_kib"].values())
