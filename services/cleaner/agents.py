"""The cleaner's Faust agent: raw topics (by pattern) → clean topics keyed by ``ind``, or DLQ.

Sends are attached to the source event (``event.send``): Faust publishes them before it commits
the source offset, so a crash replays uncommitted records: at-least-once.
"""

from __future__ import annotations

import time

import faust

from services.cleaner.config import CleanerSettings
from services.cleaner.metrics import DLQ, PROCESS_SECONDS, RECORDS_IN, RECORDS_OUT
from services.cleaner.processing import Cleaned, process
from shared.topics import DLQ_TOPIC, RAW_TOPIC_PATTERN, clean_topics, record_type_of


def register_agents(app: faust.App, settings: CleanerSettings) -> None:
    raw = app.topic(pattern=RAW_TOPIC_PATTERN, key_type=bytes, value_type=bytes,
                    key_serializer="raw", value_serializer="raw")
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
                message.topic, message.partition, message.offset, event.value,
                settings.cleaner_max_record_bytes,
            )
            PROCESS_SECONDS.observe(time.perf_counter() - started)
            if isinstance(result, Cleaned):
                await event.send(outputs[result.topic], key=result.key, value=result.value)
                RECORDS_OUT.labels(type=result.record_type).inc()
            else:
                await event.send(dlq, key=None, value=result.value)
                DLQ.labels(reason=result.reason).inc()
