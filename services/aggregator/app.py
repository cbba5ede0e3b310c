"""Builds the aggregator's Faust app (and nothing else)."""

from __future__ import annotations

import faust

from services.aggregator.api import register_pages
from services.aggregator.config import AggregatorSettings
from services.aggregator.metrics import METRICS
from services.aggregator.tables import register_tables
from shared.faust_app import add_service_pages, create_faust_app


def create_app(settings: AggregatorSettings) -> faust.App:
    app = create_faust_app(
        settings.aggregator_app_id,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        web_host=settings.aggregator_web_host,
        web_port=settings.aggregator_web_port,
        datadir=settings.aggregator_datadir,
        partitions=settings.topic_partitions,
    )
    tables = register_tables(app, settings.topic_partitions)
    register_pages(app, tables)
    add_service_pages(app, METRICS.render)
    return app
