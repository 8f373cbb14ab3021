"""The static identity-quality report: the explorer's identity-quality and channel-KPI content as
one self-contained HTML file (styles, plotly.js and chart data inlined), so a person sees it
without starting a server, offline. Written atomically by `cdp run` and `cdp report` to
`{artefacts}/report/identity_quality.html`.

It carries no personal data: counts, rates, and identifier values masked.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cdp.config import Settings
from cdp.io import atomic_path
from cdp.summary import StepSummary
from cdp.web import charts
from cdp.web.db import read_warehouse
from cdp.web.render import STATIC_DIR, kpi_context, quality_context, render

REPORT_NAME = "identity_quality.html"


def report_path(settings: Settings) -> Path:
    return settings.resolved_paths.artefacts / "report" / REPORT_NAME


def _inline_script(source: str) -> str:
    # A script body must not close its own <script> element early.
    return source.replace("</script", "<\\/script")


def render_report(settings: Settings) -> str:
    """The report's HTML."""
    with read_warehouse(settings) as reader:
        context = {**quality_context(settings, reader), **kpi_context(reader)}
    return render(
        "report.html", project=settings.project,
        written_at=datetime.now().strftime("%Y-%m-%d %H:%M"),
        warehouse=settings.resolved_paths.warehouse.name,
        css=(STATIC_DIR / "style.css").read_text(encoding="utf-8"),
        plotly_js=_inline_script(charts.plotly_js()),
        charts_js=_inline_script((STATIC_DIR / "charts.js").read_text(encoding="utf-8")),
        **context)


def write_report(settings: Settings) -> StepSummary:
    """Write the report (replacing the previous one in one rename); its path and headline
    figures in the summary."""
    html = render_report(settings)
    path = report_path(settings)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
    summary = StepSummary(title="report")
    summary.add("identity quality report", str(path))
    summary.add("size", f"{len(html.encode('utf-8')) / 1e6:,.1f} MB (plotly.js inlined)")
    summary.figures = {"path": str(path), "bytes": len(html.encode("utf-8"))}
    return summary
