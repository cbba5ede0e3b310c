"""Builds the ingest API's FastAPI app (and nothing else)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingest_api.config import IngestSettings
from services.ingest_api.errors import ApiError, api_error_handler
from services.ingest_api.producer import KafkaGateway
from services.ingest_api.routes import router
from shared.kafka_admin import ensure_topics
from shared.topics import raw_topics

log = logging.getLogger(__name__)


def create_app(settings: IngestSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.ingest_create_raw_topics:
            await ensure_topics(
                settings.kafka_bootstrap_servers,
                raw_topics(settings.topic_prefix),
                settings.topic_partitions,
            )
        gateway = KafkaGateway(settings)
        await gateway.start()
        app.state.gateway = gateway
        log.info("ingest api ready", extra={"settings": settings.redacted()})
        try:
            yield
        finally:
            await gateway.stop()

    app = FastAPI(
        title="pinpipe ingest API",
        description="Kafka REST Proxy v2 topics API in front of the pipeline's raw topics.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(router)
    return app
