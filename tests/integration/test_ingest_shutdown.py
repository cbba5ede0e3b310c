"""A graceful stop of the ingest API (SIGTERM) lets in-flight requests finish, and every record
it reported written is in Kafka."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from tests.conftest import async_wait_until
from tests.integration.conftest import consume_all
from tests.servers import REPO_ROOT, free_port

pytestmark = pytest.mark.integration


async def test_sigterm_finishes_in_flight_requests(kafka_bootstrap: str, unique: str) -> None:
    port = free_port(start=25000)
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": f"stop{unique}",
        "PINPIPE_INGEST_PORT": str(port),
        "PYTHONPATH": str(REPO_ROOT),
    }
    api = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli.main",
        "ingest-api",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def ready() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await async_wait_until(ready, seconds=60, what="the ingest API")
            body = {"records": [{"value": {"n": i}} for i in range(200)]}
            topic = f"/topics/stop{unique}.pin"
            headers = {"Content-Type": "application/vnd.kafka.json.v2+json"}
            requests = [
                asyncio.create_task(client.post(topic, json=body, headers=headers))
                for _ in range(10)
            ]
            await asyncio.sleep(0.05)
            api.send_signal(signal.SIGTERM)
            responses = await asyncio.gather(*requests, return_exceptions=True)
        # uvicorn re-raises the signal once it has shut down gracefully
        assert await asyncio.wait_for(api.wait(), 30) in (0, -signal.SIGTERM)
    finally:
        if api.returncode is None:
            api.kill()
    answered = [r for r in responses if isinstance(r, httpx.Response)]
    assert len(answered) == len(requests), (
        f"cut short: {[r for r in responses if r not in answered]}"
    )
    assert all(r.status_code == 200 for r in answered)
    written = sum(1 for r in answered for o in r.json()["offsets"] if o["error_code"] is None)
    stored = await consume_all(kafka_bootstrap, f"stop{unique}.pin", written)
    assert len(stored) >= written
    assert {json.loads(m.value)["n"] for m in stored} == set(range(200))
