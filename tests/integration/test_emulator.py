"""The emulator against the real ingest API and Kafka, and against a flaky HTTP server."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.emulator import poster
from services.emulator.config import Mode
from services.emulator.seed import generated, seed
from services.emulator.source_db import connect
from tests.conftest import async_wait_until
from tests.http_server import UvicornThread
from tests.integration.conftest import IngestServer, consume_all
from tests.servers import REPO_ROOT, free_port
from tests.source_rows import read_post

pytestmark = pytest.mark.integration
REPLAY = (
    Path(__file__).resolve().parents[3]
    / "shared/pinterest-data/lmash_0b2a934/emulator_sequence.jsonl"
)


def _row_by_ind(engine: Any, count: int) -> dict[int, poster.Post]:
    posts = [read_post(engine, offset) for offset in range(count)]
    return {p["pin"]["index"]: p for p in posts}


@pytest.mark.parametrize("mode", ["batch", "stream"])
async def test_count_n_puts_exactly_n_records_on_each_topic(
    ingest: IngestServer, kafka_bootstrap: str, tmp_path: Path, mode: Mode
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'source.db'}")
    seed(engine, generated(40, seed_value=5))
    posts = poster.random_posts(engine, random.Random(3))
    options = poster.RunOptions(ingest.url, ingest.prefix, mode=mode, count=25, batch_size=4)
    tally = await poster.run(options, posts)
    assert (tally.posted, tally.failed) == (25, 0)
    rows = _row_by_ind(engine, 40)
    for record_type in ("pin", "geo", "user"):
        topic = (
            f"{ingest.prefix}.{record_type}"
            if mode == "batch"
            else f"streaming-{ingest.prefix}-{record_type}"
        )
        stored = await consume_all(kafka_bootstrap, topic, 25)
        assert len(stored) == 25, topic
        for message in stored:
            value = json.loads(message.value)
            ind = value["index" if record_type == "pin" else "ind"]
            assert value == rows[ind][record_type]  # datetimes as ISO 8601, as in read_post


async def test_replay_keeps_the_recorded_order(
    ingest_factory: Callable[..., IngestServer], kafka_bootstrap: str, tmp_path: Path
) -> None:
    server = ingest_factory(topic_partitions=1)  # one partition: the topic's order is total
    lines = REPLAY.read_text().splitlines()[:60]
    sequence = tmp_path / "sequence.jsonl"
    sequence.write_text("\n".join(lines) + "\n")
    options = poster.RunOptions(server.url, server.prefix, batch_size=7)
    tally = await poster.run(options, poster.replayed_posts(sequence))
    assert tally.posted == 60
    stored = await consume_all(kafka_bootstrap, f"{server.prefix}.geo", 60)
    assert [json.loads(m.value) for m in stored] == [json.loads(line)["geo"] for line in lines]


class FlakyApi:
    """A real HTTP server: 503 (Retry-After: 0) for the first answers, then 200; or always
    404 for topics named ``gone.*``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[Any] = []
        self.calls = 0
        self.lock = threading.Lock()
        app = FastAPI()

        @app.post("/topics/{topic}")
        async def produce(topic: str, request: Request) -> JSONResponse:
            body = await request.json()
            with self.lock:
                self.calls += 1
                if topic.startswith("gone."):
                    return JSONResponse({"error_code": 40401, "message": "Topic not found."}, 404)
                if self.calls <= self.failures:
                    return JSONResponse(
                        {"error_code": 50302, "message": "down"}, 503, headers={"Retry-After": "0"}
                    )
                self.received += body["records"]
            offsets = [
                {"partition": 0, "offset": i, "error_code": None, "error": None}
                for i, _ in enumerate(body["records"])
            ]
            return JSONResponse(
                {"offsets": offsets, "key_schema_id": None, "value_schema_id": None}
            )

        self.server = UvicornThread(app, free_port(start=26000))


@pytest.fixture
def flaky() -> Iterator[FlakyApi]:
    api = FlakyApi(failures=3)
    api.server.start(ready_path="/docs")
    yield api
    api.server.stop()


async def _one_post() -> AsyncIterator[poster.Post]:
    yield {"pin": {"index": 1, "title": "t"}}


async def test_503_then_200_is_retried_and_arrives_once(flaky: FlakyApi) -> None:
    tally = await poster.run(poster.RunOptions(flaky.server.url, "p", count=1), _one_post())
    assert (tally.posted, tally.retried, tally.failed) == (1, 3, 0)
    assert flaky.received == [{"value": {"index": 1, "title": "t"}}]


async def test_permanent_4xx_is_counted_not_retried_forever(flaky: FlakyApi) -> None:
    flaky.failures = 0
    tally = await poster.run(poster.RunOptions(flaky.server.url, "gone", count=1), _one_post())
    assert (tally.posted, tally.retried, tally.failed) == (0, 0, 1)
    assert flaky.calls == 1


async def test_sigterm_finishes_the_post_in_flight_and_reports(
    flaky: FlakyApi, tmp_path: Path
) -> None:
    flaky.failures = 0
    sequence = tmp_path / "sequence.jsonl"
    sequence.write_text("".join(json.dumps({"pin": {"index": i}}) + "\n" for i in range(1000)))
    env = {**os.environ, "PINPIPE_EMULATOR_API_URL": flaky.server.url, "PYTHONPATH": str(REPO_ROOT)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "emulator",
        "run",
        "--replay",
        str(sequence),
        "--rate",
        "20",
        "--no-probes",
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    await async_wait_until(lambda: _answered(flaky, 5), seconds=30, what="a few posts")
    process.send_signal(signal.SIGTERM)
    stdout, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    posted = len(flaky.received)
    assert 5 <= posted < 1000
    assert f"posted {posted} posts, retried 0 requests, failed 0 posts" in stdout.decode()


async def _answered(api: FlakyApi, count: int) -> bool:
    return len(api.received) >= count


def _get(url: str) -> tuple[int, str]:
    response = httpx.get(url, timeout=5)
    return response.status_code, response.text


@pytest.mark.parametrize("api_up", [True, False])
async def test_health_endpoints_say_whether_the_api_takes_the_posts(
    flaky: FlakyApi, tmp_path: Path, api_up: bool
) -> None:
    """/healthz is alive either way; /readyz is 200 only while the ingest API takes the posts
    (here it answers 503 to every request when down); /metrics carries the emulator's counts."""
    flaky.failures = 0 if api_up else 10**9
    sequence = tmp_path / "sequence.jsonl"
    sequence.write_text("".join(json.dumps({"pin": {"index": i}}) + "\n" for i in range(1000)))
    port = free_port(start=26100)
    env = {
        **os.environ,
        "PINPIPE_EMULATOR_API_URL": flaky.server.url,
        "PINPIPE_EMULATOR_PORT": str(port),
        "PYTHONPATH": str(REPO_ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cli.main", "emulator", "run", "--replay", str(sequence),
        "--rate", "20", env=env, stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        await async_wait_until(lambda: _answered_calls(flaky, 3), seconds=30, what="requests")
        assert await asyncio.to_thread(_get, base + "/healthz") == (200, '{"status": "ok"}')
        status, body = await asyncio.to_thread(_get, base + "/readyz")
        assert status == (200 if api_up else 503), body
        status, metrics = await asyncio.to_thread(_get, base + "/metrics")
        assert status == 200
        requests = [
            line
            for line in metrics.splitlines()
            if line.startswith("pinpipe_emulator_requests_total{")
        ]
        assert requests and all(f'status="{200 if api_up else 503}"' in line for line in requests)
        assert (await asyncio.to_thread(_get, base + "/nope"))[0] == 404
    finally:
        process.kill()  # (SIGTERM would wait for the post in flight, retried while the API is down)
        await process.wait()


async def _answered_calls(api: FlakyApi, count: int) -> bool:
    return api.calls >= count
