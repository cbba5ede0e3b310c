"""The dashboards tell the truth: with the pipeline running and Debian's Prometheus scraping it
(``pinpipe up --observe``), every PromQL expression of every panel of both dashboards shows
what the pipeline did, through Prometheus' HTTP API: a non-zero value where the test made the
pipeline produce some (the error and DLQ panels show the refusals and the DLQ record the test
sends, by their labels), and every metric a panel names exists in Prometheus. Only the consumer
lag gauges may read 0: a pipeline that keeps up has no lag."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from dashboards.generate import expressions, load, metric_names
from tests.conftest import wait_until
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.e2e
RATE_WINDOW = "1m"  # what Grafana's $__rate_interval becomes here (scrapes every 2 s)
# Panels whose every value may be 0 while the pipeline works: consumer lag, when it keeps up.
MAY_BE_ZERO = frozenset(
    {"Consumer lag per group (records not yet committed)", "Consumer lag per topic"}
)
# Expressions of the error and DLQ panels (by the selector they hold) → the sample the test's
# own refusals and DLQ record must show, non-zero.
PROVOKED = {
    'pinpipe_ingest_api_requests_total{status=~"[45].."}': ("status", "422"),
    "pinpipe_ingest_api_rejected_total": ("reason", "bad_body"),
    "pinpipe_cleaner_dlq_total": ("reason", "missing_ind"),
}
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _shows_data(title: str, expr: str, result: list[dict[str, Any]]) -> bool:
    """Whether a panel's query shows what the pipeline did (see the module's docstring)."""
    samples = [(r["metric"], float(r["value"][1])) for r in result]
    if title in MAY_BE_ZERO:
        return bool(samples) and all(math.isfinite(v) and v >= 0 for _, v in samples)
    for selector, (label, value) in PROVOKED.items():
        if selector in expr:
            return any(m.get(label) == value and math.isfinite(v) and v > 0 for m, v in samples)
    return any(math.isfinite(v) and v > 0 for _, v in samples)


def test_every_panel_query_returns_data(pipeline: dict[str, str]) -> None:
    prometheus, prefix = pipeline["prometheus"], pipeline["PINPIPE_TOPIC_PREFIX"]

    def scraped_jobs() -> set[str]:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
        return {t["labels"]["job"] for t in targets["activeTargets"] if t["health"] == "up"}

    wait_until(
        lambda: scraped_jobs() == {"ingest-api", "cleaner", "aggregator", "sink"},
        timeout=30,
        what="Prometheus to scrape the four services",
    )

    env = {
        **os.environ,
        **{k: v for k, v in pipeline.items() if k.startswith("PINPIPE_")},
        "PYTHONPATH": str(REPO_ROOT),
    }
    emulator = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "emulator", "run", "--rate", "20", "--no-metrics"],
        cwd=pipeline["tmp"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = pipeline["PINPIPE_EMULATOR_API_URL"]

        def provoke() -> None:
            """A record the cleaner sends to the DLQ (no index), and a request the API
            refuses (422): the error and DLQ panels must have something to show."""
            accepted = httpx.post(
                f"{api}/topics/{prefix}.pin",
                json={"records": [{"value": {"title": "a pin with no index"}}]},
                headers=JSON_V2,
                timeout=10,
            )
            assert accepted.status_code == 200, accepted.text
            refused = httpx.post(
                f"{api}/topics/{prefix}.pin",
                content=b'{"records": "not a list"}',
                headers=JSON_V2,
                timeout=10,
            )
            assert refused.status_code == 422, refused.text

        # A counter that appears at 1 and stays there has a rate of 0: provoke once, wait for
        # Prometheus to hold each counter at 1, then once more, so that the rates are not 0.
        provoke()
        counters = [
            'pinpipe_ingest_api_requests_total{status="422"}',
            'pinpipe_ingest_api_rejected_total{reason="bad_body"}',
            'pinpipe_cleaner_dlq_total{reason="missing_ind"}',
        ]
        wait_until(
            lambda: all(
                [float(r["value"][1]) for r in _query(prometheus, f"sum({c})")] == [1.0]
                for c in counters
            ),
            timeout=60,
            interval=1,
            what="Prometheus to scrape the first refusal and DLQ record",
        )
        provoke()

        queries = [
            (name, title, expr.replace("$__rate_interval", RATE_WINDOW))
            for name, dashboard in load().items()
            for title, expr in expressions(dashboard)
        ]
        titles = {title for _, title, _ in queries}
        assert titles >= MAY_BE_ZERO, "an exempted panel is gone: update MAY_BE_ZERO"
        for selector in PROVOKED:
            assert any(selector in expr for _, _, expr in queries), selector

        # Each query must show data once (a rate falls back to 0 a minute after its events).
        pending = list(queries)

        def all_shown() -> bool:
            pending[:] = [
                (name, title, expr)
                for name, title, expr in pending
                if not _shows_data(title, expr, _query(prometheus, expr))
            ]
            return not pending

        try:
            wait_until(all_shown, timeout=150, interval=3, what="every panel to show data")
        except AssertionError as exc:
            shown = "\n".join(
                f"{name}: {title}: {expr} -> {_query(prometheus, expr)}"
                for name, title, expr in pending
            )
            raise AssertionError(f"{exc}; no data for:\n{shown}") from exc
        assert emulator.poll() is None, "the emulator stopped early"
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)

    names = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
    for name, title, expr in queries:
        missing = [n for n in metric_names(expr) if n not in names]
        assert not missing, f"{name}: {title} names metrics Prometheus never scraped: {missing}"

    # The Business panels show the live answers: the same numbers as the aggregates endpoint
    # (once a scrape follows the last record).
    def same_medians() -> bool:
        rows = httpx.get(
            pipeline["aggregates"] + "/aggregates/median-follower-count-per-age-group", timeout=10
        ).json()["rows"]
        expected = {r["age_group"]: float(r["median_follower_count"]) for r in rows}
        live = "max by (age_group) (pinpipe_aggregator_live_median_follower_count)"
        shown = {r["metric"]["age_group"]: float(r["value"][1]) for r in _query(prometheus, live)}
        return bool(expected) and shown == expected

    wait_until(same_medians, timeout=30, interval=1, what="the panel to show the API's medians")
