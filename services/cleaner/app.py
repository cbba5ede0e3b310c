"""Builds the cleaner's Faust app (and nothing else)."""

from __future__ import annotations

import faust

from services.cleaner.agents import register_agents
from services.cleaner.config import CleanerSettings
from services.cleaner.metrics import METRICS
from shared.faust_app import add_service_pages, create_faust_app


def create_app(settings: CleanerSettings, raw_topic_names: list[str]) -> faust.App:
    app = create_faust_app(
        settings.cleaner_app_id,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        web_host=settings.cleaner_web_host,
        web_port=settings.cleaner_web_port,
        datadir=settings.cleaner_datadir,
        partitions=settings.topic_partitions,
    )
    register_agents(app, settings, raw_topic_names)
    add_service_pages(app, METRICS.render)
    return app
