"""Entry point of the S3 sink: ``pinpipe sink``."""

from __future__ import annotations

import uvicorn

from services.s3_sink.app import create_app
from services.s3_sink.config import SinkSettings
from shared.logs import configure_logging


def run(settings: SinkSettings | None = None) -> None:
    settings = settings or SinkSettings()
    configure_logging("s3_sink", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.sink_host,
        port=settings.sink_port,
        log_config=None,
        access_log=False,
    )
