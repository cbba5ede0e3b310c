"""Topic administration every service needs at start-up: create what is missing."""

from __future__ import annotations

import asyncio
import logging
import time
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


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], partitions: int, visible_within: float = 30.0
) -> list[str]:
    """Create the topics of ``names`` that do not exist yet, and wait until the broker's
    metadata lists every one of them (a new topic is not listed at once); return those
    created."""
    names = set(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="pinpipe-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = sorted(names - existing)
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
        deadline = time.monotonic() + visible_within
        while not names <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not visible after {visible_within}s: {missing}")
            await asyncio.sleep(0.2)
        return missing
    finally:
        await admin.close()
