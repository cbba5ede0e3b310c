"""Entry point of the aggregator: ``pinpipe aggregator``."""

from __future__ import annotations

import asyncio

from services.aggregator.app import create_app
from services.aggregator.config import AggregatorSettings
from shared.faust_app import run_worker
from shared.kafka_admin import ensure_topics
from shared.topics import clean_topics


def run(settings: AggregatorSettings | None = None) -> None:
    settings = settings or AggregatorSettings()
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap_servers, clean_topics(), settings.topic_partitions)
    )
    run_worker(create_app(settings), "aggregator", settings.log_level)
