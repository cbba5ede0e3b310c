"""Entry point of the S3 sink: ``pinpipe sink``."""

from __future__ import annotations

from services.s3_sink.app import create_app
from services.s3_sink.config import SinkSettings
from shared.http_service import serve


def run(settings: SinkSettings | None = None) -> None:
    settings = settings or SinkSettings()
    serve(
        create_app(settings),
        service="s3_sink",
        host=settings.sink_host,
        port=settings.sink_port,
        log_level=settings.log_level,
    )
