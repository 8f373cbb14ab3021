"""What every step returns: a short, readable account of what it did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class StepSummary:
    title: str
    rows: list[tuple[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ok: bool = True
    # Machine-readable figures for callers (Airflow tasks, tests, the final run summary).
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, label: str, value: Any) -> StepSummary:
        self.rows.append((label, value))
        return self
