"""Entry point of the aggregator: ``pinpipe aggregator``.

Local tables are trusted only after a clean shutdown: a marker file is written when the worker
stops cleanly and removed when it starts; starting without it (the process was killed) drops the
local RocksDB files, so the tables are restored from their changelog topic (see tables.py).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from pathlib import Path

from services.aggregator.app import create_app, run_worker
from services.aggregator.config import AggregatorSettings
from shared.kafka_admin import ensure_topics
from shared.logs import configure_logging
from shared.topics import clean_topics

log = logging.getLogger("pinpipe.aggregator")


def trust_local_tables(tabledir: Path, marker: Path) -> bool:
    """Whether the local tables in ``tabledir`` may be kept: yes after a clean shutdown (or
    when there are none); else they are removed. The marker is consumed either way."""
    clean = marker.exists() or not tabledir.exists()
    marker.unlink(missing_ok=True)
    if not clean:
        shutil.rmtree(tabledir)
    return clean


def run(settings: AggregatorSettings | None = None) -> None:
    settings = settings or AggregatorSettings()
    configure_logging("aggregator", settings.log_level)
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers,
            clean_topics(),
            settings.topic_partitions,
            settings.topic_replication_factor,
        )
    )
    app, _ = create_app(settings)
    tabledir = Path(app.conf.tabledir)
    marker = settings.aggregator_datadir / "clean-shutdown"
    if not trust_local_tables(tabledir, marker):
        log.warning(
            "the last run did not stop cleanly: local tables dropped, restoring from changelog"
        )
    code = run_worker(app, settings.log_level)
    if code == 0:
        marker.touch()
    sys.exit(code)
