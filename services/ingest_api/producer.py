"""The ingest API's Kafka side: an idempotent acks=all producer and a topic metadata cache."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from services.ingest_api.config import IngestSettings
from services.ingest_api.errors import BROKER_UNAVAILABLE, ApiError

log = logging.getLogger(__name__)

BROKER_DOWN_ERRORS = (KafkaConnectionError, KafkaTimeoutError, asyncio.TimeoutError)


def broker_unavailable(detail: str) -> ApiError:
    return ApiError(
        503, BROKER_UNAVAILABLE, f"Kafka broker unavailable: {detail}", "broker_unavailable", 5
    )


class KafkaGateway:
    """Produces records and answers which topics and partitions exist."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="pinpipe-ingest-api",
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=15_000,
        )
        self._partitions: dict[str, list[int]] = {}
        self._refreshed_at = 0.0
        self._refresh_lock = asyncio.Lock()
        self.started = False

    async def start(self) -> None:
        await self.producer.start()
        self.started = True
        await self.refresh_metadata(force=True)

    async def stop(self) -> None:
        if self.started:
            await self.producer.stop()
            self.started = False

    async def refresh_metadata(self, *, force: bool = False) -> None:
        """Re-read every topic's partitions, at most once per metadata max age."""
        async with self._refresh_lock:
            age = time.monotonic() - self._refreshed_at
            if not force and age < self.settings.ingest_metadata_max_age_seconds:
                return
            try:
                cluster = await asyncio.wait_for(self.producer.client.fetch_all_metadata(), 10)
            except (KafkaError, *BROKER_DOWN_ERRORS) as exc:
                raise broker_unavailable(repr(exc)) from exc
            self._partitions = {
                topic: sorted(cluster.partitions_for_topic(topic) or ())
                for topic in cluster.topics(exclude_internal_topics=True)
            }
            self._refreshed_at = time.monotonic()

    async def partitions(self, topic: str) -> list[int] | None:
        """The topic's partitions, or None when the topic does not exist."""
        if topic not in self._partitions:
            await self.refresh_metadata()
        return self._partitions.get(topic)

    async def topics(self) -> list[str]:
        await self.refresh_metadata()
        return sorted(self._partitions)

    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int | None
    ) -> asyncio.Future:
        """Queue one record; the returned future resolves to its RecordMetadata."""
        return await self.producer.send(topic, value=value, key=key, partition=partition)
