"""Builds the ingest API's FastAPI app (and nothing else)."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.ingest_api import openapi
from services.ingest_api.auth import ApiKeyGuard
from services.ingest_api.config import IngestSettings
from services.ingest_api.errors import (
    IngestError,
    http_error_handler,
    ingest_error_handler,
    validation_error_handler,
)
from services.ingest_api.load_shedding import InflightLimit
from services.ingest_api.middleware import RequestMetrics
from services.ingest_api.producer import KafkaGateway
from services.ingest_api.routes import service, streams, topics
from services.ingest_api.stream_registry import StreamRegistry
from shared.http_service import stop_process_on_fatal
from shared.kafka_admin import ensure_topics
from shared.retry import retry
from shared.topics import raw_topics

log = logging.getLogger(__name__)


async def connect(
    settings: IngestSettings, gateway: KafkaGateway, registry: StreamRegistry
) -> None:
    """Reach Kafka (waiting with backoff while it is away): create the raw topics, start the
    producer, read the stream registry. Until this returns, /readyz and the data routes answer
    503 (Retry-After) and the process stays up."""
    backoff = settings.backoff()
    created: list[str] = []
    if settings.ingest_create_raw_topics:
        created = await retry(
            "kafka (raw topics)",
            lambda: ensure_topics(
                gateway.kafka,
                raw_topics(settings.topic_prefix),
                settings.topic_partitions,
                settings.topic_replication_factor,
            ),
            backoff,
        )
    await retry("kafka (producer)", gateway.start, backoff)
    await retry("kafka (stream registry)", registry.start, backoff)
    for name in created:
        if name.startswith(streams.STREAM_PREFIX):
            await retry(
                "kafka (stream registry)",
                functools.partial(registry.record_created, name),
                backoff,
            )
    log.info("ingest api connected to kafka", extra={"settings": settings.redacted()})


def warn_if_open(settings: IngestSettings) -> None:
    """Say so when anyone who reaches the port may produce and create or delete streams."""
    if settings.api_keys() or settings.admin_api_keys():
        return
    log.warning(
        "no API keys configured: every route is open to anyone who reaches "
        f"{settings.ingest_host}:{settings.ingest_port}, stream administration included; "
        "set PINPIPE_INGEST_API_KEYS and PINPIPE_INGEST_ADMIN_API_KEYS unless this is "
        "a machine of your own"
    )


def create_app(settings: IngestSettings) -> FastAPI:
    gateway = KafkaGateway(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        registry = StreamRegistry(gateway)
        app.state.gateway = gateway
        app.state.stream_registry = registry
        connecting = asyncio.create_task(connect(settings, gateway, registry), name="connect")
        connecting.add_done_callback(stop_process_on_fatal(app))
        # Long-lived start-up objects leave the collector's view: shorter GC pauses under load.
        gc.collect()
        gc.freeze()
        log.info("ingest api started", extra={"settings": settings.redacted()})
        warn_if_open(settings)
        try:
            yield
        finally:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await gateway.stop()  # after uvicorn finished the in-flight requests

    app = FastAPI(
        title="pinpipe ingest API",
        description=(
            "The original clients' API: the Kafka REST Proxy v2 topics API (`/topics`) and the "
            "Kinesis-style streams API the original API Gateway exposed (`/streams`). With API "
            "keys configured, data routes need a producer's or an admin `x-api-key`, "
            "CreateStream and DeleteStream an admin key."
        ),
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_exception_handler(IngestError, ingest_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_middleware(  # innermost: only requests with a good key take a place
        InflightLimit,
        max_requests=settings.ingest_max_concurrent_requests,
        max_bytes=settings.ingest_max_inflight_bytes,
        max_body_bytes=settings.ingest_max_body_bytes,
        backlog=lambda: gateway.unacknowledged_bytes,
    )
    app.add_middleware(ApiKeyGuard, keys=settings.api_keys(), admin_keys=settings.admin_api_keys())
    app.add_middleware(RequestMetrics)  # outermost: counts refused requests too
    app.include_router(topics.router)
    app.include_router(streams.router)
    app.include_router(service.router(gateway))
    openapi.install(app)
    return app
