"""Builds the cleaner's FastAPI app (health, readiness, metrics) around the cleaning loop."""

from __future__ import annotations

from fastapi import FastAPI

from services.cleaner.config import CleanerSettings
from services.cleaner.loop import CleanerLoop
from services.cleaner.metrics import LOOP_RESTARTS, METRICS
from shared.http_service import loop_service_app


def create_app(settings: CleanerSettings) -> FastAPI:
    return loop_service_app(
        "pinpipe cleaner",
        lambda: CleanerLoop(settings),
        METRICS.render,
        {"settings": settings.redacted()},
        settings.backoff(),
        settings.kafka_connection(),
        LOOP_RESTARTS,
    )
