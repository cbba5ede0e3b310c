"""The cleaner's Faust agent: raw topics (by pattern) → clean topics keyed by ``ind``, or DLQ.

Faust's pattern subscriptions do not work with its aiokafka driver, so the agent subscribes to
the raw topics by name: those found at start-up, then every new topic matching
``PINPIPE_CLEANER_RAW_TOPIC_PATTERN`` that a periodic check finds (e.g. a stream created
through the API).

Sends are attached to the source event (``event.send``): Faust publishes them before it commits
the source offset, so a crash replays uncommitted records: at-least-once.
"""

from __future__ import annotations

import logging
import time

import faust

from services.cleaner.config import CleanerSettings
from services.cleaner.metrics import DLQ, PROCESS_SECONDS, RECORDS_IN, RECORDS_OUT
from services.cleaner.processing import Cleaned, process
from shared.kafka_admin import list_topics
from shared.topics import DLQ_TOPIC, clean_topics, record_type_of

log = logging.getLogger(__name__)
TOPIC_CHECK_SECONDS = 15.0


def register_agents(app: faust.App, settings: CleanerSettings, raw_topic_names: list[str]) -> None:
    raw = app.topic(
        *raw_topic_names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    outputs = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw", internal=False)
        for name in clean_topics()
    }
    dlq = app.topic(DLQ_TOPIC, key_serializer="raw", value_serializer="raw")

    @app.agent(raw, name="clean-raw-records")
    async def clean_raw_records(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            started = time.perf_counter()
            RECORDS_IN.labels(type=record_type_of(message.topic) or "unknown").inc()
            result = process(
                message.topic,
                message.partition,
                message.offset,
                event.value,
                settings.cleaner_max_record_bytes,
                settings.cleaner_profile,
            )
            PROCESS_SECONDS.observe(time.perf_counter() - started)
            if isinstance(result, Cleaned):
                await event.send(outputs[result.topic], key=result.key, value=result.value)
                RECORDS_OUT.labels(type=result.record_type).inc()
            else:
                await event.send(dlq, key=None, value=result.value)
                DLQ.labels(reason=result.reason).inc()

    @app.timer(TOPIC_CHECK_SECONDS)
    async def subscribe_new_raw_topics() -> None:
        names = await list_topics(settings.kafka_bootstrap_servers)
        new = sorted({n for n in names if settings.is_cleaned_topic(n)} - set(raw.topics))
        if not new:
            return
        log.info("subscribing to new raw topics", extra={"topics": new})
        subscribed = sorted({*raw.topics, *new})
        # The running agent iterates a clone of `raw` registered with the conductor: widen
        # every channel that reads the raw topics, then re-register it to resubscribe.
        channels = [c for c in app.topics if set(c.topics) == set(raw.topics)]
        raw.topics = subscribed
        for channel in channels:
            app.topics.discard(channel)
            channel.topics = subscribed
            app.topics.add(channel)
