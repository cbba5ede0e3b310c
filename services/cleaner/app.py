"""Builds the cleaner's FastAPI app (health, readiness, metrics) around the cleaning loop."""

from __future__ import annotations

from fastapi import FastAPI

from services.cleaner.config import CleanerSettings
from services.cleaner.loop import CleanerLoop
from services.cleaner.metrics import METRICS
from shared.http_service import loop_service_app


def create_app(settings: CleanerSettings) -> FastAPI:
    loop = CleanerLoop(settings)
    app = loop_service_app(
        "pinpipe cleaner", loop, METRICS.render, {"settings": settings.redacted()}
    )
    return app
