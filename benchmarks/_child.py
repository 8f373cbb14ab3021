"""Running a benchmark step in a fresh interpreter, so its peak memory (`ru_maxrss`) is its own.

Benchmarks run as scripts (`python benchmarks/bench_x.py`), so this folder is on `sys.path` and
they import it as `from _child import run_child`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run `code` with `args` in a fresh interpreter at the repository root (extra `env` on top
    of this one's); it prints one JSON line last, returned parsed. A failure stops the benchmark
    with the child's stderr (its tail here, all of it in a log file)."""
    proc = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, text=True,
                          capture_output=True, check=False, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        log = Path(tempfile.gettempdir()) / "cdp-bench-child.log"
        log.write_text(proc.stderr, encoding="utf-8")
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"child failed with exit code {proc.returncode} (stderr in {log})")
    return json.loads(proc.stdout.strip().splitlines()[-1])
