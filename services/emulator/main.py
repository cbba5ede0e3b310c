"""Entry points of the emulator: ``pinpipe emulator seed-db`` and ``pinpipe emulator run``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from prometheus_client import start_http_server

from services.emulator import poster, seed
from services.emulator.config import EmulatorSettings
from services.emulator.metrics import METRICS
from services.emulator.source_db import connect
from shared.logs import configure_logging
from shared.topics import RecordType

log = logging.getLogger(__name__)


def seed_db(
    settings: EmulatorSettings,
    db_url: str | None,
    rows: int,
    seed_value: int,
    from_jsonl: Path | None,
) -> dict[RecordType, int]:
    engine = connect(db_url or settings.source_db_url.get_secret_value())
    data = seed.read_jsonl_dir(from_jsonl) if from_jsonl else seed.generated(rows, seed_value)
    return seed.seed(engine, data)


def run(
    settings: EmulatorSettings,
    *,
    count: int | None,
    rate: float | None,
    batch_size: int | None,
    seed_value: int | None,
    sent_log: Path | None,
    serve_metrics: bool = True,
) -> int:
    configure_logging("emulator", settings.log_level)
    if serve_metrics:
        start_http_server(
            settings.emulator_metrics_port,
            settings.emulator_metrics_host,
            registry=METRICS.registry,
        )
    engine = connect(settings.source_db_url.get_secret_value())
    log.info("emulator starting", extra={"settings": settings.redacted()})
    return asyncio.run(
        poster.run(
            engine,
            settings.emulator_api_url,
            settings.topic_prefix,
            rate=settings.emulator_rate if rate is None else rate,
            count=count,
            batch_size=batch_size or settings.emulator_batch_size,
            seed=seed_value,
            sent_log=sent_log,
        )
    )
