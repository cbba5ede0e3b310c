"""The few panel shapes the dashboards use, all on the Prometheus datasource ``prometheus``
(the uid the grafana component provisions)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, prometheus, table, timeseries
from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
RATE = "$__rate_interval"  # Grafana's window for rate(); the PromQL test substitutes one


def dashboard(title: str, uid: str, refresh: str, since: str) -> Dashboard:
    """An empty pinpipe dashboard showing ``now-<since>`` to now, refreshed every ``refresh``."""
    return (
        Dashboard(title)
        .uid(uid)
        .tags(["pinpipe", "generated"])
        .refresh(refresh)
        .time(f"now-{since}", "now")
    )


def query(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        target = target.legend_format(legend)
    return target.instant() if instant else target.range()


def graph(
    title: str, unit: str, *queries: prometheus.Dataquery, width: int = 12
) -> timeseries.Panel:
    """A time series panel of one or more queries."""
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(width)
    for ref_id, target in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(target.ref_id(ref_id))
    return panel


def bars(title: str, unit: str, target: prometheus.Dataquery, width: int = 12) -> bargauge.Panel:
    """Horizontal bars of an instant query, one per series (e.g. per age group)."""
    return (
        bargauge.Panel()
        .title(title)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(width)
        .with_target(target.ref_id("A"))
    )


def rows_table(title: str, target: prometheus.Dataquery, width: int = 24) -> table.Panel:
    """A table of an instant query's series (labels as columns, the value last)."""
    return (
        table.Panel()
        .title(title)
        .datasource(DATASOURCE)
        .height(10)
        .span(width)
        .with_target(target.format(PromQueryFormat.TABLE).ref_id("A"))
    )


def quantile(q: float, histogram: str, by: str = "") -> str:
    """The ``q`` quantile of a histogram's rate over all replicas (and ``by`` labels)."""
    labels = f"le, {by}" if by else "le"
    return f"histogram_quantile({q}, sum by ({labels}) (rate({histogram}_bucket[{RATE}])))"


def percentiles(title: str, histogram: str, width: int = 12) -> timeseries.Panel:
    """A panel of a histogram's p50 and p99 over all replicas, in seconds."""
    return graph(
        title,
        "s",
        query(quantile(0.5, histogram), "p50"),
        query(quantile(0.99, histogram), "p99"),
        width=width,
    )
