"""Builds the cleaner's FastAPI app (health, readiness, metrics) around the cleaning loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from services.cleaner.config import CleanerSettings
from services.cleaner.loop import CleanerLoop
from services.cleaner.metrics import METRICS
from shared.http_service import stop_process_if_crashed
from shared.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


def create_app(settings: CleanerSettings) -> FastAPI:
    loop = CleanerLoop(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop), name="cleaner")
        task.add_done_callback(stop_process_if_crashed)
        log.info("cleaner started", extra={"settings": settings.redacted()})
        try:
            yield
        finally:
            stop.set()  # graceful: the batch in flight commits, then the group is left
            await task

    app = FastAPI(title="pinpipe cleaner", lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        if loop.ready:
            return {"status": "ready"}
        response.status_code = 503
        return {"status": "not ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(METRICS.render(), media_type=CONTENT_TYPE)

    app.state.loop = loop
    return app
