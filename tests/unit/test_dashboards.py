"""The dashboards as code: the committed JSON is what the code generates, and every panel's
PromQL names only metrics that some service declares (the e2e test then runs each expression
through a real Prometheus scraping the pipeline)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from dashboards import business
from dashboards.generate import (
    DASHBOARDS,
    OUT_DIR,
    differences,
    expressions,
    load,
    metric_names,
    panels,
    render,
    write,
)
from services.aggregator import metrics as aggregator
from services.aggregator.business_metrics import OTHER_LABEL
from services.aggregator.business_metrics import families as live_families
from services.cleaner import metrics as cleaner
from services.emulator import metrics as emulator
from services.ingest_api import metrics as ingest_api
from services.s3_sink import metrics as s3_sink
from tests.dashboard_checks import panel_queries

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}


def _exported(registry: CollectorRegistry) -> Iterator[str]:
    """The sample names a registry's metrics export (a counter ``x`` as ``x_total``)."""
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            yield family.name + suffix


def declared() -> set[str]:
    names = {
        name
        for module in (ingest_api, cleaner, s3_sink, aggregator, emulator)
        for name in _exported(module.METRICS.registry)
    }
    return names | {family.name for family in live_families(Counter(), 60, 0.0)}


def test_the_committed_json_is_what_the_code_generates() -> None:
    assert differences() == [], "run: python -m dashboards"
    for name, build in DASHBOARDS.items():
        assert (OUT_DIR / name).read_text() == render(build)


def test_a_changed_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path)
    assert differences(tmp_path) == []
    (tmp_path / "business.json").write_text("{}")
    assert differences(tmp_path) == ["business.json"]


@pytest.mark.parametrize("name", list(DASHBOARDS))
def test_every_panel_names_only_declared_metrics(name: str) -> None:
    known = declared()
    queries = list(expressions(load()[name]))
    assert len(queries) >= 7
    for title, expr in queries:
        names = metric_names(expr)
        assert names, f"{title}: {expr} names no pinpipe metric"
        unknown = [n for n in names if n not in known]
        assert not unknown, f"{title}: {unknown} are not declared by any service"


def test_the_health_dashboard_covers_every_service() -> None:
    exprs = " ".join(e for _, e in expressions(load()["pipeline-health.json"]))
    for metric in (
        "pinpipe_ingest_api_requests_total",
        "pinpipe_ingest_api_request_seconds_bucket",
        "pinpipe_ingest_api_produce_seconds_bucket",
        "pinpipe_cleaner_consumer_lag",
        "pinpipe_s3_sink_consumer_lag",
        "pinpipe_aggregator_consumer_lag",
        "pinpipe_cleaner_records_out_total",
        "pinpipe_cleaner_dlq_total",
        "pinpipe_s3_sink_files_total",
        "pinpipe_s3_sink_bytes_total",
        "pinpipe_s3_sink_flush_seconds_bucket",
        "pinpipe_aggregator_freshness_seconds_bucket",
        "pinpipe_aggregator_recovery_seconds",
    ):
        assert metric in exprs, metric


def test_panels_have_unique_ids_and_the_provisioned_datasource() -> None:
    for dashboard in load().values():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids))
        for panel in panels(dashboard):
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "prometheus"}
                ref_ids = [t["refId"] for t in panel["targets"]]
                assert all(ref_ids) and len(ref_ids) == len(set(ref_ids)), panel["title"]


def test_the_top_countries_panel_leaves_out_the_others() -> None:
    """The aggregator sums the countries past its top N under one label; the top-10 panel
    names that label to leave it out."""
    assert business.OTHER == OTHER_LABEL
    (panel,) = [q for _, title, q in panel_queries() if title.startswith("Posts per country, top")]
    assert f'country!="{OTHER_LABEL}"' in panel
