"""Runs a FastAPI service under uvicorn with pinpipe's JSON logging (ingest API, cleaner,
sink), and takes the process down when its background loop dies."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import uvicorn
from fastapi import FastAPI

from shared.logs import configure_logging

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
