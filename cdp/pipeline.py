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
        from identity.schedule import resolve_in_mode

        return resolve_in_mode(settings)  # identity.scheduled_mode: full, or auto

    def evaluate() -> StepSummary:
        from identity import evaluate as run

        return run(settings, settings.resolved_paths.truth)

    def build() -> StepSummary:
        from cdp.build import build as run

        return run(settings)

    def gate(stage: str) -> Callable[[], StepSummary]:
        def run_stage() -> StepSummary:
            from cdp.gates import run_gate

            return run_gate(settings, stage)

        return run_stage

    def sync() -> StepSummary:
        from cdp.activation import sync as run

        return run(settings)

    def report() -> StepSummary:
        from cdp.web import write_report

        return write_report(settings)

    landing = settings.resolved_paths.landing
    steps: list[Step] = []
    if not landing.exists() or not any(landing.iterdir()):
        steps.append(("generate", generate))
    # A failed gate stops the run: nothing downstream of it sees the bad data.
    steps += [("ingest", ingest), ("gate raw", gate("raw")), ("resolve", resolve),
              ("gate identity", gate("identity"))]
    # The truth file only exists for generated data; evaluation is skipped on real data.
    steps.append(("evaluate", evaluate))
    # The identity-quality report right after the build, so a failed marts gate still has one.
    steps += [("build", build), ("report", report), ("gate marts", gate("marts")),
              ("sync", sync)]
    return steps


def run_pipeline(
    settings: Settings,
    people: int = 2000,
    seed: int = 42,
    on_step: Callable[[StepSummary], None] = lambda s: None,
    on_error: Callable[[Exception], None] = lambda e: None,
) -> dict[str, StepSummary]:
    """Run every step in order; stop at the first that fails (downstream never sees bad data).

    Returns the summaries by step name, in the order they ran.
    """
    summaries: dict[str, StepSummary] = {}
    for name, step in pipeline_steps(settings, people=people, seed=seed):
        if name == "evaluate" and not settings.resolved_paths.truth.exists():
            continue
        try:
            summary = step()
        except (CdpError, ConfigError) as exc:
            on_error(exc)
            summaries[name] = getattr(exc, "summary", None) or StepSummary(title=name)
            summaries[name].ok = False
            summaries[name].notes.append(str(exc))
            break
        on_step(summary)
        summaries[name] = summary
        if not summary.ok:
            break
    return summaries


def headline(summaries: dict[str, StepSummary]) -> StepSummary:
    """The few numbers a person wants at the end of a run, from the steps' figures."""
    out = StepSummary(title="cdp run: summary", ok=all(s.ok for s in summaries.values()))
    if generated := summaries.get("generate"):
        out.add("demo data generated", f"{generated.figures.get('people', 0):,} people, "
                                       f"{generated.figures.get('total_rows', 0):,} rows")
    if ingested := summaries.get("ingest"):
        f = ingested.figures
        if f.get("files_loaded"):
            out.add("rows ingested", f"{f.get('rows_received', 0):,} received = "
                                     f"{f.get('rows_loaded', 0):,} loaded + "
                                     f"{f.get('rows_quarantined', 0):,} quarantined")
        else:
            out.add("rows ingested", f"no new files ({f.get('files_skipped', 0)} already loaded)")
    if resolved := summaries.get("resolve"):
        f = resolved.figures
        out.add("identity", f"{f.get('rows_total', 0):,} source records -> "
                            f"{f.get('customers', 0):,} customers")
    if evaluated := summaries.get("evaluate"):
        f = evaluated.figures
        out.add("accuracy vs truth", f"precision {f['precision']:.4f}  recall {f['recall']:.4f}"
                                     f"  F1 {f['f1']:.4f}")
    if built := summaries.get("build"):
        f = built.figures
        segments = {k: v for k, v in f.get("rows", {}).items() if k.startswith("segment_")
                    and k not in ("segment_membership", "segment_membership_changes",
                                  "segment_size_history")}
        out.add("segments", "\n".join(f"{k.removeprefix('segment_')}: {v:,}"
                                       for k, v in segments.items()))
        if (index := f.get("omnichannel_spend_index")) is not None:
            out.add("omnichannel vs single-channel spend", f"{index:.2f}x")
    if synced := summaries.get("sync"):
        f = synced.figures
        out.add("activation", f"{len(f.get('pairs', []))} segment/destination syncs: "
                              f"{f.get('adds', 0):,} adds, {f.get('removes', 0):,} removes, "
                              f"{f.get('matchable_share', 0):.1%} matchable")
    if reported := summaries.get("report"):
        out.add("identity quality report", reported.figures.get("path", "-"))
    gates = [name for name in summaries if name.startswith("gate ")]
    if gates:
        out.add("quality gates", ", ".join(f"{g.removeprefix('gate ')} "
                                           f"{'passed' if summaries[g].ok else 'FAILED'}"
                                           for g in gates))
    for name, summary in summaries.items():
        if not summary.ok:
            out.add("stopped at", name)
    return out
