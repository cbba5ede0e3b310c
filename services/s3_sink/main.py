"""Entry point of the S3 sink: ``pinpipe sink``."""

from __future__ import annotations

import asyncio

from services.s3_sink.app import create_app
from services.s3_sink.config import SinkSettings
from shared.http_service import serve
from shared.kafka_admin import ensure_topics
from shared.topics import DLQ_TOPIC


def run(settings: SinkSettings | None = None) -> None:
    settings = settings or SinkSettings()
    # the DLQ takes clean records that fit no schema
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            [DLQ_TOPIC],
            settings.topic_partitions,
            settings.topic_replication_factor,
        )
    )
    serve(
        create_app(settings),
        service="s3_sink",
        host=settings.sink_host,
        port=settings.sink_port,
        log_level=settings.log_level,
    )
