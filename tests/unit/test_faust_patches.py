"""pinpipe's patches of Faust (services/aggregator/faust_patches.py) against Faust's own
consumer bookkeeping: each test fails if Faust changes under its patch (fixed upstream, or
renamed), so that the patch is looked at again."""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any, cast

import faust
import faust.transport.drivers.aiokafka
import mode
import pytest
from faust.events import Event
from faust.streams import current_event
from faust.transport.consumer import Consumer
from faust.types import TP as TopicPartition
from faust.types import Message
from intervaltree import IntervalTree

from services.aggregator import faust_patches

TP = "pinpipe.clean.pin-0"


class _Message:
    def __init__(self, offset: int) -> None:
        self.tp, self.topic, self.offset, self.acked = TP, TP, offset, False


class _App:
    class topics:  # Faust's app.topics
        @staticmethod
        def acks_enabled_for(topic: str) -> bool:
            return True

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer


def _consumer() -> Any:
    """Faust's Consumer with only the bookkeeping of offsets set up (no broker)."""

    class Bookkeeping(Consumer):
        pass

    Bookkeeping.__abstractmethods__ = frozenset()  # the broker side is not used here
    consumer: Any = object.__new__(Bookkeeping)  # type: ignore[type-abstract]  # see above
    consumer._acked, consumer._acked_index = defaultdict(list), defaultdict(set)
    consumer._gap, consumer._unacked_messages = defaultdict(IntervalTree), set()
    consumer._committed_offset = defaultdict(lambda: None)
    consumer._n_acked, consumer._waiting_for_ack = 0, None
    consumer.app = _App(consumer)
    return consumer


async def _read_transactions(consumer: Any, transactions: int) -> tuple[int, int]:
    """Read ``transactions`` of 1-3 records and a commit marker each, as Faust's fetch loop
    does (noting the gap a marker leaves), acknowledge every record, commit every 7
    transactions; (the end offset, the committed offset)."""
    rng = random.Random(1)
    consumer._committed_offset[TP] = 0
    offset, previous = 0, None
    for number in range(transactions):
        for _ in range(rng.randint(1, 3)):
            if previous is not None and offset - previous > 1:
                await consumer._add_gap(TP, previous + 1, offset)
            consumer.ack(_Message(offset))
            previous, offset = offset, offset + 1
        offset += 1  # the transaction's commit marker: no record
        if number % 7 == 6:
            new = consumer._new_offset(TP)
            if new is not None:
                consumer._committed_offset[TP] = new
    return offset, consumer._committed_offset[TP]


async def test_faust_alone_falls_behind_past_transaction_markers() -> None:
    end, committed = await _read_transactions(_consumer(), 2000)
    assert committed < end / 2, "Faust keeps up now: patch 2 may go (faust_patches.py)"


async def test_with_the_patch_commits_keep_up_and_forget_what_they_cover() -> None:
    consumer = _consumer()
    faust_patches.gaps_without_the_next_record(_App(consumer))  # type: ignore[arg-type]  # a stand-in with only what the patch touches
    end, committed = await _read_transactions(consumer, 2000)
    assert end - 30 <= committed <= end  # up to the last commit, 7 transactions before the end
    assert len(consumer._acked[TP]) < 30 and len(consumer._acked_index[TP]) < 30


async def _flushed_while_sending(patched: bool) -> tuple[int, int]:
    """Three messages through a started producer buffer whose sends take a while: how many
    had reached the producer when ``flush`` returned, of how many."""
    app = faust.App("patch-check", broker="kafka://127.0.0.1:1", autodiscover=False)
    buffer: Any = app.producer.buffer
    sent: list[Any] = []

    async def slow_send(message: Any) -> None:  # the Kafka producer's send, slowed down
        await asyncio.sleep(0.05)
        sent.append(message)

    buffer._send_pending = slow_send  # what Faust's _handle_pending awaits for each message
    if patched:
        faust_patches.drain_changelog_before_commits(app)
    await buffer.start()
    try:
        for n in range(3):
            buffer.put(n)
        await buffer.flush()
        return len(sent), 3
    finally:
        await buffer.stop()


async def test_faust_alone_flushes_before_the_last_message_is_sent() -> None:
    """Patch 1: Faust's flush returns once the buffer is empty, its last message still being
    sent (the producer's flush that follows would not cover it)."""
    flushed, total = await _flushed_while_sending(patched=False)
    assert flushed < total


async def test_with_the_patch_flush_returns_once_every_message_is_sent() -> None:
    assert await _flushed_while_sending(patched=True) == (3, 3)


def _web_routes(patched: bool) -> set[str]:
    """The routes Faust's web server serves for an app with the aggregator's web settings."""
    app = faust.App(
        "patch-test",
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        autodiscover=False,
    )
    if patched:
        faust_patches.no_builtin_pages(app)
    web: Any = app.web  # the aiohttp driver (its type declares no web_app)
    web.init_server()
    return {resource.canonical for resource in web.web_app.router.resources()}


def test_no_builtin_pages() -> None:
    """With every blueprint setting off, Faust still serves its index page at "/" (what patch
    3 is for); patched, nothing of Faust's is served."""
    assert _web_routes(patched=False) == {"/"}
    assert _web_routes(patched=True) == set()


def test_a_table_write_goes_to_the_partition_of_the_event_named() -> None:
    """Patch 4: the stream's private setter still exists and the table still picks a write's
    partition from the current event."""
    assert list(inspect.signature(faust.Stream._set_current_event).parameters) == [
        "self",
        "event",
    ]
    app = faust.App("patch-check", broker="kafka://127.0.0.1:1", autodiscover=False)
    table = app.Table("posts", default=None, partitions=4)
    stream = cast(faust.Stream[Any], app.stream([]))  # app.stream builds a Stream
    message = Message(TP, 2, 7, 0.0, 0, None, b"1", b"{}", None)
    event = Event(app, b"1", b"{}", {}, message)
    faust_patches.write_to_partition_of(stream, event)
    assert current_event() is event
    assert table.partition_for_key(b"1") == 2


@pytest.fixture
def root_handlers() -> Iterator[None]:
    """The root logger's handlers and level, put back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_worker_logs_json_lines(root_handlers: None) -> None:
    """Patch 5: mode's worker still calls its ``on_setup_root_logger`` hook when it sets up
    logging, and the hook leaves pinpipe's JSON handler, at the worker's level."""
    assert list(inspect.signature(mode.Worker.on_setup_root_logger).parameters) == [
        "self",
        "logger",
        "level",
    ]
    app = faust.App("patch-check", broker="kafka://127.0.0.1:1", autodiscover=False)
    worker = faust_patches.JsonLogsWorker(
        app, log_level="WARNING", redirect_stdouts=False, quiet=True
    )
    worker._setup_logging()
    (handler,) = logging.getLogger().handlers
    assert type(handler.formatter).__name__ == "JsonFormatter"
    assert logging.getLogger().level == logging.WARNING


def test_faust_hands_each_record_over_through_wait_first() -> None:
    """Patch 6 replaces the consumer's wait_first for the call its fetch loop makes per
    record; the loop must still make it."""
    source = " ".join(inspect.getsource(Consumer._drain_messages).split())
    assert "await self.wait_first( callback(message), self.suspend_flow.wait() )" in source


async def _deliveries_through_the_patch() -> None:
    app = faust.App("patch-check", broker="kafka://127.0.0.1:1", autodiscover=False)
    consumer: Any = app.consumer
    faust_patches.deliveries_share_their_waiters(app)
    delivered: list[int] = []
    gate, entered = asyncio.Event(), asyncio.Event()

    async def deliver(n: int, wait: bool = False) -> int:
        if wait:  # as a delivery into a full stream buffer
            entered.set()
            await gate.wait()
        delivered.append(n)
        return n

    def handing(n: int, wait: bool = False) -> Any:
        return consumer.wait_first(deliver(n, wait), consumer.suspend_flow.wait())

    tasks_before = len(asyncio.all_tasks())
    for n in range(50):
        result = await handing(n)
        assert (result.results, result.stopped) == ([n], False)
    assert delivered == list(range(50))
    # a waiter of each event (the flow's suspension, the stop, the crash), made once: no task
    # is left behind a record
    assert len(asyncio.all_tasks()) - tasks_before == 3

    # a delivery that waits gives way when the flow is suspended, and is cancelled
    waiting = asyncio.ensure_future(handing(99, wait=True))
    await entered.wait()
    consumer.suspend_flow.set()
    suspended = await waiting
    assert not suspended.stopped and suspended.results == [True]  # the suspension finished
    gate.set()
    # suspended: a delivery comes back at once; then the flow goes on
    assert not (await handing(100)).stopped
    consumer.suspend_flow.clear()
    assert (await handing(101)).results == [101]
    assert 99 not in delivered, "the waiting delivery was cancelled, as mode's wait_first does"

    # the consumer stopped: as mode's
    consumer._stopped.set()
    assert (await handing(102)).stopped
    consumer._stopped.clear()

    # any other call is mode's own
    other = await consumer.wait_first(deliver(103))
    assert other.results == [103] and not other.stopped
    for task in asyncio.all_tasks() - {asyncio.current_task()}:
        task.cancel()


async def test_deliveries_wait_as_before_on_shared_waiters() -> None:
    await _deliveries_through_the_patch()


def test_the_lean_monitor_keeps_what_faust_reads_back_and_nothing_else() -> None:
    """Patch 7: the app's Monitor is the setting's class; Faust's livelock check still reads
    the time a partition's stream took an event, which the lean monitor keeps."""
    source = inspect.getsource(faust.transport.drivers.aiokafka.AIOKafkaConsumerThread)
    assert "monitor.stream_inbound_time.get(tp)" in source
    app = faust.App(
        "patch-check",
        broker="kafka://127.0.0.1:1",
        autodiscover=False,
        Monitor=faust_patches.LeanMonitor,
    )
    monitor = app.monitor
    assert isinstance(monitor, faust_patches.LeanMonitor)
    tp = TopicPartition("t", 0)
    before = time.monotonic()
    state = monitor.on_stream_event_in(tp, 5, cast(Any, None), cast(Any, None))
    monitor.on_stream_event_out(tp, 5, cast(Any, None), cast(Any, None), state)
    assert monitor.stream_inbound_time[tp] >= before
    assert monitor.events_total == 0 and monitor.messages_received_total == 0


async def test_the_worker_consumer_waits_at_most_the_short_fetch_wait() -> None:
    """Patch 8: Faust still hard-codes a 1,500 ms fetch wait; the patched app's consumer is
    created with FETCH_MAX_WAIT_MS (read as its fetcher starts)."""
    thread_class = faust.transport.drivers.aiokafka.AIOKafkaConsumerThread
    assert "fetch_max_wait_ms=1500" in inspect.getsource(thread_class._create_worker_consumer)
    app = faust.App("patch-check", broker="kafka://127.0.0.1:1", autodiscover=False)
    faust_patches.short_fetch_waits(app)
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == faust_patches.FETCH_MAX_WAIT_MS
        assert faust_patches.FETCH_MAX_WAIT_MS < 1500
    finally:
        await consumer.stop()  # never started: closes its client
