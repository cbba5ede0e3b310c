"""Runs a FastAPI service under uvicorn with pinpipe's JSON logging (ingest API, cleaner,
sink), and takes the process down when its background loop dies."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import uvicorn
from fastapi import FastAPI, Response

from shared.logs import configure_logging
from shared.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)


def serve(app: FastAPI, *, service: str, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` in the foreground until SIGINT/SIGTERM (then its lifespan shuts down)."""
    configure_logging(service, log_level)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def stop_process_if_crashed(task: asyncio.Task[None]) -> None:
    """Done-callback of a service's background loop: a loop that died takes its process down,
    so a supervisor restarts it (it then resumes from its committed offsets). A live process
    that does nothing helps nobody."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "background loop crashed; stopping the service",
            extra={"task": task.get_name()},
            exc_info=task.exception(),
        )
        os.kill(os.getpid(), signal.SIGTERM)


class BackgroundLoop(Protocol):
    """A service's consuming loop: runs until ``stop`` is set; ``ready`` once it is working."""

    ready: bool

    async def run(self, stop: asyncio.Event) -> None: ...


def loop_service_app(
    title: str,
    loop: BackgroundLoop,
    render_metrics: Callable[[], bytes],
    started: dict[str, Any],
) -> FastAPI:
    """A FastAPI app that runs ``loop`` for its lifetime (stopping it gracefully at shutdown;
    a crash takes the process down) and serves ``/healthz``, ``/readyz`` and ``/metrics``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop), name=title)
        task.add_done_callback(stop_process_if_crashed)
        log.info(f"{title} started", extra=started)
        try:
            yield
        finally:
            stop.set()  # graceful: the loop finishes what it holds, then returns
            await task

    app = FastAPI(title=title, lifespan=lifespan)

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
        return Response(render_metrics(), media_type=CONTENT_TYPE)

    return app
