"""A graceful stop of the ingest API (SIGTERM), as uvicorn does it: the listening socket closes
at once (a request sent after the stop is refused, never left hanging), idle keep-alive
connections are closed, every request in flight is finished with its normal answer (and
``Connection: close``) while the Kafka producer is still up, and only then does the process
exit. Every record it reported written is in Kafka at the offset it reported."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import async_wait_until
from tests.held_request import HeldRequest, read_answer
from tests.integration.conftest import read_committed
from tests.processes import ServiceProcess

pytestmark = pytest.mark.integration
IN_FLIGHT = 6
RECORDS_PER_REQUEST = 50


async def _refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    writer.close()
    return False


async def test_sigterm_finishes_in_flight_requests_and_refuses_new_ones(
    kafka_bootstrap: str, unique: str, tmp_path: Path
) -> None:
    prefix = f"stop{unique}"
    topic = f"{prefix}.pin"
    env = {
        **os.environ,
        "PINPIPE_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "PINPIPE_TOPIC_PREFIX": prefix,
        "PINPIPE_TOPIC_PARTITIONS": "2",
    }
    api = ServiceProcess("ingest-api", env, tmp_path / "api.log", "PINPIPE_INGEST_PORT")
    sent = {
        (r, i): {"request": r, "n": i} for r in range(IN_FLIGHT) for i in range(RECORDS_PER_REQUEST)
    }
    held = [
        HeldRequest(
            api.port,
            "POST",
            f"/topics/{topic}",
            json.dumps(
                {"records": [{"value": sent[(r, i)]} for i in range(RECORDS_PER_REQUEST)]}
            ).encode(),
            {"Content-Type": "application/vnd.kafka.json.v2+json"},
            sent_early=20,  # the body streams slowly: its first bytes now, the rest later
        )
        for r in range(IN_FLIGHT)
    ]
    idle_writer: asyncio.StreamWriter | None = None
    try:
        await asyncio.to_thread(api.start)
        assert api.process is not None
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", api.port)
        # A keep-alive connection whose request is answered: idle at the stop.
        idle_writer.write(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n\r\n".encode())
        assert (await read_answer(idle_reader)).status == 200
        # Every request is in the server, its handler reading the body (100 Continue).
        await asyncio.gather(*(request.open() for request in held))

        api.process.send_signal(signal.SIGTERM)
        await async_wait_until(
            lambda: _refuses_connections(api.port),
            seconds=10,
            what="the API to stop listening after SIGTERM",
            interval=0.05,
        )
        # After the stop: a new request is refused (no connection, so no half answer) ...
        async with httpx.AsyncClient(timeout=10) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post(
                    f"{api.url}/topics/{topic}",
                    json={"records": [{"value": {"request": "late"}}]},
                    headers={"Content-Type": "application/vnd.kafka.json.v2+json"},
                )
        # ... the idle connection is closed without a word ...
        assert await asyncio.wait_for(idle_reader.read(1), 10) == b""
        # ... and the process waits for the requests in flight.
        assert api.process.poll() is None, "the API exited with requests in flight"

        answers = [await request.finish() for request in held]
        closed = [await request.closed_by_server() for request in held]
        exit_code = await asyncio.to_thread(api.process.wait, 30)
    finally:
        if idle_writer is not None:
            idle_writer.close()
        for request in held:
            request.close()
        if api.alive:
            api.kill()
    # uvicorn raises the signal again once it has shut down gracefully
    assert exit_code == -signal.SIGTERM, f"exit code {exit_code}; log:\n{api.log.read_text()}"

    acknowledged: dict[tuple[int, int], dict[str, int]] = {}
    for r, answer in enumerate(answers):
        assert answer.status == 200, answer.body
        assert answer.headers["connection"] == "close"  # answered during the shutdown
        offsets = answer.json()["offsets"]
        assert len(offsets) == RECORDS_PER_REQUEST
        for i, result in enumerate(offsets):
            assert result["error_code"] is None, result
            acknowledged[(result["partition"], result["offset"])] = sent[(r, i)]
    assert closed == [True] * IN_FLIGHT, "a connection was left open after its answer"

    stored = await read_committed(kafka_bootstrap, [topic])
    assert {(m.partition, m.offset): json.loads(m.value) for m in stored} == acknowledged
