"""What Kafka does not keep about a stream: when it was created.

Kept in the compacted topic ``pinpipe.streams`` (key: stream name, value:
``{"created": epoch seconds}``; a deleted stream leaves a tombstone), read from the beginning at
start-up and again when a stream is missing (another replica may have created it).
"""

from __future__ import annotations

import time

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import TopicAlreadyExistsError

from services.ingest_api.producer import KafkaGateway
from shared.topics import STREAM_REGISTRY_TOPIC

REGISTRY_TOPIC = STREAM_REGISTRY_TOPIC


class StreamRegistry:
    def __init__(self, gateway: KafkaGateway) -> None:
        self.gateway = gateway
        self.created: dict[str, float] = {}

    async def start(self) -> None:
        if await self.gateway.partitions(REGISTRY_TOPIC) is None:
            try:
                await self.gateway.create_topic(REGISTRY_TOPIC, 1, {"cleanup.policy": "compact"})
            except TopicAlreadyExistsError:  # another replica created it meanwhile
                pass
        await self.reload()

    async def reload(self) -> None:
        """Read the registry topic from its beginning to its end."""
        consumer = AIOKafkaConsumer(
            **self.gateway.kafka.client_kwargs(),
            group_id=None,
            enable_auto_commit=False,
            client_id="pinpipe-ingest-registry",
        )
        await consumer.start()
        try:
            tp = TopicPartition(REGISTRY_TOPIC, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            end = (await consumer.end_offsets([tp]))[tp]
            created: dict[str, float] = {}
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=1_000)
                for message in batch.get(tp, []):
                    name = (message.key or b"").decode()
                    if message.value is None:
                        created.pop(name, None)
                    else:
                        created[name] = float(orjson.loads(message.value)["created"])
            self.created = created
        finally:
            await consumer.stop()

    async def record_created(self, name: str) -> float:
        now = time.time()
        await self.gateway.producer.send_and_wait(
            REGISTRY_TOPIC, key=name.encode(), value=orjson.dumps({"created": now})
        )
        self.created[name] = now
        return now

    async def record_deleted(self, name: str) -> None:
        await self.gateway.producer.send_and_wait(REGISTRY_TOPIC, key=name.encode(), value=None)
        self.created.pop(name, None)

    async def creation_time(self, name: str) -> float | None:
        if name not in self.created:
            await self.reload()
        return self.created.get(name)
