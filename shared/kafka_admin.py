"""Topic administration every service needs at start-up: create what is missing."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def list_topics(bootstrap_servers: str) -> list[str]:
    """Every topic's name (internal ones included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="pinpipe-admin")
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def ensure_topics(bootstrap_servers: str, names: Iterable[str], partitions: int) -> list[str]:
    """Create the topics of ``names`` that do not exist yet; return those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="pinpipe-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(set(names) - existing)
        if not missing:
            return []
        try:
            await admin.create_topics(
                [
                    NewTopic(name, num_partitions=partitions, replication_factor=1)
                    for name in missing
                ]
            )
        except TopicAlreadyExistsError:  # another service won the race; that's fine
            pass
        log.info("created topics", extra={"topics": missing, "partitions": partitions})
        return missing
    finally:
        await admin.close()
