"""Entry point of the ingest API: ``pinpipe ingest-api``."""

from __future__ import annotations

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from shared.http_service import serve


def run(settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings()
    serve(
        create_app(settings),
        service="ingest_api",
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_level=settings.log_level,
    )
