"""Entry point of the ingest API: ``pinpipe ingest-api``."""

from __future__ import annotations

import uvicorn

from services.ingest_api.app import create_app
from services.ingest_api.config import IngestSettings
from shared.logs import configure_logging


def run(settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings()
    configure_logging("ingest_api", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_config=None,
        access_log=False,
    )
