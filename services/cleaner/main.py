"""Entry point of the cleaner: ``pinpipe cleaner``."""

from __future__ import annotations

from services.cleaner.app import create_app
from services.cleaner.config import CleanerSettings
from shared.http_service import serve


def run(settings: CleanerSettings | None = None) -> None:
    settings = settings or CleanerSettings()
    serve(
        create_app(settings),
        service="cleaner",
        host=settings.cleaner_host,
        port=settings.cleaner_port,
        log_level=settings.log_level,
    )
