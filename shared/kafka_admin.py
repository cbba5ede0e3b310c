"""Topic administration every service needs at start-up: create what is missing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

log = logging.getLogger(__name__)


def raise_topic_errors(entries: list[tuple[Any, ...]], allowed: tuple[int, ...] = ()) -> None:
    """aiokafka's admin calls return per-topic error codes instead of raising: raise the
    first that is not ``allowed``. Entries are ``(topic, code[, message])``."""
    for entry in entries:
        if entry[1] and entry[1] not in allowed:
            message = entry[2] if len(entry) > 2 and entry[2] else f"topic {entry[0]}"
            raise for_code(entry[1])(message)


async def list_topics(bootstrap_servers: str) -> list[str]:
    """Every topic's name (internal ones included)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="pinpipe-admin")
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    visible_within: float = 30.0,
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
        response = await admin.create_topics(
            [
                NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
                for name in missing
            ]
        )
        # another service may have won the race to create one: that's fine
        raise_topic_errors(response.topic_errors, allowed=(TopicAlreadyExistsError.errno,))
        log.info("created topics", extra={"topics": missing, "partitions": partitions})
        deadline = time.monotonic() + visible_within
        while not names <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics not visible after {visible_within}s: {missing}")
            await asyncio.sleep(0.2)
        return missing
    finally:
        await admin.close()
