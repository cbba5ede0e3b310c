"""Builds the S3 sink's FastAPI app (health, readiness, metrics) around the sink loop."""

from __future__ import annotations

from fastapi import FastAPI

from services.s3_sink.config import S3SinkSettings
from services.s3_sink.metrics import LOOP_RESTARTS, METRICS
from services.s3_sink.sink import S3Sink
from shared.http_service import loop_service_app


def create_app(settings: S3SinkSettings) -> FastAPI:
    lake = settings.open_lake()
    return loop_service_app(
        "pinpipe s3 sink",
        lambda: S3Sink(settings, lake),
        METRICS.render,
        {"settings": settings.redacted()},
        settings.backoff(),
        settings.kafka_connection(),
        LOOP_RESTARTS,
    )
