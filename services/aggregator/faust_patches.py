"""Where pinpipe changes Faust's behaviour, each change with its reason; nothing else in the
aggregator reaches into Faust's internals. ``tests/unit/test_faust_patches.py`` fails if Faust
changes under a patch.

1. :func:`drain_changelog_before_commits`: Faust flushes its producer's buffer (the tables'
   changelog writes) before it commits source offsets, but that flush gives up once 0.1 s pass
   without a send (``ProducerBuffer.flush_atmost``), and even a flush until the buffer is empty
   returns while the message taken from it last is still on its way into the Kafka producer
   (``_handle_pending`` takes a message, then awaits its send), so the producer's own flush
   that follows may not cover it. Under load, offsets could be committed ahead of the
   changelog, and a replica restored from it after kill -9 missed a record for good (the
   kill -9 test of tests/integration/test_aggregator.py, about one run in ten on a busy
   machine). The patched flush returns once the buffer is empty and no send is in flight.
2. :func:`gaps_without_the_next_record`: the clean topics are written in Kafka transactions,
   so every few offsets one is a commit marker, which no consumer ever sees. Faust notes such
   a gap between two records it reads (``Consumer._add_gap(tp, previous + 1, offset)``) as the
   interval up to and *including* ``offset``, the record after the gap, which is also
   acknowledged: ``_new_offset`` then finds that offset twice in its sorted list, so each call
   commits only up to the first duplicate, about one transaction a second. Under a steady load
   the committed offset falls ever further behind and every acknowledged offset since is kept
   in memory: in the soak, the group's offsets stood at 1,700 of 14,000 and the aggregator grew
   60 MB in 25 minutes. The gap is noted without the record after it.
3. :func:`no_builtin_pages`: Faust's web server serves pages of its own next to the app's
   (``/router``, ``/table/…``, ``/graph``, statistics, ``/performance``): the settings in
   app.py turn each off, but with statistics off Faust serves a status page at ``/`` that no
   setting turns off. The aggregator's public port serves pinpipe's routes only.
4. :func:`write_to_partition_of`: a table write goes to the store and changelog partition of
   the stream's *current event* (``Table.partition_for_key`` reads ``current_event()``), which
   Faust sets only for a stream that yields one event at a time. The agent reads batches
   (``take_events``) and writes each changed post once per batch, so it names the event whose
   partition a write belongs to through the stream's private ``_set_current_event``.
5. :class:`JsonLogsWorker`: Faust's worker (mode's ``Worker._setup_logging``) installs its
   own log handlers when it starts; its ``on_setup_root_logger`` hook, called right after,
   replaces them with pinpipe's JSON lines at the worker's level.
6. :func:`deliveries_share_their_waiters`: Faust's consumer hands each record to the streams
   with ``wait_first(deliver, suspend_flow.wait())`` (mode's ``Service.wait_first``), which
   starts four tasks a record (the delivery, and waiters of the flow's suspension, the
   consumer's stop and its crash) and cancels three: 28 µs a record here, a quarter of what a
   Faust worker doing nothing spends on one. The patched call starts a task for the delivery
   alone and waits on it beside one long-lived waiter of each event, made again only once its
   event was set and cleared: the same wait, 15 µs cheaper.
7. :class:`LeanMonitor`: Faust's ``Monitor`` sensor keeps statistics of every record, event,
   send and commit for Faust's own web pages, which app.py turns off (pinpipe's metrics are
   its own): about 10% of the aggregator's events/s. The app's Monitor (the ``Monitor``
   setting) keeps only what Faust itself reads back: the time each partition's stream last
   took an event, which its livelock check (``verify_event_path``) needs to tell a stalled
   stream from a busy one.
8. :func:`short_fetch_waits`: Faust creates its Kafka consumer with ``fetch_max_wait_ms=1500``
   (no setting changes it), so a fetch the broker holds for want of new records keeps every
   record that arrives meanwhile waiting up to 1.5 s. On the cleaner's transactional topics
   that wait is what a record met: in the pipeline bench at 500 posts/s the live answers were
   1.2 s behind at p50 (2.5 s at p99) with the aggregator at 0.4 of a core, while a plain
   consumer of the same topics saw the records 0.1 s after ingest. The patched consumer waits
   at most ``FETCH_MAX_WAIT_MS`` (p50 0.08 s, p99 0.5 s in the same run).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any

import faust
import mode.services
from faust.sensors.monitor import Monitor, TPOffsetMapping
from faust.types import CollectionT, EventT, StreamT
from faust.types.transports import ConsumerT, ProducerT
from faust.types.tuples import TP, Message, PendingMessage, RecordMetadata
from faust.web.base import BlueprintManager

from shared.logs import configure_logging


def drain_changelog_before_commits(app: faust.App) -> None:
    """Make the producer buffer's flush return only when the buffer is empty and the message
    it took last has reached the Kafka producer. Apply before the buffer starts: its sending
    task binds ``_send_pending`` when it starts."""
    buffer: Any = app.producer.buffer  # its type declares no _send_pending
    send = buffer._send_pending
    in_flight = 0
    idle = asyncio.Event()
    idle.set()

    async def send_counted(message: Any) -> None:
        nonlocal in_flight
        in_flight += 1  # before any await: the message left the queue just now
        idle.clear()
        try:
            await send(message)
        finally:
            in_flight -= 1
            if in_flight == 0:
                idle.set()

    async def drain() -> None:
        while buffer.size or not idle.is_set():
            if buffer.size:
                await buffer.flush_atmost(buffer.size)
            else:
                await idle.wait()

    buffer._send_pending = send_counted  # patch 1 of the module's docstring
    buffer.flush = drain


def gaps_without_the_next_record(app: faust.App) -> None:
    """Note a gap between two records as the offsets between them only."""
    consumer: Any = app.consumer  # Faust's aiokafka Consumer (its type declares no _add_gap)
    add_gap: Callable[[Any, int, int], Awaitable[None]] = consumer._add_gap

    async def gap(tp: Any, offset_from: int, offset_to: int) -> None:
        await add_gap(tp, offset_from, offset_to - 1)  # offset_to is the record after the gap

    consumer._add_gap = gap  # patch 2 of the module's docstring


def no_builtin_pages(app: faust.App) -> None:
    """Apply none of Faust's blueprints when its web server starts (``Web.init_server``)."""
    app.web.blueprints = BlueprintManager()  # patch 3 of the module's docstring


def write_to_partition_of(stream: faust.Stream[Any], event: EventT[Any]) -> None:
    """Make ``event`` the stream's current event: the table writes that follow go to its
    partition (of the store and the changelog)."""
    stream._set_current_event(event)  # patch 4 of the module's docstring


def deliveries_share_their_waiters(app: faust.App) -> None:
    """Make the consumer's record deliveries wait on shared waiters (patch 6). Any other call
    of its ``wait_first`` goes to mode's as before."""
    consumer: Any = app.consumer  # Faust's Consumer (a mode Service)
    original = consumer.wait_first
    waiters: dict[int, asyncio.Future[Any]] = {}

    def waiter(event: Any) -> asyncio.Future[Any]:
        future = waiters.get(id(event))
        if future is None or (future.done() and not event.is_set()):
            future = waiters[id(event)] = asyncio.ensure_future(event.wait())
        return future

    # mode's signature, timeout included
    async def wait_first(*coros: Any, timeout: Any = None) -> Any:  # noqa: ASYNC109
        delivery = len(coros) == 2 and _waits_on(coros[1], consumer.suspend_flow)
        if timeout is not None or not delivery:
            return await original(*coros, timeout=timeout)
        deliver, suspended = coros
        suspended.close()  # never started: the shared waiter stands for it
        shared = [waiter(e) for e in (consumer.suspend_flow, consumer._stopped, consumer._crashed)]
        task = asyncio.ensure_future(deliver)
        try:
            await asyncio.wait([task, *shared], return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()  # as mode's: the flow was suspended, or the consumer stopped
        # as mode's: what finished (the delivery, the suspension), unless it stopped
        finished = [(deliver, task), (suspended, shared[0])]
        winners = [(arg, f) for arg, f in finished if f.done() and not f.cancelled()]
        if winners and not (shared[1].done() or shared[2].done()):
            return mode.services.WaitResults(
                [arg for arg, _ in winners], [f.result() for _, f in winners], False
            )
        return mode.services.WaitResults([], [], True)

    consumer.wait_first = wait_first  # patch 6 of the module's docstring


def _waits_on(coro: Any, event: asyncio.Event) -> bool:
    """Whether ``coro`` is ``event.wait()``, not started."""
    frame = getattr(coro, "cr_frame", None)
    return (
        getattr(coro, "__qualname__", "") == "Event.wait"
        and frame is not None
        and frame.f_locals.get("self") is event
    )


FETCH_MAX_WAIT_MS = 100  # patch 8: the longest the broker holds a fetch with nothing new


def short_fetch_waits(app: faust.App) -> None:
    """Create the worker's Kafka consumer with ``FETCH_MAX_WAIT_MS``, not Faust's 1,500 ms.
    Apply before the consumer starts (aiokafka reads it as its fetcher starts)."""
    thread: Any = app.consumer._thread  # type: ignore[attr-defined]  # Faust's consumer thread
    create = thread._create_worker_consumer

    def create_worker_consumer(transport: Any) -> Any:
        consumer = create(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # patch 8 of the module's docstring
        return consumer

    thread._create_worker_consumer = create_worker_consumer


class LeanMonitor(Monitor):
    """Faust's Monitor without its statistics (patch 7): only ``stream_inbound_time``."""

    def on_message_in(self, tp: TP, offset: int, message: Message) -> None:
        pass

    def on_stream_event_in(
        self, tp: TP, offset: int, stream: StreamT[Any], event: EventT[Any]
    ) -> dict[str, Any] | None:
        self.stream_inbound_time[tp] = monotonic()
        return None

    def on_stream_event_out(
        self,
        tp: TP,
        offset: int,
        stream: StreamT[Any],
        event: EventT[Any],
        state: dict[str, Any] | None = None,
    ) -> None:
        pass

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        pass

    def on_table_get(self, table: CollectionT, key: Any) -> None:
        pass

    def on_table_set(self, table: CollectionT, key: Any, value: Any) -> None:
        pass

    def on_table_del(self, table: CollectionT, key: Any) -> None:
        pass

    def on_commit_initiated(self, consumer: ConsumerT) -> Any:
        return None

    def on_commit_completed(self, consumer: ConsumerT, state: Any) -> None:
        pass

    def on_send_initiated(
        self, producer: ProducerT, topic: str, message: PendingMessage, keysize: int,
        valsize: int,
    ) -> Any:  # fmt: skip
        return None

    def on_send_completed(self, producer: ProducerT, state: Any, metadata: RecordMetadata) -> None:
        pass

    def on_tp_commit(self, tp_offsets: TPOffsetMapping) -> None:
        pass

    def track_tp_end_offset(self, tp: TP, offset: int) -> None:
        pass


class JsonLogsWorker(faust.Worker):
    """A Faust worker whose logs are pinpipe's JSON lines, at ``log_level``."""

    def __init__(self, app: faust.App, *, log_level: str, **kwargs: Any) -> None:
        self.json_log_level = log_level
        super().__init__(app, loglevel=log_level.lower(), **kwargs)

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        configure_logging("aggregator", self.json_log_level)  # patch 5 of the module's docstring
