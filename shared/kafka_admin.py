"""Topic administration every service needs at start-up: create what is missing."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared.kafka_security import KafkaConnection

log = logging.getLogger(__name__)


def raise_topic_errors(entries: list[tuple[Any, ...]], allowed: tuple[int, ...] = ()) -> None:
    """aiokafka's admin calls return per-topic error codes instead of raising: raise the
    first that is not ``allowed``. Entries are ``(topic, code[, message])``."""
    for entry in entries:
        if entry[1] and entry[1] not in allowed:
            message = entry[2] if len(entry) > 2 and entry[2] else f"topic {entry[0]}"
            raise for_code(entry[1])(message)


async def list_topics(kafka: KafkaConnection) -> list[str]:
    """Every topic's name (internal ones included)."""
    admin = AIOKafkaAdminClient(**kafka.client_kwargs(), client_id="pinpipe-admin")
    await admin.start()
    try:
        return sorted(await admin.list_topics())
    finally:
        await admin.close()


async def ensure_topics(
    kafka: KafkaConnection,
    names: Iterable[str],
    partitions: int,
    replication_factor: int = 1,
    visible_within: float = 30.0,
    configs: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the topics of ``names`` that do not exist yet (with ``configs``), and wait until
    the broker's metadata shows every one of them with a leader for each partition (a new
    topic is not listed at once, and a consumer that joins before its partitions have leaders
    sees it with none); return those created. Raises when the broker cannot be reached: the
    caller retries (``shared.retry``)."""
    names = set(names)
    admin = AIOKafkaAdminClient(**kafka.client_kwargs(), client_id="pinpipe-admin")
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = sorted(names - existing)
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name,
                        num_partitions=partitions,
                        replication_factor=replication_factor,
                        topic_configs=dict(configs or {}),
                    )
                    for name in missing
                ]
            )
            # another service may have won the race to create one: that's fine
            raise_topic_errors(response.topic_errors, allowed=(TopicAlreadyExistsError.errno,))
            log.info("created topics", extra={"topics": missing, "partitions": partitions})
        deadline = time.monotonic() + visible_within
        while not_led := _without_leaders(await admin.describe_topics(sorted(names)), names):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"topics without a leader for every partition after {visible_within}s: "
                    f"{not_led}"
                )
            await asyncio.sleep(0.2)
        return missing
    finally:
        await admin.close()


def _without_leaders(described: list[dict[str, Any]], names: set[str]) -> list[str]:
    """The topics of ``names`` that metadata does not show yet with a leader per partition."""
    ready = {
        entry["topic"]
        for entry in described
        if not entry["error_code"]
        and entry["partitions"]
        and all(p["leader"] >= 0 and not p["error_code"] for p in entry["partitions"])
    }
    return sorted(names - ready)
