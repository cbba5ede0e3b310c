"""Checks of the dashboards against a real Prometheus (``pinpipe up --observe`` in
tests/e2e, the in-cluster one in tests/k8s): every PromQL expression of every panel shows what
the pipeline did — a non-zero value where the test made the pipeline produce some (the error and
DLQ panels show the refusals and the DLQ record :func:`provoke_twice` sends, by their labels).
Only the consumer lag gauges may read 0: a pipeline that keeps up has no lag."""

from __future__ import annotations

import math
from typing import Any

import httpx

from dashboards.generate import expressions, load
from tests.conftest import wait_until

RATE_WINDOW = "1m"  # what Grafana's $__rate_interval becomes here
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


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def shows_data(title: str, expr: str, result: list[dict[str, Any]]) -> bool:
    """Whether a panel's query shows what the pipeline did (see the module's docstring)."""
    samples = [(r["metric"], float(r["value"][1])) for r in result]
    if title in MAY_BE_ZERO:
        return bool(samples) and all(math.isfinite(v) and v >= 0 for _, v in samples)
    for selector, (label, value) in PROVOKED.items():
        if selector in expr:
            return any(m.get(label) == value and math.isfinite(v) and v > 0 for m, v in samples)
    return any(math.isfinite(v) and v > 0 for _, v in samples)


def provoke_twice(api: str, prefix: str, prometheus: str, api_key: str = "") -> None:
    """A record the cleaner sends to the DLQ (no index) and a request the API refuses (422),
    twice: a counter that appears at 1 and stays there has a rate of 0, so the second round
    follows a scrape that holds each counter at 1. ``api_key``: a producer's x-api-key."""
    headers = {**JSON_V2, "x-api-key": api_key} if api_key else JSON_V2

    def provoke() -> None:
        accepted = httpx.post(
            f"{api}/topics/{prefix}.pin",
            json={"records": [{"value": {"title": "a pin with no index"}}]},
            headers=headers,
            timeout=10,
        )
        assert accepted.status_code == 200, accepted.text
        refused = httpx.post(
            f"{api}/topics/{prefix}.pin",
            content=b'{"records": "not a list"}',
            headers=headers,
            timeout=10,
        )
        assert refused.status_code == 422, refused.text

    provoke()
    counters = [
        'pinpipe_ingest_api_requests_total{status="422"}',
        'pinpipe_ingest_api_rejected_total{reason="bad_body"}',
        'pinpipe_cleaner_dlq_total{reason="missing_ind"}',
    ]
    wait_until(
        lambda: all(
            [float(r["value"][1]) for r in query(prometheus, f"sum({c})")] == [1.0]
            for c in counters
        ),
        timeout=120,
        interval=1,
        what="Prometheus to scrape the first refusal and DLQ record",
    )
    provoke()


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with the rate window) of every panel."""
    queries = [
        (name, title, expr.replace("$__rate_interval", RATE_WINDOW))
        for name, dashboard in load().items()
        for title, expr in expressions(dashboard)
    ]
    titles = {title for _, title, _ in queries}
    assert titles >= MAY_BE_ZERO, "an exempted panel is gone: update MAY_BE_ZERO"
    for selector in PROVOKED:
        assert any(selector in expr for _, _, expr in queries), selector
    return queries


def wait_for_every_panel(
    prometheus: str, queries: list[tuple[str, str, str]], timeout: float
) -> None:
    """Each query must show data once (a rate falls back to 0 a minute after its events)."""
    pending = list(queries)

    def all_shown() -> bool:
        pending[:] = [
            (name, title, expr)
            for name, title, expr in pending
            if not shows_data(title, expr, query(prometheus, expr))
        ]
        return not pending

    try:
        wait_until(all_shown, timeout=timeout, interval=3, what="every panel to show data")
    except AssertionError as exc:
        shown = "\n".join(
            f"{name}: {title}: {expr} -> {query(prometheus, expr)}" for name, title, expr in pending
        )
        raise AssertionError(f"{exc}; no data for:\n{shown}") from exc
