"""Entry point of the cleaner: ``pinpipe cleaner``."""

from __future__ import annotations

import asyncio

from services.cleaner.app import create_app
from services.cleaner.config import CleanerSettings
from shared.faust_app import run_worker
from shared.kafka_admin import ensure_topics, list_topics
from shared.topics import DLQ_TOPIC, clean_topics, raw_topics


def run(settings: CleanerSettings | None = None) -> None:
    settings = settings or CleanerSettings()
    bootstrap = settings.kafka_bootstrap_servers
    outputs = [*clean_topics(), DLQ_TOPIC]
    asyncio.run(
        ensure_topics(
            bootstrap, outputs + raw_topics(settings.topic_prefix), settings.topic_partitions
        )
    )
    raw_topic_names = [
        name for name in asyncio.run(list_topics(bootstrap)) if settings.is_cleaned_topic(name)
    ]
    run_worker(create_app(settings, raw_topic_names), "cleaner", settings.log_level)
