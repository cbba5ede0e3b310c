"""Entry point of the S3 sink: ``pinpipe s3-sink``."""

from __future__ import annotations

from services.s3_sink.app import create_app
from services.s3_sink.config import S3SinkSettings
from shared.http_service import serve


def run(settings: S3SinkSettings | None = None) -> None:
    settings = settings or S3SinkSettings()
    serve(
        create_app(settings),
        service="s3_sink",
        host=settings.s3_sink_host,
        port=settings.s3_sink_port,
        log_level=settings.log_level,
    )
