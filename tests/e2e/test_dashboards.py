"""The dashboards tell the truth: with the pipeline running and Debian's Prometheus scraping it
(``pinpipe up --observe``), every PromQL expression of every panel of both dashboards shows
what the pipeline did, through Prometheus' HTTP API: a non-zero value where the test made the
pipeline produce some (the error and DLQ panels show the refusals and the DLQ record the test
sends, by their labels), and every metric a panel names exists in Prometheus. Only the consumer
lag gauges may read 0: a pipeline that keeps up has no lag."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from dashboards.generate import metric_names
from tests.conftest import wait_until
from tests.dashboard_checks import panel_queries, provoke_twice, query, wait_for_every_panel
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.e2e


def test_every_panel_query_returns_data(pipeline: dict[str, str]) -> None:
    prometheus, prefix = pipeline["prometheus"], pipeline["PINPIPE_TOPIC_PREFIX"]

    def scraped_jobs() -> set[str]:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=10).json()["data"]
        return {t["labels"]["job"] for t in targets["activeTargets"] if t["health"] == "up"}

    wait_until(
        lambda: scraped_jobs() == {"ingest-api", "cleaner", "aggregator", "s3-sink"},
        timeout=30,
        what="Prometheus to scrape the four services",
    )

    env = {
        **os.environ,
        **{k: v for k, v in pipeline.items() if k.startswith("PINPIPE_")},
        "PYTHONPATH": str(REPO_ROOT),
    }
    emulator = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "emulator", "run", "--rate", "20", "--no-probes"],
        cwd=pipeline["tmp"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        api = pipeline["PINPIPE_EMULATOR_API_URL"]

        provoke_twice(api, prefix, prometheus)
        queries = panel_queries()
        wait_for_every_panel(prometheus, queries, timeout=150)
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
        shown = {r["metric"]["age_group"]: float(r["value"][1]) for r in query(prometheus, live)}
        return bool(expected) and shown == expected

    wait_until(same_medians, timeout=30, interval=1, what="the panel to show the API's medians")
