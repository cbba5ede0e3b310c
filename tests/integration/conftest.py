"""Fixtures of the integration tests: the ingest API on a real uvicorn, on the session broker."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from tests.conftest import wait_until
from tests.http_server import UvicornThread
from tests.servers import KafkaServer, free_port


@dataclass
class IngestServer:
    url: str
    prefix: str
    settings: IngestSettings


@pytest.fixture
def ingest_factory(kafka_bootstrap: str, unique: str) -> Iterator[Callable[..., IngestServer]]:
    """Start an ingest API (settings overridable) whose raw topics are ``t<unique>.*``."""
    servers: list[UvicornThread] = []

    def start(**overrides: Any) -> IngestServer:
        settings = IngestSettings(
            **{
                "kafka_bootstrap_servers": kafka_bootstrap,
                "topic_prefix": f"t{unique}",
                "topic_partitions": 2,
                "ingest_max_body_bytes": 64 * 1024,
                # the stream registry is the broker's, shared by every test of the run
                "ingest_max_streams": 10_000,
                **overrides,
            }
        )
        server = UvicornThread(create_app(settings), free_port(start=21000))
        server.start(ready_path="/readyz")
        servers.append(server)
        return IngestServer(server.url, f"t{unique}", settings)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaServer]:
    """A broker of the test alone (it gets killed)."""
    server = KafkaServer(free_port((0, 1), start=31092), tmp_path / "kafka")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def kill_broker(server: KafkaServer) -> None:
    """kill -9 the broker (``server.start()`` brings it back with its data). Returns once the
    process is gone, reaped: until then its pid still answers ``kill -0`` (a zombie), and
    kafka.sh would take it for the broker running and not start a new one."""
    pid = int((server.state_dir / "kafka.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _exists(pid), timeout=60, what=f"killed broker {pid} reaped")


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def ingest(ingest_factory: Callable[..., IngestServer]) -> IngestServer:
    return ingest_factory()


async def consume_all(bootstrap: str, topic: str, count: int) -> list[Any]:
    """Read ``count`` records of ``topic`` from the beginning (fewer if they never come)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=None,
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in partitions])
        records: list[Any] = []
        while len(records) < count:
            batch = await consumer.getmany(timeout_ms=5_000)
            if not batch:
                break
            for messages in batch.values():
                records += messages
        return records
    finally:
        await consumer.stop()


async def produce(bootstrap: str, messages: list[tuple[str, bytes]]) -> None:
    """Write ``(topic, value)`` messages, all acknowledged when this returns."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=10)
    await producer.start()
    try:
        futures = [await producer.send(topic, value) for topic, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_committed(bootstrap: str, topics: list[str]) -> list[Any]:
    """Every record of ``topics`` that a read_committed consumer sees, up to the current end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        tps = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.partitions_for_topic(topic) or ()
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)  # the last stable offsets
        records: list[Any] = []
        behind = set(tps)
        while behind:
            for messages in (await consumer.getmany(timeout_ms=1_000)).values():
                records += messages
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        return records
    finally:
        await consumer.stop()


async def group_committed(bootstrap: str, group: str, topics: list[str]) -> int:
    """The sum of a consumer group's committed offsets over ``topics``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except Exception:  # the group has no coordinator yet
        return 0
    finally:
        await admin.close()
    return sum(o.offset for tp, o in offsets.items() if tp.topic in topics and o.offset > 0)
