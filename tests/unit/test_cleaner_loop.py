"""The cleaner loop's bookkeeping, with the consumer and producers replaced by recorders (the
real ones are exercised by tests/integration/test_cleaner.py): a failed transaction sends the
partition back to the batch's first offset even when its producer then fails to stop, and a
batch fetched before a rebalance is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition

from services.cleaner.config import CleanerSettings
from services.cleaner.loop import CleanerLoop
from services.cleaner.transactions import Output, within

TP = TopicPartition("p.user", 0)


def _record(offset: int) -> ConsumerRecord[bytes, bytes]:
    value = orjson.dumps({"ind": offset, "first_name": "a", "last_name": "b", "age": 30})
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, None, value, None, 0, 0, ())


class _Consumer:
    def __init__(self, batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        self.batch = batch
        self.seeks: list[tuple[TopicPartition, int]] = []

    async def getmany(self, **_: Any) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        return self.batch

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


class _Producers:
    def __init__(self, fail: bool) -> None:
        self.fail = fail
        self.commits: list[tuple[TopicPartition, int, int]] = []

    async def commit(self, tp: TopicPartition, outputs: Sequence[Output], next_offset: int) -> None:
        if self.fail:
            raise KafkaError("Unexpected error during batch delivery")
        self.commits.append((tp, len(outputs), next_offset))

    async def revoke(self, tps: Sequence[TopicPartition]) -> None:
        raise RuntimeError("the handler is closed")  # a broken producer that cannot stop


def _loop(consumer: _Consumer, producers: _Producers) -> CleanerLoop:
    loop = CleanerLoop(CleanerSettings(kafka_bootstrap_servers="127.0.0.1:1"))
    loop.producers = cast(Any, producers)
    return loop


def test_a_committed_batch_moves_the_partition_on() -> None:
    consumer, producers = _Consumer({TP: [_record(5), _record(6)]}), _Producers(fail=False)
    loop = _loop(consumer, producers)
    asyncio.run(loop.step(cast(AIOKafkaConsumer, consumer)))
    assert producers.commits == [(TP, 2, 7)]
    assert loop.committed == {TP: 7}
    assert consumer.seeks == []


def test_a_failed_transaction_rewinds_even_when_its_producer_cannot_stop() -> None:
    consumer, producers = _Consumer({TP: [_record(5), _record(6)]}), _Producers(fail=True)
    loop = _loop(consumer, producers)
    with pytest.raises(RuntimeError):
        asyncio.run(loop.step(cast(AIOKafkaConsumer, consumer)))
    assert consumer.seeks == [(TP, 5)]
    assert loop.committed == {}


def test_a_batch_fetched_before_a_rebalance_is_dropped() -> None:
    consumer, producers = _Consumer({TP: [_record(5)]}), _Producers(fail=False)
    loop = _loop(consumer, producers)

    async def getmany(**_: Any) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        loop.generation += 1  # a revoke ran while this fetch was returning
        return consumer.batch

    consumer.getmany = getmany  # type: ignore[method-assign]  # the fake's fetch, replaced for this test
    asyncio.run(loop.step(cast(AIOKafkaConsumer, consumer)))
    assert producers.commits == []


def test_work_that_ignores_cancellation_is_left_behind_not_awaited() -> None:
    """A hung commit whose abort hangs too (aiokafka, seen in CI) must not hang the loop."""

    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)  # a commit that never returns …
        except asyncio.CancelledError:
            await asyncio.sleep(3600)  # … whose abort, on cancellation, never returns either

    async def scenario() -> float:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError, match="left behind"):
            await within(stubborn(), 0.2, "a stubborn commit")
        return asyncio.get_running_loop().time() - started

    assert asyncio.run(asyncio.wait_for(scenario(), 5)) < 1.0


def test_work_that_finishes_in_time_gives_its_result() -> None:
    async def quick() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert asyncio.run(within(quick(), 1.0, "quick")) == 7
