"""Builds the S3 sink's FastAPI app (health, readiness, metrics) around the sink loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from services.s3_sink.config import SinkSettings
from services.s3_sink.metrics import METRICS
from services.s3_sink.sink import ParquetSink
from shared.http_service import stop_process_if_crashed
from shared.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


def create_app(settings: SinkSettings) -> FastAPI:
    sink = ParquetSink(settings, settings.open_lake())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(sink.run(stop), name="parquet-sink")
        task.add_done_callback(stop_process_if_crashed)
        log.info("s3 sink started", extra={"settings": settings.redacted()})
        try:
            yield
        finally:
            stop.set()  # graceful: the loop flushes what it holds, then commits
            await task

    app = FastAPI(title="pinpipe s3 sink", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        if sink.ready:
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(METRICS.render(), media_type=CONTENT_TYPE)

    app.state.sink = sink
    return app
