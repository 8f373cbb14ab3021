"""Team policy as a test: the code base stays ruff-clean (config in pyproject.toml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    folders = [p for p in ("cdp", "identity", "dags", "jobs", "tests", "benchmarks")
               if (REPO_ROOT / p).exists()]
    result = subprocess.run([ruff, "check", *folders], cwd=REPO_ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr
