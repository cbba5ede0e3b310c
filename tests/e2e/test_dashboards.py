"""The dashboards tell the truth: with the pipeline running and Debian's Prometheus scraping it
(``pinpipe up --observe``), every PromQL expression of every panel of both dashboards returns
data through Prometheus' HTTP API, and every metric a panel names exists in Prometheus."""

from __future__ import annotations

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


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


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
        # A record the cleaner sends to the DLQ (no index), and a request the API refuses:
        # the error and DLQ panels must have something to show.
        accepted = httpx.post(
            f"{api}/topics/{prefix}.pin",
            json={"records": [{"value": {"title": "a pin with no index"}}]},
            headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
            timeout=10,
        )
        assert accepted.status_code == 200, accepted.text
        refused = httpx.post(
            f"{api}/topics/{prefix}.pin",
            content=b'{"records": "not a list"}',
            headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
            timeout=10,
        )
        assert refused.status_code == 422, refused.text

        queries = [
            (f"{name}: {title}", expr.replace("$__rate_interval", RATE_WINDOW))
            for name, dashboard in load().items()
            for title, expr in expressions(dashboard)
        ]

        def empty() -> list[str]:
            return [f"{where}: {expr}" for where, expr in queries if not _query(prometheus, expr)]

        still_empty: list[str] = []

        def all_answer() -> bool:
            still_empty[:] = empty()
            return not still_empty

        try:
            wait_until(all_answer, timeout=150, interval=3, what="every panel to return data")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; no data for:\n" + "\n".join(still_empty)) from exc
        assert emulator.poll() is None, "the emulator stopped early"
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)

    names = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
    for where, expr in queries:
        missing = [n for n in metric_names(expr) if n not in names]
        assert not missing, f"{where} names metrics Prometheus never scraped: {missing}"

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
