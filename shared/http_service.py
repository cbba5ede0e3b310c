"""Runs a FastAPI service under uvicorn with pinpipe's JSON logging (ingest API, sink)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from shared.logs import configure_logging


def serve(app: FastAPI, *, service: str, host: str, port: int, log_level: str) -> None:
    """Serve ``app`` in the foreground until SIGINT/SIGTERM (then its lifespan shuts down)."""
    configure_logging(service, log_level)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
