"""The broker killed (kill -9) under load, with requests provably inside the ingest API: the API
answers the outage with the proxy's retriable codes (never a dropped connection, never a record
reported written that is not in Kafka at the offset it reported), and the same API process
becomes ready again by itself once the broker is back, and takes new records."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import async_wait_until
from tests.held_request import HeldRequest
from tests.integration.conftest import kill_broker, read_committed
from tests.processes import ServiceProcess
from tests.servers import KafkaServer

pytestmark = pytest.mark.integration
TOPIC = "outage.pin"
PATH = f"/topics/{TOPIC}"
JSON_V2 = {"Content-Type": "application/vnd.kafka.json.v2+json"}
BATCH = 20  # records per request
WORKERS = 4  # concurrent clients of the load
BEFORE_KILL = 2_000  # records the API has acknowledged when the broker is killed
HELD = 3  # requests held inside the API across the kill
BROKER_UNAVAILABLE = 50302  # the proxy's codes: the whole request, one record
RECORD_RETRIABLE_ERROR = 50003


@dataclass
class Outcome:
    ids: list[int]
    status: int
    body: Any
    retry_after: str | None


def _body(ids: list[int]) -> dict[str, Any]:
    return {"records": [{"value": {"id": i}} for i in ids]}


def _outcome(ids: list[int], response: httpx.Response) -> Outcome:
    return Outcome(ids, response.status_code, response.json(), response.headers.get("retry-after"))


def _acknowledged(outcomes: list[Outcome]) -> dict[int, tuple[int, int]]:
    """Record id → (partition, offset) the API reported it written at."""
    written: dict[int, tuple[int, int]] = {}
    for outcome in outcomes:
        if outcome.status == 200:
            for i, result in zip(outcome.ids, outcome.body["offsets"], strict=True):
                if result["error_code"] is None:
                    written[i] = (result["partition"], result["offset"])
    return written


def _check_outage_answer(outcome: Outcome) -> None:
    """A whole request Kafka could not take: 503, 50302, Retry-After."""
    assert outcome.status == 503, outcome
    assert outcome.body["error_code"] == BROKER_UNAVAILABLE, outcome
    assert outcome.retry_after == "5", outcome


async def test_broker_killed_under_load_then_back_the_same_api_recovers(
    own_broker: KafkaServer, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": own_broker.bootstrap,
        "PINPIPE_TOPIC_PREFIX": "outage",
        "PINPIPE_TOPIC_PARTITIONS": "2",
        "PINPIPE_INGEST_PRODUCE_TIMEOUT_MS": "3000",  # a request's deadline in the outage
    }
    api = ServiceProcess("ingest-api", env, tmp_path / "api.log", "PINPIPE_INGEST_PORT")
    load: list[Outcome] = []
    ids = itertools.count()
    stop = asyncio.Event()
    workers: list[asyncio.Task[None]] = []

    async def worker(client: httpx.AsyncClient) -> None:
        """Post batches of new records until ``stop``; an answer-less request fails the test
        (the API must answer an outage, not drop connections)."""
        while not stop.is_set():
            batch = [next(ids) for _ in range(BATCH)]
            load.append(
                _outcome(batch, await client.post(PATH, json=_body(batch), headers=JSON_V2))
            )

    async def acknowledged_by_api() -> bool:
        ok = await asyncio.to_thread(
            api.metric, "pinpipe_ingest_api_records_total", topic=TOPIC, status="ok"
        )
        return ok >= BEFORE_KILL

    async def readyz_is(status: int) -> bool:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            return (await client.get("/readyz")).status_code == status

    held = [
        HeldRequest(
            api.port,
            "POST",
            PATH,
            json.dumps(_body(list(range(10**6 * (h + 1), 10**6 * (h + 1) + BATCH)))).encode(),
            JSON_V2,
            sent_early=10,
        )
        for h in range(HELD)
    ]
    try:
        await asyncio.to_thread(api.start)
        assert api.process is not None
        pid = api.process.pid
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            workers += [asyncio.create_task(worker(client)) for _ in range(WORKERS)]
            await async_wait_until(
                acknowledged_by_api,
                seconds=60,
                what=f"the API to acknowledge {BEFORE_KILL} records",
                interval=0.05,
            )
            # requests inside the API (their handlers reading the body) when the broker dies
            await asyncio.gather(*(request.open() for request in held))
            kill_broker(own_broker)
            held_answers = [await request.finish() for request in held]
            await async_wait_until(
                lambda: readyz_is(503),
                seconds=30,
                what="/readyz to notice the outage",
            )
            during = _outcome([-1], await client.post(PATH, json=_body([-1]), headers=JSON_V2))
            stop.set()
            await asyncio.gather(*workers)

            await asyncio.to_thread(own_broker.start)  # same storage, same port
            await async_wait_until(
                lambda: readyz_is(200),
                seconds=60,
                what="the same API process to be ready again by itself",
            )
            assert api.process.poll() is None and api.process.pid == pid
            after_ids = [list(range(10**7 + BATCH * n, 10**7 + BATCH * (n + 1))) for n in range(5)]
            after = [
                _outcome(batch, await client.post(PATH, json=_body(batch), headers=JSON_V2))
                for batch in after_ids
            ]
    finally:
        for task in workers:
            task.cancel()
        for request in held:
            request.close()
        if api.alive:
            api.kill()

    # The outage, as the API answered it: the requests held across the kill and a request
    # while /readyz said 503 are 503 50302 with Retry-After; under load, a request is either
    # that or a 200 whose records are each written (with an offset) or retriable (50003).
    for answer in held_answers:
        _check_outage_answer(
            Outcome([], answer.status, answer.json(), answer.headers.get("retry-after"))
        )
    _check_outage_answer(during)
    for outcome in load:
        if outcome.status == 200:
            codes = {result["error_code"] for result in outcome.body["offsets"]}
            assert codes <= {None, RECORD_RETRIABLE_ERROR}, outcome
            assert None in codes, f"a 200 with no record written: {outcome}"
        else:
            _check_outage_answer(outcome)
    before = _acknowledged(load)
    assert len(before) >= BEFORE_KILL
    assert any(o.status == 503 for o in load), "the load never met the outage"
    # After the broker came back: every new record written.
    for outcome in after:
        assert outcome.status == 200, outcome
        assert all(r["error_code"] is None for r in outcome.body["offsets"]), outcome
    acknowledged = {**before, **_acknowledged(after)}
    assert len(acknowledged) == len(before) + 5 * BATCH

    # Every record reported written is in Kafka, at the partition and offset reported.
    stored = {
        (m.partition, m.offset): json.loads(m.value)["id"]
        for m in await read_committed(own_broker.bootstrap, [TOPIC])
    }
    wrong = {i: at for i, at in acknowledged.items() if stored.get(at) != i}
    assert not wrong, (
        f"{len(wrong)} records reported written but not there, e.g. {list(wrong.items())[:5]}"
    )
