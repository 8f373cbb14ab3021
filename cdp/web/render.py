"""Templates (Jinja2, autoescaped) and the view data both the explorer and the report render."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from cdp.config import Settings
from cdp.gates.masking import mask_value
from cdp.web import charts
from cdp.web.db import Reader, when
from cdp.web.kpis import channel_kpis
from cdp.web.quality import identity_quality
from identity.store import artefacts_dir

STATIC_DIR = Path(__file__).parent / "static"


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float | Decimal) and value != int(value):
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _money(value: Any) -> str:
    return "-" if value is None else f"{float(value):,.2f}"


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return when(value)
    if isinstance(value, list | tuple):
        return ", ".join(_show(v) for v in value)
    return str(value)


def _mask(value: Any) -> str:
    return "" if value is None else str(mask_value(value, pii=True))


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("cdp.web", "templates"),
                      autoescape=select_autoescape(["html"]), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters.update(num=_num, money=_money, show=_show, mask=_mask, when=when)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def quality_context(settings: Settings, reader: Reader) -> dict[str, Any]:
    """What `_quality.html` needs: figures and charts (identifier values masked)."""
    quality = identity_quality(settings, reader)
    evaluation = artefacts_dir(settings) / "evaluation.json"
    evaluated_at = (datetime.fromtimestamp(evaluation.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
                    if evaluation.exists() else "")
    return {
        "quality": quality,
        "evaluated_at": evaluated_at,
        "max_people": settings.identity.max_people_per_identifier,
        "figures": {
            "records_vs_customers": charts.records_vs_customers(quality["per_channel"]),
            "cluster_sizes": charts.cluster_sizes(quality["sizes"],
                                                  quality["channels_per_customer"]),
            "weights": charts.weight_histogram(quality["weights"], quality["threshold_weight"]),
            "classes": charts.identifier_classes(quality["classes"]),
        },
    }


def kpi_context(reader: Reader) -> dict[str, Any]:
    """What `_kpis.html` needs (None for `kpis` when the marts are missing)."""
    kpis = channel_kpis(reader)
    if kpis is None:
        return {"kpis": None, "kpi_figures": {}}
    monthly = kpis["monthly"]
    return {"kpis": kpis, "kpi_figures": {
        "revenue": charts.revenue_by_month(monthly),
        "buyers": charts.buyers_by_month(monthly),
        "conversion": charts.conversion_by_month(monthly),
        "omnichannel": charts.omnichannel_by_month(monthly),
        "comparison": charts.omnichannel_comparison(kpis["comparison"]),
    }}
