"""The broker loses the ingest API's producer state (a restart that recovers a partition
without the tail of its log, as a force-deleted Kafka pod whose successor started on the same
volume did in the k8s tests): the idempotent producer's sequence numbers no longer match, and
without help every record would fail for ever. The gateway replaces its producer; records
flow again, and those refused meanwhile are reported retriable (not written)."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from services.ingest_api.config import IngestSettings
from services.ingest_api.producer import PRODUCER_STATE_LOST, KafkaGateway, OutgoingRecord
from tests.integration.conftest import kill_broker
from tests.servers import KafkaServer

pytestmark = pytest.mark.integration
TOPIC = "state-lost"


async def _send(gateway: KafkaGateway, value: bytes) -> object:
    (outcome,) = await gateway.send_all(TOPIC, [OutgoingRecord(value, None, 0)])
    return outcome


def _keep_only_the_first_batch(partition: Path) -> None:
    """Cut the partition's log after its first record batch and drop its indexes and producer
    snapshots: the broker recovers a log whose producer state ends sequences earlier than the
    producer's (as after an unclean stop that lost an unflushed tail)."""
    (segment,) = partition.glob("*.log")
    with segment.open("r+b") as log:
        header = log.read(12)  # base offset (8 bytes), batch length (4 bytes)
        log.truncate(12 + struct.unpack(">q i", header)[1])
    for derived in [*partition.glob("*.index"), *partition.glob("*.timeindex")]:
        derived.unlink()
    for snapshot in partition.glob("*.snapshot"):
        snapshot.unlink()


def test_a_producer_whose_state_the_broker_lost_is_replaced(own_broker: KafkaServer) -> None:
    settings = IngestSettings(
        kafka_bootstrap_servers=own_broker.bootstrap,
        topic_prefix="lost",
        ingest_create_raw_topics=False,
        ingest_produce_timeout_ms=20_000,
    )
    gateway = KafkaGateway(settings)

    async def before() -> None:
        await gateway.start()
        await gateway.create_topic(TOPIC, 1)
        for n in range(5):
            assert not isinstance(await _send(gateway, b"before %d" % n), BaseException)

    async def after() -> list[object]:
        outcomes = []
        for n in range(4):  # the first may fail (state lost); then a new producer writes
            outcomes.append(await _send(gateway, b"after %d" % n))
        await gateway.stop()
        return outcomes

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(before())
        kill_broker(own_broker)
        _keep_only_the_first_batch(own_broker.state_dir / "data" / f"{TOPIC}-0")
        own_broker.start()
        outcomes = loop.run_until_complete(after())
    finally:
        loop.close()
    lost = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(o, PRODUCER_STATE_LOST) for o in lost), lost
    assert lost, "the broker did not refuse the old producer: the test proves nothing"
    assert not isinstance(outcomes[-1], BaseException), outcomes
    assert not any(isinstance(o, BaseException) for o in outcomes[outcomes.index(lost[-1]) + 1 :])
