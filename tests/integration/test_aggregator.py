"""The aggregator as real processes on a broker of its own (the clean topics are its alone):
every live answer equals the batch query over the same records, after changed re-posts, after
kill -9 and a restart, from either of two replicas; windows expire; bad requests get the API's
error format."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from shared.topics import clean_topic
from tests.conftest import wait_until
from tests.posts_stream import Stream, batch_answers, posts_stream
from tests.processes import ServiceProcess
from tests.servers import KafkaServer, free_port

pytestmark = pytest.mark.integration
APP_ID = "aggregator-test"


def Aggregator(broker: KafkaServer, workdir: Path, name: str, **extra: str) -> ServiceProcess:
    """``pinpipe aggregator`` in a process of its own (state under ``workdir/name``)."""
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "PINPIPE_TOPIC_PARTITIONS": "4",
        "PINPIPE_AGGREGATOR_APP_ID": APP_ID,
        "PINPIPE_AGGREGATOR_DATADIR": str(workdir / name),
        **extra,
    }
    # a web port whose + 10 (the internal port's default) is free too
    port = free_port((0, 10), start=24000)
    log = workdir / f"{name}.log"
    return ServiceProcess("aggregator", env, log, "PINPIPE_AGGREGATOR_PORT", port)


@pytest.fixture
def aggregators() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        if process.alive:
            process.kill()


def produce_stream(bootstrap: str, stream: Stream) -> None:
    """The clean records, keyed by ind (as the cleaner writes them), all acknowledged."""

    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(
                    clean_topic(record_type), orjson.dumps(record), key=str(record["ind"]).encode()
                )
                for record_type, record in stream
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())


def live(url: str, name: str, columns: list[str], window: str = "all") -> list[Any] | None:
    """A question's rows from the aggregates endpoint, as batch rows (None: not answering)."""
    response = httpx.get(f"{url}/aggregates/{name}", params={"window": window}, timeout=10)
    if response.status_code != 200:
        return None
    body = response.json()
    assert body["columns"] == columns
    return [tuple(row[c] for c in columns) for row in body["rows"]]


def differences(url: str, expected: dict[str, Any]) -> dict[str, Any]:
    """The questions whose live answer is not the batch one: what differs."""
    found: dict[str, Any] = {}
    for name, (columns, rows) in expected.items():
        got = live(url, name, columns)
        if got is None:
            found[name] = "no answer"
        elif got != [tuple(row) for row in rows]:
            found[name] = {
                "live only": sorted(set(got) - set(rows), key=repr)[:3],
                "batch only": sorted(set(rows) - set(got), key=repr)[:3],
            }
    return found


def wait_for_batch_answers(url: str, expected: dict[str, Any], timeout: float = 120) -> None:
    """Until every live answer of ``url`` equals the batch answer; else fail saying how not."""
    deadline = time.monotonic() + timeout
    while (found := differences(url, expected)) and time.monotonic() < deadline:
        time.sleep(1)
    assert not found, f"{url} answers unlike the batch queries: {found}"


def applied(process: ServiceProcess) -> float:
    return process.metric_sum("pinpipe_aggregator_records_total") + process.metric_sum(
        "pinpipe_aggregator_unchanged_total"
    )


def test_live_equals_batch_across_a_kill_9_and_a_restart(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    stream = posts_stream()
    expected = batch_answers(stream, tmp_path)
    first = Aggregator(own_broker, tmp_path, "a").start()
    aggregators.append(first)
    half = len(stream) // 2
    produce_stream(own_broker.bootstrap, stream[:half])
    wait_until(lambda: applied(first) > half // 4, timeout=60, what="the aggregator to start")
    first.kill()  # in the middle of the first half, with records and commits in flight
    produce_stream(own_broker.bootstrap, stream[half:])

    again = Aggregator(own_broker, tmp_path, "a")  # the same state directory
    aggregators.append(again.start())
    assert "local tables dropped" in (tmp_path / "a.log").read_text()
    wait_for_batch_answers(again.url, expected)
    assert again.metric("pinpipe_aggregator_recoveries_total") >= 1
    assert again.metric("pinpipe_aggregator_posts") == len({r["ind"] for _, r in stream})
    body = httpx.get(f"{again.url}/aggregates/posts-per-country", timeout=10).json()
    assert set(body["offsets"]) == {clean_topic(t) for t in ("pin", "geo", "user")}
    assert body["as_of"]


def test_two_replicas_answer_alike_whichever_is_asked(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    stream = posts_stream(seed=8)
    expected = batch_answers(stream, tmp_path)
    standby = {"PINPIPE_AGGREGATOR_STANDBY_REPLICAS": "1"}
    for name in ("a", "b"):
        aggregators.append(Aggregator(own_broker, tmp_path, name, **standby).start())
    produce_stream(own_broker.bootstrap, stream)

    for replica in aggregators:
        wait_for_batch_answers(replica.url, expected)
    owned = [
        # the internal port: PINPIPE_AGGREGATOR_INTERNAL_PORT's default, the web port + 10
        httpx.get(f"http://127.0.0.1:{r.port + 10}/internal/aggregates", timeout=10).json()[
            "partitions"
        ]
        for r in aggregators
    ]
    assert all(owned) and sorted(owned[0] + owned[1]) == [0, 1, 2, 3], owned

    # drill-downs agree with the questions they summarise
    a, b = (r.url for r in aggregators)
    country = httpx.get(f"{a}/aggregates/countries/Albania", timeout=10).json()
    assert country == {
        **httpx.get(f"{b}/aggregates/countries/Albania").json(),
        "as_of": country["as_of"],
    }
    posts = dict(live(b, "posts-per-country", ["country", "post_count"]) or [])
    assert country["posts"] == posts["Albania"] > 0
    group = httpx.get(f"{b}/aggregates/age-groups/25-35", timeout=10).json()
    medians = dict(
        live(a, "median-follower-count-per-age-group", ["age_group", "median_follower_count"]) or []
    )
    assert group["median_follower_count"] == medians["25-35"]


def test_windows_expire_and_bad_requests_get_the_error_format(
    own_broker: KafkaServer, tmp_path: Path, aggregators: list[ServiceProcess]
) -> None:
    stream = posts_stream(seed=9, share=0.1)
    expected = batch_answers(stream, tmp_path)
    one_second = {"PINPIPE_AGGREGATOR_WINDOW_BUCKET_SECONDS": "1"}
    aggregator = Aggregator(own_broker, tmp_path, "a", **one_second).start()
    aggregators.append(aggregator)
    name = "posts-per-country-and-category"
    columns, rows = expected[name]
    produce_stream(own_broker.bootstrap, stream)

    wait_until(
        lambda: live(aggregator.url, name, columns, "3s") == [tuple(r) for r in rows],
        timeout=30,
        interval=0.2,
        what="the last 3 seconds to hold every post",
    )
    wait_until(
        lambda: live(aggregator.url, name, columns, "3s") == [],
        timeout=10,
        interval=0.5,
        what="the 3-second window to expire",
    )
    assert live(aggregator.url, name, columns, "1m") == [tuple(r) for r in rows]
    assert live(aggregator.url, name, columns) == [tuple(r) for r in rows]  # all time stays

    for path, status, code in [
        ("/aggregates/no-such-question", 404, 40401),
        (f"/aggregates/{name}?window=soon", 422, 42201),
        (f"/aggregates/{name}?window=2h", 422, 42201),
        (f"/aggregates/{name}?window=61m", 422, 42202),
        ("/aggregates/posts-per-country?window=5m", 422, 42203),
    ]:
        response = httpx.get(aggregator.url + path, timeout=10)
        assert response.status_code == status, path
        assert response.json()["error_code"] == code, path
        assert response.json()["message"], path
    listed = httpx.get(f"{aggregator.url}/aggregates", timeout=10).json()["questions"]
    assert [q["name"] for q in listed] == list(expected)
