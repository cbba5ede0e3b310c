"""Builds the S3 sink's FastAPI app (health, readiness, metrics) around the sink loop."""

from __future__ import annotations

from fastapi import FastAPI

from services.s3_sink.config import SinkSettings
from services.s3_sink.metrics import METRICS
from services.s3_sink.sink import ParquetSink
from shared.http_service import loop_service_app


def create_app(settings: SinkSettings) -> FastAPI:
    sink = ParquetSink(settings, settings.open_lake())
    app = loop_service_app(
        "pinpipe s3 sink", sink, METRICS.render, {"settings": settings.redacted()}
    )
    return app
