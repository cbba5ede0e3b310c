"""Entry point of the cleaner: ``pinpipe cleaner``."""

from __future__ import annotations

import asyncio

from services.cleaner.app import create_app
from services.cleaner.config import CleanerSettings
from shared.faust_app import run_worker
from shared.kafka_admin import ensure_topics
from shared.topics import DLQ_TOPIC, clean_topics


def run(settings: CleanerSettings | None = None) -> None:
    settings = settings or CleanerSettings()
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers, [*clean_topics(), DLQ_TOPIC], settings.topic_partitions
        )
    )
    run_worker(create_app(settings), "cleaner", settings.log_level)
