"""Charts as Plotly figure JSON, drawn in the browser by plotly.js.

Plotly's Python package ships plotly.js (`plotly.offline.get_plotlyjs()`), so charts need no
CDN: the explorer serves that file itself and the static report inlines it once. Pages carry
each figure as JSON in a `data-figure` attribute; `static/charts.js` draws them.
"""

from __future__ import annotations

from collections import defaultdict
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cdp.web.quality import bucket_label

TEMPLATE = "plotly_white"
HEIGHT = 340


def _figure(data: list[Any], **layout: Any) -> str:
    import plotly.graph_objects as go

    figure = go.Figure(data=data)
    figure.update_layout(**{"template": TEMPLATE, "height": HEIGHT,
                            "margin": {"l": 50, "r": 20, "t": 40, "b": 50},
                            "legend": {"orientation": "h", "y": -0.2}, **layout})
    return figure.to_json()


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the plotly package."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# --- identity quality ------------------------------------------------------------------------

def records_vs_customers(per_channel: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    channels = [r["channel"] for r in per_channel]
    return _figure([
        go.Bar(name="source records in", x=channels, y=[r["records_in"] for r in per_channel]),
        go.Bar(name="identity records", x=channels,
               y=[r["identity_records"] for r in per_channel]),
        go.Bar(name="customers out", x=channels, y=[r["customers_out"] for r in per_channel]),
    ], title="Records in vs customers out, per channel", barmode="group",
        yaxis={"type": "log", "title": "count (log scale)"})


def cluster_sizes(sizes: list[dict[str, Any]], per_customer: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=(
        "customers by source records", "customers by channels"))
    figure.add_trace(go.Bar(x=[bucket_label(int(r["bucket"])) for r in sizes],
                            y=[r["customers"] for r in sizes], name="source records",
                            showlegend=False), row=1, col=1)
    figure.add_trace(go.Bar(x=[str(r["channels"]) for r in per_customer],
                            y=[r["customers"] for r in per_customer], name="channels",
                            showlegend=False), row=1, col=2)
    figure.update_layout(template=TEMPLATE, height=HEIGHT, title="Cluster sizes",
                         margin={"l": 50, "r": 20, "t": 60, "b": 50})
    figure.update_xaxes(type="category")
    return figure.to_json()


def weight_histogram(weights: list[dict[str, Any]], threshold_weight: float) -> str:
    import plotly.graph_objects as go

    by_type: dict[str, dict[float, int]] = defaultdict(dict)
    for row in weights:
        by_type[row["link_type"]][row["bin"]] = row["links"]
    bars = [go.Bar(name=kind, x=list(bins), y=list(bins.values()))
            for kind, bins in sorted(by_type.items())]
    return _figure(bars, title="Splink match weights of candidate links", barmode="stack",
                     xaxis={"title": "match weight (bits, 1-wide bins)"},
                     yaxis={"title": "links"},
                     shapes=[{"type": "line", "x0": threshold_weight, "x1": threshold_weight,
                              "y0": 0, "y1": 1, "yref": "paper",
                              "line": {"dash": "dash", "color": "#c0392b"}}],
                     annotations=[{"x": threshold_weight, "y": 1, "yref": "paper",
                                   "text": "threshold", "showarrow": False,
                                   "yanchor": "bottom"}])


def identifier_classes(classes: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    kinds = sorted({r["kind"] for r in classes})
    bars = []
    for cls in ("personal", "shared", "junk"):
        counts = {r["kind"]: r["values"] for r in classes if r["class"] == cls}
        bars.append(go.Bar(name=cls, x=kinds, y=[counts.get(k, 0) for k in kinds]))
    return _figure(bars, title="Identifier values by class", barmode="group",
                   yaxis={"type": "log", "title": "values (log scale)"})


# --- channel KPIs ----------------------------------------------------------------------------

def _by_channel(monthly: list[dict[str, Any]], column: str,
                selling_only: bool = False) -> list[Any]:
    """One line per channel (not the 'all' rows); `selling_only` keeps channels with orders."""
    import plotly.graph_objects as go

    selling = {r["channel"] for r in monthly if r["orders"]}
    series: dict[str, list[tuple[Any, Any]]] = defaultdict(list)
    for row in monthly:
        if row["channel"] != "all" and (row["channel"] in selling or not selling_only):
            series[row["channel"]].append((row["month"], row[column]))
    return [go.Scatter(name=channel, x=[p[0] for p in points], y=[p[1] for p in points],
                       mode="lines+markers")
            for channel, points in sorted(series.items())]


def revenue_by_month(monthly: list[dict[str, Any]]) -> str:
    return _figure(_by_channel(monthly, "revenue", selling_only=True),
                   title="Revenue per month, by channel", yaxis={"title": "revenue"})


def buyers_by_month(monthly: list[dict[str, Any]]) -> str:
    return _figure(_by_channel(monthly, "buyers", selling_only=True),
                   title="Buyers per month, by channel", yaxis={"title": "identified buyers"})


def conversion_by_month(monthly: list[dict[str, Any]]) -> str:
    return _figure(_by_channel(monthly, "conversion_rate"),
                   title="Conversion: reached customers who bought that month",
                   yaxis={"title": "conversion rate", "tickformat": ".0%"})


def omnichannel_by_month(monthly: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    rows = [r for r in monthly if r["channel"] == "all"]
    months = [r["month"] for r in rows]
    return _figure([
        go.Scatter(name="omnichannel buyers", x=months,
                   y=[r["omnichannel_revenue_per_buyer"] for r in rows], mode="lines+markers"),
        go.Scatter(name="single-channel buyers", x=months,
                   y=[r["single_channel_revenue_per_buyer"] for r in rows],
                   mode="lines+markers"),
    ], title="Revenue per buyer per month: omnichannel vs single-channel",
        yaxis={"title": "revenue per buyer"})


def omnichannel_comparison(comparison: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    types = [r["customer_type"].replace("_", "-") for r in comparison]
    return _figure([
        go.Bar(name="revenue per customer", x=types,
               y=[r["revenue_per_customer"] for r in comparison]),
        go.Bar(name="average order value", x=types,
               y=[r["avg_order_value"] for r in comparison]),
    ], title="Lifetime spend: omnichannel vs single-channel buyers", barmode="group")


# --- segments and customers ------------------------------------------------------------------

def segment_sizes(segments: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    return _figure([go.Bar(x=[s["name"] for s in segments], y=[s["size"] for s in segments])],
                   title="Segment sizes", yaxis={"title": "customers"})


def segment_history(history: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    days = [r["day"].isoformat() for r in history]  # one bar per build day, not a time axis
    return _figure([
        go.Scatter(name="size", x=days, y=[r["size"] for r in history], mode="lines+markers",
                   line={"shape": "hv"}),
        go.Bar(name="entered", x=days, y=[r["entered"] for r in history], opacity=0.4),
        go.Bar(name="exited", x=days, y=[-r["exited"] for r in history], opacity=0.4),
    ], title="Size over time (entries and exits per build day)",
        yaxis={"title": "customers"}, xaxis={"type": "category"}, barmode="relative")


def customer_timeline(by_channel: list[dict[str, Any]]) -> str:
    import plotly.graph_objects as go

    points: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in by_channel:
        points[row["interaction_type"]].append(row)
    traces = [go.Scatter(
        name=kind, mode="markers", x=[r["month"] for r in rows], y=[r["channel"] for r in rows],
        marker={"size": [min(8 + 3 * r["n"], 40) for r in rows]},
        text=[f"{r['n']} {kind}" for r in rows], hoverinfo="text+x")
        for kind, rows in sorted(points.items())]
    return _figure(traces, title="Interactions per month and channel",
                   yaxis={"type": "category"})


def contributions(score: dict[str, Any]) -> str:
    """A waterfall from the prior to the final match weight, one step per comparison."""
    import plotly.graph_objects as go

    labels = ["prior", *[p["comparison"] for p in score["comparisons"]], "match weight"]
    values = [score["prior_match_weight"], *[p["match_weight"] for p in score["comparisons"]],
              score["match_weight"]]
    return _figure([go.Waterfall(
        x=labels, y=values, measure=["absolute", *["relative"] * len(score["comparisons"]),
                                     "total"],
        text=[f"{v:+.2f}" for v in values], textposition="outside")],
        title="Match weight: prior + each comparison", yaxis={"title": "bits"}, height=300)
