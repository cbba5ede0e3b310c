"""The aggregator's HTTP surface as a real process on a broker of its own: client mistakes are
4xx in the API's error format and counted, never 5xx; none of Faust's own pages is served on
either port; the replicas' ``/internal/aggregates`` is on the internal port only, for members
of the consumer group only; the live gauges' country labels are bounded."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from services.aggregator.business_metrics import OTHER_LABEL
from tests.conftest import wait_until
from tests.integration.test_aggregator import Aggregator, aggregators, applied, produce_stream
from tests.posts_stream import posts_stream
from tests.processes import ServiceProcess
from tests.servers import KafkaServer

__all__ = ["aggregators"]  # the fixture, shared with test_aggregator.py

FAUST_PAGES = [
    "/",
    "/router/",
    "/router/pinpipe-aggregator-posts/",
    "/table/",
    "/table/posts/",
    "/graph/",
    "/stats/",
    "/assignment/",
    "/signal/",
    "/performance/",
]


def internal_url(aggregator: ServiceProcess) -> str:
    return f"http://127.0.0.1:{aggregator.port + 10}"  # PINPIPE_AGGREGATOR_INTERNAL_PORT's default


def rejected(aggregator: ServiceProcess, reason: str) -> float:
    return aggregator.metric("pinpipe_aggregator_rejected_requests_total", reason=reason)


def assert_error(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, (response.request.url, response.text[:300])
    body = response.json()
    assert isinstance(body["error_code"], int) and body["error_code"] // 100 == status, body
    assert body["message"], body
    return dict(body)


def test_client_mistakes_are_4xx_in_the_error_format_and_counted(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    aggregator = Aggregator(own_broker, tmp_path, "a").start()
    aggregators.append(aggregator)
    url = aggregator.url
    question = f"{url}/aggregates/posts-per-country-and-category"

    before = rejected(aggregator, "too_long")
    body = assert_error(httpx.get(question, params={"window": "9" * 5000}, timeout=10), 400)
    assert "window" in str(body["message"])
    assert rejected(aggregator, "too_long") == before + 1
    for path in ["/aggregates/countries/" + "x" * 101, "/aggregates/age-groups/" + "y" * 101]:
        assert_error(httpx.get(url + path, timeout=10), 400)
    assert_error(httpx.get(question + "?window=1m&window=2m", timeout=10), 400)
    assert_error(httpx.get(question, params={"other": "z" * 300}, timeout=10), 400)
    assert rejected(aggregator, "too_long") == before + 4
    assert rejected(aggregator, "repeated_parameter") == 1

    before = rejected(aggregator, "method_not_allowed")
    assert_error(httpx.post(question, timeout=10), 405)
    assert rejected(aggregator, "method_not_allowed") == before + 1
    # the windows the API knows are still answered
    assert httpx.get(question, params={"window": "1m"}, timeout=10).status_code == 200
    assert httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]


def test_no_faust_pages_and_internals_on_their_own_port(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    aggregator = Aggregator(own_broker, tmp_path, "a").start()
    aggregators.append(aggregator)
    public, internal = aggregator.url, internal_url(aggregator)

    for path in FAUST_PAGES:
        assert_error(httpx.get(public + path, timeout=10), 404)
        assert httpx.get(internal + path, timeout=10).status_code == 404, path
    assert_error(httpx.get(f"{public}/internal/aggregates", timeout=10), 404)

    # the internal port answers the group's members: here, 127.0.0.1, the address the only
    # member advertises
    local = httpx.get(f"{internal}/internal/aggregates", timeout=10).json()
    assert local["ready"] and sorted(local["partitions"]) == [0, 1, 2, 3]
    # and nobody else: the same port, reached from another loopback address
    stranger = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with stranger:
        response = stranger.get(f"{internal}/internal/aggregates", timeout=10)
    assert_error(response, 403)
    assert rejected(aggregator, "not_a_member") == 1


def test_country_labels_are_bounded(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    top = 3
    stream = posts_stream(seed=11, share=0.2)
    limits = {"PINPIPE_AGGREGATOR_METRIC_TOP_COUNTRIES": str(top)}
    aggregator = Aggregator(own_broker, tmp_path, "a", **limits).start()
    aggregators.append(aggregator)
    produce_stream(own_broker.bootstrap, stream)
    wait_until(
        lambda: applied(aggregator) >= len(stream),
        timeout=60,
        what="every record in the aggregates",
    )

    rows = httpx.get(
        f"{aggregator.url}/aggregates/posts-per-country-and-category", timeout=10
    ).json()["rows"]
    totals: Counter[str] = Counter()
    for row in rows:
        totals["(null)" if row["country"] is None else row["country"]] += row["category_count"]
    assert len(totals) > top + 1, "the test needs more countries than the gauges show"
    expected = {c for c, _ in sorted(totals.items(), key=lambda t: (-t[1], t[0]))[:top]}

    shown: Counter[str] = Counter()
    text = httpx.get(f"{aggregator.url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "pinpipe_aggregator_live_posts":
            for sample in family.samples:
                if sample.labels["window"] == "all":
                    shown[sample.labels["country"]] += int(sample.value)
    assert set(shown) == expected | {OTHER_LABEL}
    assert sum(shown.values()) == sum(totals.values())  # the others are summed, not dropped
    for country in expected:
        assert shown[country] == totals[country]
