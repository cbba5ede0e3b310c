"""Topic creation at start-up (shared/kafka_admin.py) on the real broker: partitions and the
replication factor of PINPIPE_TOPIC_* reach the broker."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import InvalidReplicationFactorError

from shared.kafka_admin import ensure_topics
from shared.kafka_security import KafkaConnection

pytestmark = pytest.mark.integration


async def test_missing_topics_are_created_with_the_partitions_asked(
    kafka_bootstrap: str, unique: str
) -> None:
    names = [f"admin-{unique}-a", f"admin-{unique}-b"]
    assert await ensure_topics(
        KafkaConnection(kafka_bootstrap), names, 3, replication_factor=1
    ) == sorted(names)
    assert (
        await ensure_topics(KafkaConnection(kafka_bootstrap), names, 3) == []
    )  # present: nothing to do
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    assert {d["topic"]: len(d["partitions"]) for d in described} == dict.fromkeys(names, 3)
    assert all(len(p["replicas"]) == 1 for d in described for p in d["partitions"])


async def test_a_replication_factor_above_the_brokers_is_refused(
    kafka_bootstrap: str, unique: str
) -> None:
    # the test broker is one node: a factor of 3 (production's) must be asked of it, and refused
    with pytest.raises(InvalidReplicationFactorError):
        await ensure_topics(
            KafkaConnection(kafka_bootstrap), [f"admin-{unique}-rf3"], 1, replication_factor=3
        )
