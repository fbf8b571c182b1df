"""bench/instructions.py's child, run without Valgrind at a tiny size: each app answers a case without an error (the
driver stops at the first one), and counting is switched on before the measured requests and off after them, once
each. Each case's requests are bench/cpu.py's and bench/api.py's, whose tests run them all. `callgrind_control` is
a stand-in here that records its arguments: the suite does not need Valgrind. PostgreSQL only: with PostgreSQL down
it fails, never skips."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.instructions import APPS
from tests.conftest import POSTGRES

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--requests", "3", "--patients", "1", "--days", "10"]


@pytest.mark.parametrize("app", APPS)
def test_the_child_answers_a_case_and_counts_only_the_measured_requests(app: str, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    stand_in = tmp_path / "callgrind_control"
    stand_in.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    stand_in.chmod(0o755)
    env = {**os.environ, "INTERLUDE_BENCH_POSTGRES": POSTGRES, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    command = [sys.executable, "-m", "bench.instructions", "--child", app, "--cases", "diary30", *TINY]
    # Fixed arguments, no shell.
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=240, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    on, off = (line.split() for line in calls.read_text().splitlines())
    assert on[0] == "--instr=on"
    assert off[0] == "--instr=off"
    # Both name the child's own process.
    assert on[1] == off[1]
    assert on[1].isdigit()
