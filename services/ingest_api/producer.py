"""The ingest API's Kafka side: an idempotent acks=all producer, a topic metadata cache, and the
topic administration the streams API needs (create, delete, retention, first offsets)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from aiokafka.structs import RecordMetadata

from services.ingest_api.config import IngestSettings
from services.ingest_api.metrics import PRODUCE_SECONDS, PRODUCER_RESTARTS
from shared.kafka_admin import raise_topic_errors
from shared.topics import PRODUCER_MAX_REQUEST_BYTES

log = logging.getLogger(__name__)

BROKER_DOWN_ERRORS = (KafkaConnectionError, KafkaTimeoutError, asyncio.TimeoutError)
ADMIN_TIMEOUT_SECONDS = 15.0
# The broker no longer knows this producer's state: after an unclean stop it may recover its
# logs without the tail it had acknowledged to no one yet, and the idempotent producer's sequence
# numbers then never match again: every record would fail with one of these for ever. The
# records were not written (clients may retry them); a new producer (a new producer id) starts
# afresh.
PRODUCER_STATE_LOST = (
    OutOfOrderSequenceNumber,
    UnknownProducerId,
    InvalidProducerEpoch,
    ProducerFenced,
)


class OutgoingRecord(NamedTuple):
    """One record to produce: its value and key as bytes, and a partition or None (the
    producer's partitioner picks one by key)."""

    value: bytes | None
    key: bytes | None
    partition: int | None


class BrokerUnavailable(Exception):
    """Kafka did not answer in time: the caller should retry later (HTTP 503)."""


class KafkaGateway:
    """Produces records and answers which topics and partitions exist."""

    def __init__(self, settings: IngestSettings) -> None:
        self.settings = settings
        self.kafka = settings.kafka_connection()
        self._producer: AIOKafkaProducer | None = None
        self._admin_client: AIOKafkaAdminClient | None = None
        self._offsets: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[int]] = {}
        self._refreshed_at = 0.0
        self._refresh_lock = asyncio.Lock()
        self.started = False
        # Bytes handed to the producer and not yet acknowledged or failed: records of a request
        # that timed out stay buffered until the broker takes them, and count against the
        # bytes in flight of load shedding (load_shedding.py) until then.
        self.unacknowledged_bytes = 0
        self._replace_lock = asyncio.Lock()

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None or not self.started:
            raise BrokerUnavailable("not connected to Kafka yet")
        return self._producer

    @property
    def admin(self) -> AIOKafkaAdminClient:
        if self._admin_client is None or not self.started:
            raise BrokerUnavailable("not connected to Kafka yet")
        return self._admin_client

    async def start(self) -> None:
        """Connect: raises when the broker cannot be reached (the caller retries; each attempt
        starts new clients)."""
        producer = self._new_producer()
        admin = AIOKafkaAdminClient(**self.kafka.client_kwargs(), client_id="pinpipe-ingest-admin")
        try:
            await producer.start()
            await admin.start()
        except BaseException:
            with contextlib.suppress(Exception):
                await producer.stop()
            with contextlib.suppress(Exception):
                await admin.close()
            raise
        self._producer, self._admin_client = producer, admin
        self.started = True
        await self.refresh_metadata(force=True)

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            **self.kafka.client_kwargs(),
            client_id="pinpipe-ingest-api",
            acks="all",
            enable_idempotence=True,
            linger_ms=self.settings.ingest_linger_ms,
            max_batch_size=256 * 1024,
            request_timeout_ms=self.settings.ingest_produce_timeout_ms,
            max_request_size=PRODUCER_MAX_REQUEST_BYTES,
        )

    async def _replace_producer(self, failed: AIOKafkaProducer, error: BaseException) -> None:
        """Start a new producer in place of ``failed`` (see PRODUCER_STATE_LOST), once however
        many requests saw it fail; the old one is closed in the background."""
        old = failed  # (the identity check below narrows ``failed``'s type to Optional)
        async with self._replace_lock:
            if self._producer is not failed or not self.started:
                return  # replaced already, or stopping
            producer = self._new_producer()
            await producer.start()
            self._producer = producer
        PRODUCER_RESTARTS.inc()
        log.warning(
            "the broker lost this producer's state: a new producer replaces it",
            extra={"error": repr(error)},
        )
        task = asyncio.create_task(old.stop())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nothing to report

    async def stop(self) -> None:
        """Flush what is buffered (in-flight requests get their acks), then close."""
        if self.started:
            self.started = False
            assert self._producer is not None and self._admin_client is not None
            await self._producer.stop()
            await self._admin_client.close()
            if self._offsets is not None:
                await self._offsets.stop()

    # -- metadata ---------------------------------------------------------------------------
    async def refresh_metadata(self, *, force: bool = False) -> None:
        """Re-read every topic's partitions, at most once per metadata max age."""
        async with self._refresh_lock:
            age = time.monotonic() - self._refreshed_at
            if not force and age < self.settings.ingest_metadata_max_age_seconds:
                return
            try:
                cluster = await asyncio.wait_for(
                    self.producer.client.fetch_all_metadata(), ADMIN_TIMEOUT_SECONDS
                )
            except BrokerUnavailable:
                raise
            except (KafkaError, *BROKER_DOWN_ERRORS) as exc:
                raise BrokerUnavailable(repr(exc)) from exc
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

    # -- producing --------------------------------------------------------------------------
    async def send(
        self, topic: str, value: bytes | None, key: bytes | None, partition: int | None
    ) -> asyncio.Future[RecordMetadata]:
        """Queue one record; the returned future resolves to its RecordMetadata once Kafka
        acknowledged it (acks=all)."""
        try:
            future: asyncio.Future[RecordMetadata] = await self.producer.send(
                topic, value=value, key=key, partition=partition
            )
        except BROKER_DOWN_ERRORS as exc:
            raise BrokerUnavailable(repr(exc)) from exc
        size = len(value or b"") + len(key or b"")
        self.unacknowledged_bytes += size
        future.add_done_callback(lambda _: self._acknowledged(size))
        return future

    def _acknowledged(self, size: int) -> None:
        self.unacknowledged_bytes -= size

    async def send_all(
        self, topic: str, records: list[OutgoingRecord]
    ) -> list[RecordMetadata | BaseException]:
        """Produce records concurrently; one result per record, in order: its metadata once
        Kafka acknowledged it, or why it was not.

        The whole request has one deadline (``PINPIPE_INGEST_PRODUCE_TIMEOUT_MS``): aiokafka
        retries an unreachable broker forever, so a record not acknowledged by then is reported
        as a retriable failure. It may still be written later: a client retry then duplicates
        it (at-least-once), but nothing is ever reported written that is not.
        """
        started = time.perf_counter()
        timeout = self.settings.ingest_produce_timeout_ms / 1000
        producer = self._producer  # the one these records go to (it may be replaced meanwhile)
        results: list[asyncio.Future[RecordMetadata] | BaseException] = []
        try:
            async with asyncio.timeout(timeout):  # one deadline for queueing every record
                for record in records:
                    results.append(await self.send(topic, *record))
        except (BrokerUnavailable, TimeoutError) as exc:
            failure = (
                exc
                if isinstance(exc, BrokerUnavailable)
                else BrokerUnavailable("not queued in time")
            )
            results += [failure] * (len(records) - len(results))
        futures = [f for f in results if isinstance(f, asyncio.Future)]
        left = timeout - (time.perf_counter() - started)
        if futures and not all(f.done() for f in futures):
            await asyncio.wait(futures, timeout=max(0.0, left))
        PRODUCE_SECONDS.observe(time.perf_counter() - started)
        outcomes = [_outcome(f) for f in results]
        lost = next((o for o in outcomes if isinstance(o, PRODUCER_STATE_LOST)), None)
        if lost is not None and producer is not None:
            try:
                await self._replace_producer(producer, lost)
            except Exception as exc:  # the broker is away again: the next failure retries
                log.warning("could not replace the producer", extra={"error": repr(exc)})
        return outcomes

    # -- administration (streams API) -------------------------------------------------------
    async def create_topic(
        self, name: str, partitions: int, configs: dict[str, str] | None = None
    ) -> None:
        """Create a topic; raises TopicAlreadyExistsError when it exists."""
        topic = NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=self.settings.topic_replication_factor,
            topic_configs=configs or {},
        )
        response = await self._admin(self.admin.create_topics([topic]))
        raise_topic_errors(response.topic_errors)  # (name, code, message)
        await self._wait_visible(name, present=True)

    async def delete_topic(self, name: str) -> None:
        response = await self._admin(self.admin.delete_topics([name]))
        raise_topic_errors(response.topic_error_codes)  # (name, code)
        await self._wait_visible(name, present=False)

    async def _wait_visible(self, name: str, *, present: bool) -> None:
        deadline = time.monotonic() + ADMIN_TIMEOUT_SECONDS
        while True:
            await self.refresh_metadata(force=True)
            if (name in self._partitions) == present:
                return
            if time.monotonic() > deadline:
                raise BrokerUnavailable(
                    f"topic {name} not {'created' if present else 'deleted'} in time"
                )
            await asyncio.sleep(0.1)

    async def topic_config(self, name: str) -> dict[str, str]:
        """The topic's effective configuration (``retention.ms`` …)."""
        responses = await self._admin(
            self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        )
        configs: dict[str, str] = {}
        for response in responses:
            for resource in response.resources:
                for entry in resource[4]:  # config_entries: (name, value, read_only, …)
                    configs[entry[0]] = entry[1]
        return configs

    async def beginning_offsets(self, name: str, partitions: list[int]) -> dict[int, int]:
        """The first offset still held by each partition (the start of a shard's range)."""
        if self._offsets is None:
            self._offsets = AIOKafkaConsumer(
                **self.kafka.client_kwargs(),
                client_id="pinpipe-ingest-offsets",
                group_id=None,
                enable_auto_commit=False,
            )
            await self._admin(self._offsets.start())
        tps = [TopicPartition(name, p) for p in partitions]
        offsets = await self._admin(self._offsets.beginning_offsets(tps))
        return {tp.partition: offset for tp, offset in offsets.items()}

    async def _admin(self, call: Any) -> Any:
        try:
            return await asyncio.wait_for(call, ADMIN_TIMEOUT_SECONDS)
        except BROKER_DOWN_ERRORS as exc:
            raise BrokerUnavailable(repr(exc)) from exc


def _outcome(
    result: asyncio.Future[RecordMetadata] | BaseException,
) -> RecordMetadata | BaseException:
    if isinstance(result, BaseException):
        return result
    if not result.done():
        return BrokerUnavailable("not acknowledged before the deadline")
    return result.exception() or result.result()
