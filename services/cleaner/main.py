"""Entry point of the cleaner: ``pinpipe cleaner``."""

from __future__ import annotations

import asyncio

from services.cleaner.app import create_app
from services.cleaner.config import CleanerSettings
from shared.http_service import serve
from shared.kafka_admin import ensure_topics
from shared.topics import DLQ_TOPIC, clean_topics, raw_topics


def run(settings: CleanerSettings | None = None) -> None:
    settings = settings or CleanerSettings()
    outputs = [*clean_topics(), DLQ_TOPIC]
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            outputs + raw_topics(settings.topic_prefix),
            settings.topic_partitions,
            settings.topic_replication_factor,
        )
    )
    serve(
        create_app(settings),
        service="cleaner",
        host=settings.cleaner_web_host,
        port=settings.cleaner_web_port,
        log_level=settings.log_level,
    )
