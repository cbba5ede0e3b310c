"""Exactly-once output of the cleaner: one Kafka transaction per source partition and batch.

Each raw partition the worker owns has its own transactional producer, with the stable
``transactional.id`` ``<PINPIPE_CLEANER_APP_ID>-<topic>-<partition>`` (the design of Kafka
Streams' first exactly-once mode). For each batch, everything a partition's records produced
(clean records and DLQ entries) and that partition's next offset are committed in one
transaction: either all of it becomes visible to ``read_committed`` consumers, or none of it
and the records are read again. The next owner of a partition starts a producer with the same
id, which fences the previous owner's producer and aborts its open transaction.

Offsets of raw topics are committed here only: the consumer never commits on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.structs import TopicPartition

from shared.kafka_security import KafkaConnection
from shared.topics import PRODUCER_MAX_REQUEST_BYTES

log = logging.getLogger(__name__)
T = TypeVar("T")
# A transaction that has not committed by then is given up (completed by the next producer with
# its id): aiokafka's own timeouts do not cover a sender that died, and its abort can then hang
# too (both seen in CI), so the work is left behind rather than awaited.
COMMIT_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0


async def within(work: Coroutine[Any, Any, T], seconds: float, what: str) -> T:
    """``await work``, or raise ``TimeoutError`` after ``seconds`` and leave the work behind
    (cancelled, not awaited: ``asyncio.wait_for`` would wait for a cancellation that may never
    finish)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nothing unretrieved
        raise TimeoutError(f"{what} took more than {seconds:.0f} s; left behind")
    return task.result()


@dataclass(frozen=True)
class Output:
    """One record to produce: a clean record (keyed by ``ind``) or a DLQ entry (no key). A
    clean record keeps its raw record's timestamp (the ingest time), so that downstream
    freshness is measured from ingestion."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp_ms: int | None = None


class PartitionProducers:
    """Transactional producers by source partition; commits a batch's outputs and offset."""

    def __init__(self, kafka: KafkaConnection, transactional_id_prefix: str, group_id: str) -> None:
        self.kafka = kafka
        self.prefix = transactional_id_prefix
        self.group_id = group_id
        self._producers: dict[TopicPartition, AIOKafkaProducer] = {}

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self.prefix}-{tp.topic}-{tp.partition}"

    async def assign(self, tps: Iterable[TopicPartition]) -> None:
        """Start producers for newly owned partitions (fencing any previous owner)."""
        new = [tp for tp in tps if tp not in self._producers]
        await asyncio.gather(*(self.start(tp) for tp in new))

    async def revoke(self, tps: Iterable[TopicPartition]) -> None:
        """Stop the producers of ``tps`` (a broken one may fail to stop: that is logged)."""
        gone = [self._producers.pop(tp) for tp in list(tps) if tp in self._producers]
        results = await asyncio.gather(
            *(within(p.stop(), STOP_TIMEOUT_SECONDS, "stopping a producer") for p in gone),
            return_exceptions=True,
        )
        for error in results:
            if error is not None:
                log.warning("a producer failed to stop", extra={"error": repr(error)})

    async def stop(self) -> None:
        await self.revoke(list(self._producers))

    async def start(self, tp: TopicPartition) -> AIOKafkaProducer:
        """A new producer for ``tp``; starting it fences (and completes) any older one."""
        producer = AIOKafkaProducer(
            **self.kafka.client_kwargs(),
            transactional_id=self.transactional_id(tp),
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=PRODUCER_MAX_REQUEST_BYTES,  # a clean record or DLQ entry fits
            # A transaction begun just after the last commit can meet the broker still
            # writing that commit's markers; it answers NOT_ENOUGH_REPLICAS ("retry"): retry
            # soon rather than after the default 100 ms (aiokafka issue 1172).
            retry_backoff_ms=10,
            client_id=self.transactional_id(tp),
        )
        try:  # InitProducerId: fences an older producer with this id
            await within(producer.start(), COMMIT_TIMEOUT_SECONDS, f"starting a producer of {tp}")
        except BaseException:
            with contextlib.suppress(Exception):
                await within(producer.stop(), STOP_TIMEOUT_SECONDS, "stopping a producer")
            raise
        self._producers[tp] = producer
        return producer

    async def commit(self, tp: TopicPartition, outputs: Sequence[Output], next_offset: int) -> None:
        """Produce ``outputs`` and commit ``next_offset`` for ``tp``, atomically.

        Raises when the transaction cannot commit or takes longer than
        ``COMMIT_TIMEOUT_SECONDS`` (then it is aborted, or completed by the next producer of
        ``tp``): the caller must not go on past these records.
        """
        await within(
            self._commit(tp, outputs, next_offset), COMMIT_TIMEOUT_SECONDS, f"committing {tp}"
        )

    async def _commit(
        self, tp: TopicPartition, outputs: Sequence[Output], next_offset: int
    ) -> None:
        producer = self._producers.get(tp) or await self.start(tp)
        async with producer.transaction():
            futures = [
                await producer.send(
                    output.topic, output.value, key=output.key, timestamp_ms=output.timestamp_ms
                )
                for output in outputs
            ]
            await producer.send_offsets_to_transaction({tp: next_offset}, self.group_id)
        # commit_transaction returned: every send is acknowledged; surface any send error
        for future in futures:
            future.result()
