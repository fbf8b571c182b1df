"""bench/cpu.py run at a tiny size, so that it cannot rot unnoticed: every case is answered without an error (the
driver stops the run at the first one) and each gets a figure next to the baseline. PostgreSQL only, like
test_api_bench.py: with PostgreSQL down it fails, never skips. Its figures mean nothing at this size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.cases import CASES
from tests.conftest import POSTGRES

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--patients", "2", "--days", "20", "--requests", "10", "--warmup", "2"]


def test_every_case_runs_in_process_and_is_reported_against_the_baseline() -> None:
    command = [sys.executable, "-m", "bench.cpu", *TINY, "--cases", *CASES]
    env = {**os.environ, "INTERLUDE_BENCH_POSTGRES": POSTGRES}
    # Fixed arguments, no shell.
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=240, check=False)  # noqa: S603
    output = done.stdout.decode(errors="replace")
    assert done.returncode == 0, (output + done.stderr.decode(errors="replace"))[-4000:]
    rows = {line.split()[0]: line.split()[1:] for line in output.splitlines()[1:] if line.strip()}
    assert set(rows) == {"baseline", *CASES}
    assert rows["baseline"][1] == "1.00×"
    for case in CASES:
        assert float(rows[case][0].replace(",", "")) > 0
