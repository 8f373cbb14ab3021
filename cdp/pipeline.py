"""The whole pipeline, step by step: what `cdp run` and the end-to-end tests execute."""

from __future__ import annotations

from collections.abc import Callable

from cdp.config import ConfigError, Settings
from cdp.errors import CdpError
from cdp.summary import StepSummary

Step = tuple[str, Callable[[], StepSummary]]


def pipeline_steps(settings: Settings, people: int = 2000, seed: int = 42) -> list[Step]:
    """The ordered steps for this configuration. Imports are late: each step loads its stack."""

    def generate() -> StepSummary:
        from cdp.generate import generate as run

        return run(settings, people=people, seed=seed)

    def ingest() -> StepSummary:
        from cdp.ingest import ingest as run

        return run(settings)

    def resolve() -> StepSummary:
        from identity import resolve as run

        return run(settings)

    def evaluate() -> StepSummary:
        from identity import evaluate as run

        return run(settings, settings.resolved_paths.truth)

    def build() -> StepSummary:
        from cdp.build import build as run

        return run(settings)

    landing = settings.resolved_paths.landing
    steps: list[Step] = []
    if not landing.exists() or not any(landing.iterdir()):
        steps.append(("generate", generate))
    steps += [("ingest", ingest), ("resolve", resolve)]
    # The truth file only exists for generated data; evaluation is skipped on real data.
    steps.append(("evaluate", evaluate))
    steps.append(("build", build))
    return steps


def run_pipeline(
    settings: Settings,
    people: int = 2000,
    seed: int = 42,
    on_step: Callable[[StepSummary], None] = lambda s: None,
    on_error: Callable[[Exception], None] = lambda e: None,
) -> list[StepSummary]:
    """Run every step in order; stop at the first that fails (downstream never sees bad data)."""
    summaries: list[StepSummary] = []
    for name, step in pipeline_steps(settings, people=people, seed=seed):
        if name == "evaluate" and not settings.resolved_paths.truth.exists():
            continue
        try:
            summary = step()
        except (CdpError, ConfigError) as exc:
            on_error(exc)
            summaries.append(StepSummary(title=name, ok=False, notes=[str(exc)]))
            break
        on_step(summary)
        summaries.append(summary)
        if not summary.ok:
            break
    return summaries
